"""`make bench`: start the stack, seed a large bank and learners with history, measure, and write
docs/benchmarks.md with its plots (docs/img/).

    python -m loadtests.bench                    # 200k-question bank, cold path also at 1M
    python -m loadtests.bench --quick            # ~2 minutes, small bank
    python -m loadtests.bench --bank-size 1000000 --database-url ... --redis-url ...  # LESSONLOOP_TOKEN_SECRET set

HTTP figures: one API process (`lessonloop serve`) pinned to core 0, the closed-loop load generator
(wrk) on core 1 with the stores; ping, warm lesson start, cold lesson start and answers measured in
interleaved rounds on the same server process, each figure the median of the rounds and each ratio
the median of ratios taken within one round. Then the warm lesson start at fixed offered rates
(fractions of the warm throughput just measured; paced wrk, Poisson arrivals): latency below
capacity, the figure a latency objective is stated at.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis

from loadtests import cold_sql, loadgen, machine, report, rtt_probe, seed
from loadtests.stack import API_CPU, LOAD_CPU, BenchStack
from shared import constants
from shared.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
ENDPOINTS = ("ping", "warm", "cold", "answer")
HEAVY = "bench-heavy"


@dataclass
class Config:
    quick: bool = False
    bank_size: int = 200_000
    scale_bank: int = 1_000_000
    warm_learners: int = 2_000
    cold_learners: int = 2_000
    answer_learners: int = 500
    locust_learners: int = 200
    seen: int = 100
    heavy_seen: int = 10_000
    depth: int = 40
    lesson_size: int = 5
    seconds: float = 10.0
    repeats: int = 3
    connections: list[int] = field(default_factory=lambda: [32, 128])
    endpoints: list[str] = field(default_factory=lambda: list(ENDPOINTS))
    paced_fractions: list[float] = field(default_factory=lambda: [0.1, 0.25, 0.5, 0.75, 0.9])
    paced_seconds: float = 10.0
    paced_connections: int = 64
    arrivals: str = "poisson"
    cold_requests: int = 300
    locust_seconds: int = 45
    locust_users: int = 60
    warmup: float = 2.0
    others: bool = True
    keep: bool = False
    database_url: str | None = None
    redis_url: str | None = None
    out: Path = ROOT / "docs" / "benchmarks.md"
    img_dir: Path = ROOT / "docs" / "img"

    @classmethod
    def quick_defaults(cls) -> dict[str, Any]:
        return {"bank_size": 20_000, "scale_bank": 20_000, "warm_learners": 300, "cold_learners": 300,
                "answer_learners": 100, "locust_learners": 40, "depth": 30, "seconds": 3.0, "repeats": 3,
                "connections": [32], "cold_requests": 60, "locust_seconds": 15, "locust_users": 20,
                "heavy_seen": 2_000, "paced_seconds": 3.0}


class Progress:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.last = 0.0

    def __call__(self, msg: str, *, every: float = 0.0) -> None:
        """Print `msg`; with `every`, only if that many seconds passed since the last line."""
        now = time.monotonic()
        if every and now - self.last < every:
            return
        self.last = now
        line = f"[{time.monotonic() - self.t0:7.1f}s] {msg}"
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


class Bench:
    def __init__(self, cfg: Config, progress: Progress) -> None:
        self.cfg = cfg
        self.say = progress
        self.stack = BenchStack(cfg.database_url, cfg.redis_url, keep_dir=cfg.keep)
        self.tokens = seed.Tokens(get_settings().auth)
        self.work = Path(tempfile.mkdtemp(prefix="lessonloop-benchfiles-"))
        self.results: dict[str, Any] = {"config": {k: str(v) if isinstance(v, Path) else v
                                                   for k, v in asdict(cfg).items()
                                                   if k not in ("database_url", "redis_url")}}
        self.bank: seed.Bank | None = None
        self._answer_rate = 2000.0
        self._warm_rate = 0.0
        self._answer_batch = 0

    # --- setup ------------------------------------------------------------------------------------
    def learners(self, kind: str, n: int) -> list[str]:
        return [f"bench-{kind}-{i}" for i in range(n)]

    def setup(self) -> None:
        cfg = self.cfg
        self.say(f"starting stores in {self.stack.dir}" if cfg.database_url is None else "using the given stores")
        eps = self.stack.start_stores()
        self.results["machine"] = machine.facts(eps.database_url, eps.redis_url, loadgen.generator_name())
        self.results["machine"]["pg_settings"] = self._pg_settings()
        self.say("machine: " + ", ".join(f"{k}={v}" for k, v in self.results["machine"].items()
                                          if k in ("cores", "cpu", "memory_gib", "python", "postgres", "redis",
                                                   "generator", "commit")))
        self.bank = asyncio.run(seed.load_course(eps.database_url))
        t = seed.grow_bank(eps.database_url, self.bank, cfg.bank_size, self.say)
        groups = [(lid, cfg.seen) for kind, n in (("warm", cfg.warm_learners), ("cold", cfg.cold_learners),
                                                  ("ans", cfg.answer_learners), ("loc", cfg.locust_learners))
                  for lid in self.learners(kind, n)]
        groups.append((HEAVY, cfg.heavy_seen))
        self.say(f"learners: seeding {len(groups):,} with history")
        tl = seed.seed_learners(eps.database_url, self.bank, groups, self.say)
        self.results["seed"] = {"bank": self.bank.size, "bank_seconds": round(t, 1), "learners": len(groups),
                                "learner_seconds": round(tl, 1), "sizes": self._sizes()}
        self.say(f"seeded {self.bank.size:,} questions in {t:.1f}s, {len(groups):,} learners in {tl:.1f}s")
        api_pid = self.stack.start_api()
        self.meter = machine.CpuMeter({"api": api_pid, **self.stack.store_pids()})
        self.cores = machine.CoreMeter()
        self.say(f"API up on {self.stack.base_url} (pid {api_pid}, core 0)")

    def _pg_settings(self) -> dict[str, str]:
        assert self.stack.endpoints is not None
        names = ("shared_buffers", "synchronous_commit", "fsync", "work_mem", "max_connections")
        with psycopg.connect(self.stack.endpoints.database_url) as conn:
            return {n: str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in names}  # type: ignore[index]

    def _sizes(self) -> dict[str, Any]:
        assert self.stack.endpoints is not None
        with psycopg.connect(self.stack.endpoints.database_url) as conn:
            out = {}
            for t in ("questions", "learner_seen", "learner_skill_state", "lessons"):
                sql = f"SELECT count(*), pg_size_pretty(pg_total_relation_size('{t}')) FROM {t}"
                row = conn.execute(sql).fetchone()
                out[t] = {"rows": int(row[0]), "size": row[1]} if row else {}
            return out

    # --- HTTP rounds --------------------------------------------------------------------------------
    def _lines(self, name: str, lines: list[str]) -> Path:
        path = self.work / f"{name}.txt"
        path.write_text("\n".join(lines) + "\n")
        return path

    def _prepare(self, endpoint: str, conns: int) -> Path | None:
        assert self.bank is not None and self.stack.endpoints is not None
        cfg = self.cfg
        if endpoint == "ping":
            return None
        if endpoint == "warm":
            warm = self.learners("warm", cfg.warm_learners)
            # deep enough for this run at 1.5x the fastest warm rate seen so far: no learner runs dry
            depth = max(cfg.depth, -(-int(self._warm_rate * cfg.seconds * 1.5) // len(warm)))
            asyncio.run(seed.fill_playlists(self.stack.endpoints.redis_url, self.bank, warm, depth,
                                            cfg.lesson_size, cfg.seen))
            return self._lines("warm", [self.tokens(lid) for lid in warm])
        if endpoint == "cold":
            return self._lines("cold", [self.tokens(lid) for lid in self.learners("cold", cfg.cold_learners)])
        # answers: fresh served lessons, enough items for this run at 1.5x the last rate measured
        want = int(self._answer_rate * cfg.seconds * 1.5) + 500
        learners = self.learners("ans", cfg.answer_learners)
        per = max(1, -(-want // (cfg.lesson_size * len(learners))))
        self._answer_batch += 1
        items = seed.served_lessons(self.stack.endpoints.database_url, self.bank, learners, per, cfg.lesson_size,
                                    cfg.seen, tag=f"answers:{self._answer_batch}")
        return self._lines("answer", [f"{self.tokens(lid)} {lesson} {item}" for lid, lesson, item in items])

    def _run(self, endpoint: str, conns: int, seconds: float, rate: float | None = None) -> dict[str, Any]:
        assert self.bank is not None
        lines = self._prepare(endpoint, conns)
        mode = {"ping": "ping", "warm": "lesson", "cold": "lesson", "answer": "answer"}[endpoint]
        load = machine.load_average()
        self.meter.start()
        self.cores.start()
        res = loadgen.run(self.stack.base_url, mode, lines=lines, course=self.bank.course, connections=conns,
                          seconds=seconds, cpu=LOAD_CPU, rate=rate, arrivals=self.cfg.arrivals)
        cpu = self.meter.stop()
        cores = self.cores.stop()
        res["cpu_s"] = cpu
        res["cpu_ms_per_req"] = {k: v * 1000 / res["requests"] for k, v in cpu.items()} if res["requests"] else {}
        res["api_busy"] = cpu.get("api", 0.0) / res["seconds"] if res["seconds"] else 0.0
        # this machine is shared: what other processes took from the API's core during the run
        res["api_core_others"] = max(0.0, cores.get(API_CPU, 0.0) - res["api_busy"])
        # ... and how long the API and Redis waited for a CPU (ms per second of the run)
        secs = res["seconds"] or 1.0
        res["runq_ms_per_s"] = {k: v * 1000 / secs for k, v in self.meter.waits.items()}
        res["loadavg"] = round(load[0], 2)
        if endpoint == "answer":
            self._answer_rate = max(res["rps"], 50.0)
            res["lines"] = lines.read_text().count("\n") if lines else 0
        if endpoint == "warm":
            self._warm_rate = max(self._warm_rate, res["rps"])
        return res

    def http_rounds(self) -> None:
        cfg = self.cfg
        if cfg.warmup > 0:
            self.say(f"warm-up: {cfg.warmup:g} s per endpoint (not recorded)")
            for ep in cfg.endpoints:
                self._run(ep, cfg.connections[0], cfg.warmup)
        runs: list[dict[str, Any]] = []
        total = cfg.repeats * len(cfg.connections) * len(cfg.endpoints)
        k = 0
        for rnd in range(cfg.repeats):
            for conns in cfg.connections:
                for ep in cfg.endpoints:
                    k += 1
                    r = self._run(ep, conns, cfg.seconds)
                    r.update(endpoint=ep, connections=conns, round=rnd)
                    runs.append(r)
                    self.say(f"run {k}/{total} round {rnd + 1} c={conns} {ep:6s} {r['rps']:8.0f} req/s  "
                             f"p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} ms  app p99 {r['app_p99_ms']:.2f} ms  "
                             f"API core {r['api_busy']:.0%}  errors {r['errors']}"
                             + (f" {r['statuses']} {r['socket_errors']}" if r["errors"] else "")
                             + (f"  warm/cold {r['warm']}/{r['cold']}" if ep in ("warm", "cold") else ""))
        self.results["http_runs"] = runs

    def paced(self) -> dict[str, Any] | None:
        """The warm lesson start at fixed offered rates below the warm throughput measured above (the
        best median over connection counts): rounds of every fraction, interleaved."""
        cfg = self.cfg
        warm = report.aggregate([r for r in self.results.get("http_runs", []) if r["endpoint"] == "warm"])
        if not cfg.paced_fractions or not warm:
            return None
        capacity = max(a["rps"] for a in warm)
        assert self.stack.endpoints is not None
        floor = rtt_probe.measure(self.stack.endpoints.redis_url, API_CPU, min(cfg.paced_fractions) * capacity,
                                  cfg.paced_seconds)
        self.say(f"Redis round-trip floor from the API's core at {floor['rate']:.0f}/s: PING p50 "
                 f"{floor['p50_ms']:.3f} p99 {floor['p99_ms']:.3f} p99.9 {floor['p999_ms']:.3f} ms")
        runs: list[dict[str, Any]] = []
        total = cfg.repeats * len(cfg.paced_fractions)
        self.say(f"paced warm runs: {cfg.arrivals} arrivals over {cfg.paced_connections} connections at "
                 + ", ".join(f"{f:.0%}" for f in cfg.paced_fractions) + f" of {capacity:,.0f} req/s")
        for rnd in range(cfg.repeats):
            for frac in cfg.paced_fractions:
                rate = frac * capacity
                r = self._run("warm", cfg.paced_connections, cfg.paced_seconds, rate=rate)
                r.update(fraction=frac, offered_rps=rate, round=rnd)
                runs.append(r)
                self.say(f"paced {len(runs)}/{total} {frac:4.0%} offered {rate:7.0f} got {r['rps']:7.0f} req/s  "
                         f"app p50 {r['app_p50_ms']:.3f} p99 {r['app_p99_ms']:.3f} p99.9 {r['app_p999_ms']:.3f} ms  "
                         f"client p99 {r['p99_ms']:.3f} ms  late {r['late']}  API core {r['api_busy']:.0%} "
                         f"(others {r['api_core_others']:.0%}; run-queue wait api "
                         f"{r['runq_ms_per_s'].get('api', 0):.0f} redis "
                         f"{r['runq_ms_per_s'].get('redis', 0):.0f} ms/s)  "
                         f"load {r['loadavg']}  errors {r['errors']}")
        return {"capacity_rps": capacity, "connections": cfg.paced_connections, "arrivals": cfg.arrivals,
                "seconds": cfg.paced_seconds, "runs": runs, "redis_floor": floor}

    # --- cold path at scale ------------------------------------------------------------------------
    def cold_at_scale(self, label: str) -> dict[str, Any]:
        assert self.bank is not None and self.stack.endpoints is not None
        h = seed.history(self.bank, HEAVY, self.cfg.heavy_seen)
        skills = [self.bank.skills[s]["id"] for s in h.skills]
        per_skill = self.cfg.lesson_size * 3 // len(skills) + self.cfg.lesson_size  # as curator.refill.plan asks
        params = {"learner": HEAVY, "course": self.bank.course, "skills": skills, "per_skill": per_skill}
        client = redis.Redis.from_url(self.stack.endpoints.redis_url)
        try:
            client.delete(constants.playlist_key(HEAVY, self.bank.course))
        finally:
            client.close()
        with psycopg.connect(self.stack.endpoints.database_url) as conn:
            row = conn.execute("SELECT count(*) FROM learner_seen WHERE learner_id = %s", (HEAVY,)).fetchone()
            seen = int(row[0]) if row else 0
        runs = 200 if not self.cfg.quick else 50
        self.say(f"cold path at scale ({label}): {self.bank.size:,} questions, learner with {seen:,} seen")
        sql = cold_sql.sql_timings(self.stack.endpoints.database_url, params, runs, 5 if not self.cfg.quick else 2)
        http = cold_sql.http_timings(self.stack.base_url, self.bank.course, self.tokens(HEAVY), self.cfg.cold_requests,
                                     self.work)
        out = {"label": label, "bank": self.bank.size, "seen": seen, "per_skill": per_skill, "skills": len(skills),
               "sql": sql, "http": http}
        self.say(f"  SQL p50 {sql['wall']['p50_ms']:.2f} p99 {sql['wall']['p99_ms']:.2f} ms (EXPLAIN exec p99 "
                 f"{sql['execution']['p99_ms']:.2f} ms; ORDER BY random() p50 "
                 f"{sql['naive_execution']['p50_ms']:.1f} ms)"
                 f"; HTTP p50 {http['client']['p50_ms']:.2f} p99 {http['client']['p99_ms']:.2f} ms")
        return out

    # --- locust --------------------------------------------------------------------------------------
    def locust(self) -> dict[str, Any] | None:
        cfg = self.cfg
        if cfg.locust_seconds <= 0:
            return None
        assert self.bank is not None and self.stack.endpoints is not None
        dropped = self.stack.drop_queued_refills()
        self.say(f"locust: dropped {dropped:,} refills queued by the cold runs; starting curator + factory workers")
        loc = self.learners("loc", cfg.locust_learners)
        half = len(loc) // 2
        try:
            asyncio.run(self._curator_refill(loc[:half]))
        except Exception as exc:  # the curator is someone else's code: report it, measure the rest
            self.results.setdefault("failures", []).append(f"curator refill before locust: {type(exc).__name__}: {exc}")
            self.say(f"locust: curator refill failed ({type(exc).__name__}: {exc}); warm learners start cold")
        spec = {"course": self.bank.course, "warm": loc[:half], "cold": loc[half:],
                "skills": [s["id"] for s in self.bank.skills]}
        spec_path = self.work / "locust-learners.json"
        spec_path.write_text(json.dumps(spec))
        self.stack.start_workers()
        csv = self.work / "locust"
        cmd = [*loadgen.pin_prefix(LOAD_CPU), sys.executable, "-m", "locust",
               "-f", str(ROOT / "loadtests" / "locustfile.py"),
               "--headless", "-u", str(cfg.locust_users), "-r", str(max(1, cfg.locust_users // 5)),
               "-t", f"{cfg.locust_seconds}s", "--host", self.stack.base_url, "--csv", str(csv), "--only-summary",
               "--stop-timeout", "5", "--p99-ms", "500", "--max-error-rate", "0.01"]
        env = {**self.stack.env(), "LESSONLOOP_LOADTEST_SPEC": str(spec_path), "PYTHONWARNINGS": "ignore"}
        self.say(f"locust: {cfg.locust_users} users (learners + designers) for {cfg.locust_seconds}s, thresholds "
                 "p99 500 ms, errors 1%")
        t0 = time.monotonic()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT,
                              timeout=cfg.locust_seconds + 120)
        self.stack.stop_workers()
        stats = report.read_locust_csv(Path(f"{csv}_stats.csv"))
        out = {"exit_code": proc.returncode, "seconds": round(time.monotonic() - t0, 1), "stats": stats,
               "users": cfg.locust_users, "command": " ".join(cmd[cmd.index("-m"):]).replace(str(ROOT) + "/", ""),
               "tail": proc.stderr[-1500:]}
        total = next((s for s in stats if s["name"] == "Aggregated"), None)
        self.say(f"locust: exit code {proc.returncode}" + (f", {total['rps']:.1f} req/s, p99 {total['p99_ms']} ms, "
                                                          f"failures {total['failures']}" if total else ""))
        return out

    async def _curator_refill(self, learners: list[str]) -> None:
        """Warm playlists through the curator's own code path (plan, store in PostgreSQL, write Redis)."""
        from curator.learner_model import LearnerModel
        from curator.refill import CuratorDeps, refill
        from shared.db.pool import open_async_pool
        from shared.redis_client import async_client

        assert self.stack.endpoints is not None and self.bank is not None
        settings = get_settings()
        pool = await open_async_pool(self.stack.endpoints.database_url, settings.database, min_size=1)
        r = async_client(self.stack.endpoints.redis_url, settings.redis)
        try:
            deps = CuratorDeps(settings=settings, pool=pool, playlist_redis=r,
                               model=LearnerModel.load(settings.curator.model_params))
            for lid in learners:
                await refill(deps, lid, self.bank.course)
        finally:
            await pool.close()
            await r.aclose()

    # --- the other engineers' benches ----------------------------------------------------------------
    def others(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if not self.cfg.others:
            return out
        assert self.stack.endpoints is not None
        eps = self.stack.endpoints
        os.environ.update({"DATABASE_URL": eps.database_url, "REDIS_URL": eps.redis_url,
                           "LESSONLOOP_QUEUE_REDIS_URL": self.stack.endpoints.queue_redis_url})
        get_settings.cache_clear()
        for name in ("curator_bench", "factory_bench"):
            if importlib.util.find_spec(f"loadtests.{name}") is None:
                out[name] = {"status": "module not present yet"}
                self.say(f"{name}: not present, skipped")
                continue
            self.say(f"{name}: running")
            t0 = time.monotonic()
            try:
                mod = importlib.import_module(f"loadtests.{name}")
                # our own throwaway stores, never a shared default folder another run may be using
                params = inspect.signature(mod.run).parameters
                kwargs = {k: v for k, v in (("database_url", eps.database_url), ("redis_url", eps.redis_url),
                                            ("queue_redis_url", eps.queue_redis_url)) if k in params}
                out[name] = {"status": "ok", "figures": mod.run(self.cfg.quick, **kwargs),
                             "seconds": round(time.monotonic() - t0, 1)}
            except Exception as exc:  # another team's module: report, don't lose the rest
                out[name] = {"status": f"failed: {type(exc).__name__}: {exc}"}
            self.say(f"{name}: {out[name]['status']}")
        return out

    def _save(self) -> None:
        (self.work / "results.json").write_text(json.dumps(self.results, indent=1, default=str))

    def _stage(self, name: str, fn: Any) -> None:
        """A later stage failing (often someone else's code mid-change) is reported, not fatal."""
        try:
            self.results[name] = fn()
        except Exception as exc:
            self.results[name] = None
            self.results.setdefault("failures", []).append(f"{name}: {type(exc).__name__}: {exc}")
            self.say(f"{name}: failed ({type(exc).__name__}: {exc}); continuing")
        self._save()

    # --- everything ------------------------------------------------------------------------------------
    def run(self) -> Path:
        cfg = self.cfg
        try:
            self.setup()
            self.http_rounds()
            self._save()
            self._stage("paced", self.paced)
            scale: list[dict[str, Any]] = []
            self.results["cold_scale"] = scale
            if "cold" in cfg.endpoints:
                self._stage("cold_scale_bench", lambda: scale.append(self.cold_at_scale("bench bank")))
            self._stage("locust", self.locust)
            self._stage("others", self.others)
            assert self.bank is not None and self.stack.endpoints is not None
            if "cold" in cfg.endpoints and cfg.scale_bank // len(self.bank.skills) > self.bank.per_skill:
                self.say(f"growing the bank to {cfg.scale_bank:,} questions for the cold path at scale")
                t = seed.grow_bank(self.stack.endpoints.database_url, self.bank, cfg.scale_bank, self.say)
                self.results["seed"]["scale_bank_seconds"] = round(t, 1)
                self._stage("cold_scale_scaled", lambda: scale.append(self.cold_at_scale("scaled bank")))
                self.results["seed"]["sizes_scaled"] = self._sizes()
        finally:
            self.stack.stop()
        for lines in self.work.glob("*.txt"):
            lines.unlink()
        (self.work / "results.json").write_text(json.dumps(self.results, indent=1, default=str))
        path = report.write(self.results, cfg.out, cfg.img_dir, command=" ".join(["python -m loadtests.bench",
                                                                                  *sys.argv[1:]]))
        self.say(f"wrote {path} (raw results: {self.work / 'results.json'})")
        return path


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else 0.0


def _endpoints(text: str) -> list[str]:
    eps = [e for e in text.split(",") if e]
    unknown = [e for e in eps if e not in ENDPOINTS]
    if unknown or not eps:
        raise argparse.ArgumentTypeError(f"endpoints are {', '.join(ENDPOINTS)}; got {text!r}")
    return [e for e in ENDPOINTS if e in eps]


def parse(argv: list[str] | None) -> Config:
    p = argparse.ArgumentParser(prog="python -m loadtests.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small bank, short runs (~2 minutes)")
    p.add_argument("--bank-size", type=int, help="questions in the bank (default 200,000; quick 20,000)")
    p.add_argument("--scale-bank", type=int, help="bank size for the cold path at scale (default 1,000,000)")
    p.add_argument("--warm-learners", type=int)
    p.add_argument("--cold-learners", type=int)
    p.add_argument("--depth", type=int, help="lessons queued per warm learner before each warm run")
    p.add_argument("--seconds", type=float, help="length of each measured run")
    p.add_argument("--repeats", type=int, help="rounds; each figure is the median over them")
    p.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")], help="e.g. 32,128")
    p.add_argument("--endpoints", type=_endpoints,
                   help=f"closed-loop endpoints, e.g. ping,warm (default {','.join(ENDPOINTS)}; the cold path at "
                        "scale runs only with cold)")
    p.add_argument("--paced-fractions", type=lambda s: [float(x) for x in s.split(",") if x],
                   help="offered rates for the paced warm runs, as fractions of the warm throughput "
                        "(default 0.1,0.25,0.5,0.75,0.9; empty = skip)")
    p.add_argument("--paced-seconds", type=float, help="length of each paced run (default 10; quick 3)")
    p.add_argument("--paced-connections", type=int, help="connections the paced schedule is spread over (64)")
    p.add_argument("--arrivals", choices=loadgen.ARRIVALS, help="paced send times: poisson (default) or uniform")
    p.add_argument("--warmup", type=float, help="seconds per endpoint before the measured rounds (default 2)")
    p.add_argument("--cold-requests", type=int, help="cold lesson starts at scale, paced at 15/s (300; quick 60)")
    p.add_argument("--locust-seconds", type=int, help="mixed locust run (0 = skip)")
    p.add_argument("--locust-users", type=int)
    p.add_argument("--no-others", action="store_true", help="skip curator_bench / factory_bench")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (stores' data, API and worker logs)")
    p.add_argument("--database-url")
    p.add_argument("--redis-url")
    p.add_argument("--out", type=Path, help="report path (default docs/benchmarks.md)")
    p.add_argument("--img-dir", type=Path, help="plots folder (default docs/img)")
    a = p.parse_args(argv)
    values: dict[str, Any] = Config.quick_defaults() if a.quick else {}
    values["quick"] = a.quick
    for key in ("bank_size", "scale_bank", "warm_learners", "cold_learners", "depth", "seconds", "repeats",
                "connections", "cold_requests", "warmup", "locust_seconds", "locust_users", "database_url", "redis_url",
                "out", "img_dir", "endpoints", "paced_fractions", "paced_seconds", "paced_connections", "arrivals"):
        if getattr(a, key) is not None:
            values[key] = getattr(a, key)
    if a.no_others:
        values["others"] = False
    values["keep"] = a.keep
    return Config(**values)


def main(argv: list[str] | None = None) -> int:
    cfg = parse(argv)
    Bench(cfg, Progress()).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
