"""The content factory's benchmark: throughput, failover and kill-and-resume, on real processes.

Everything is real but the LLM: its own embedded PostgreSQL (pgvector) and Redis in a temporary
folder (never ``./.lessonloop``), the sample curriculum, the fake provider server
(:mod:`loadtests.fake_llm`, both wire protocols, 1.5 s per reply), and ONE factory worker process
(``python -m lessonloop.cli worker factory``) pointed at it by environment variables. Jobs are
created with the same code the API's ``POST /v1/generation-jobs`` runs and read back from the
database. Three phases, each on empty tables and an empty Redis:

1. **throughput** — 10 % of replies are 429 with ``Retry-After: 1``; one job of many items over all
   36 skills, 10 items per call; staged items per minute from the first to the last staged row.
2. **failover** — two tiers (``primary`` on the OpenAI protocol, ``backup`` on Anthropic's); mid-job
   the primary model turns slow (longer than ``call_timeout``); from the fake's request log: seconds
   from the first timeout to the first request on the backup, requests per second per model, and
   the job's final status.
3. **kill** — SIGKILL the worker mid-job, start a new one, wait for the job; check zero lost (every
   batch done, rows == generated == staged + duplicates + invalid, every batch's count covered)
   and zero duplicated (no (job, batch, seq) twice, no content staged twice).

``run(quick=False) -> dict`` returns every figure; ``python -m loadtests.factory_bench [--quick]``
prints them as tables. The machine's load matters (other processes share its cores): the result
holds the CPU count and load average seen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import redis
from arq.constants import health_check_key_suffix
from psycopg.rows import dict_row

from factory.jobs import create_job
from factory.offline.curriculum_file import load_curriculum
from loadtests.fake_llm import FakeLLMServer
from shared import constants, queues
from shared.db import courses, migrate
from shared.redis_client import arq_pool
from shared.runtime import EmbeddedServices, Endpoints
from shared.settings import FactorySettings, RedisSettings

ROOT = Path(__file__).resolve().parents[1]
PYCACHE = Path(tempfile.gettempdir()) / "lessonloop-pycache"
LATENCY_S = 1.5
RATE_429 = 0.10
CALL_TIMEOUT_S = 4.0
PRIMARY, BACKUP = "fake-primary", "fake-backup"
TABLES = "review_decisions, questions, questions_staging, generation_batches, generation_jobs"


# --- processes ---------------------------------------------------------------------------------


class Worker:
    """One factory worker process (`python -m lessonloop.cli worker factory`)."""

    def __init__(self, eps: Endpoints, fake: FakeLLMServer, folder: Path, *, name: str, **env: str) -> None:
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("LESSONLOOP_", "OPENAI_", "ANTHROPIC_"))
                 and k not in ("DATABASE_URL", "REDIS_URL", "PYTHONDONTWRITEBYTECODE")}
        tiers = [
            {"name": "primary", "provider": "openai", "model": PRIMARY, "base_url": fake.base_url,
             "price_in": 2.0, "price_out": 8.0},
            {"name": "backup", "provider": "anthropic", "model": BACKUP, "base_url": fake.url,
             "price_in": 3.0, "price_out": 15.0},
        ]
        clean.update({
            "PYTHONPATH": str(ROOT), "DATABASE_URL": eps.database_url, "REDIS_URL": eps.redis_url,
            "LESSONLOOP_QUEUE_REDIS_URL": eps.queue_redis_url, "LESSONLOOP_DATA_DIR": str(folder / "data"),
            "OPENAI_API_KEY": "fake", "ANTHROPIC_API_KEY": "fake", "LESSONLOOP_FACTORY_TIERS": json.dumps(tiers),
            "LESSONLOOP_FACTORY_CALL_TIMEOUT": str(CALL_TIMEOUT_S), "LESSONLOOP_LOG_LEVEL": "WARNING",
            # Bytecode cached outside the tree (and the venv): a restarted worker starts as a deployed one
            # does, instead of recompiling every module when the environment forbids writing .pyc files.
            "PYTHONPYCACHEPREFIX": str(PYCACHE),
            **env,
        })
        self.log_path = folder / f"worker-{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "lessonloop.cli", "worker", "factory"], env=clean,
                                     cwd=folder, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self.started = time.time()

    def wait_ready(self, redis_url: str, timeout: float = 120) -> float:
        """Wait for the worker's first arq health check (written once it polls); seconds it took."""
        deadline = time.monotonic() + timeout
        with redis.Redis.from_url(redis_url) as client:
            while not client.exists(constants.GENERATION_QUEUE + health_check_key_suffix):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the worker exited ({self.proc.returncode}); see {self.log_path}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the worker was not ready in {timeout:.0f}s; see {self.log_path}")
                time.sleep(0.05)
        return time.time() - self.started

    def cpu_s(self) -> float:
        """User + system CPU seconds the worker has used so far."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def _reset(eps: Endpoints, fake: FakeLLMServer) -> None:
    with psycopg.connect(eps.database_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    with redis.Redis.from_url(eps.redis_url) as client:
        client.flushall()
    fake.reset()
    fake.set_latency(LATENCY_S)


def _post_job(eps: Endpoints, spec: dict[str, Any]) -> str:
    """Create and enqueue a job exactly as POST /v1/generation-jobs does."""

    async def go() -> str:
        cfg = FactorySettings(max_job_count=spec["count"])
        async with await psycopg.AsyncConnection.connect(eps.database_url, row_factory=dict_row) as conn:
            async with conn.transaction():
                job_id, n = await create_job(conn, spec, cfg, created_by="factory-bench")
        arq = await arq_pool(eps.queue_redis_url, RedisSettings())
        try:
            await queues.enqueue_batches(arq, job_id, list(range(n)))
        finally:
            await arq.aclose()
        return str(job_id)

    return asyncio.run(go())


def _query(eps: Endpoints, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(eps.database_url, row_factory=dict_row, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def _job(eps: Endpoints, job_id: str) -> dict[str, Any]:
    return _query(eps, "SELECT * FROM generation_jobs WHERE id = %s", job_id)[0]


def _wait(eps: Endpoints, job_id: str, *, timeout: float, until: Callable[[dict[str, Any]], bool] | None = None,
          worker: Worker | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = _job(eps, job_id)
        if (until(job) if until else job["status"] not in ("queued", "running")):
            return job
        if worker is not None and worker.proc.poll() is not None:
            raise RuntimeError(f"the worker exited ({worker.proc.returncode}); see {worker.log_path}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} did not get there in {timeout:.0f}s: {job['status']}, "
                               f"{job['batches_done']}/{job['batches_total']} batches")
        time.sleep(0.2)


def _spec(skills: list[str], count: int) -> dict[str, Any]:
    return {"course": "spanish-a1-b1", "skills": skills, "count": count}


# --- phase 1: throughput -------------------------------------------------------------------------


def _throughput(eps: Endpoints, fake: FakeLLMServer, folder: Path, skills: list[str], count: int) -> dict[str, Any]:
    _reset(eps, fake)
    fake.set_fault("rate_limit", rate=RATE_429, retry_after=1)
    worker = Worker(eps, fake, folder, name="throughput")
    try:
        worker.wait_ready(eps.queue_redis_url)  # the clock measures the factory, not the imports
        cpu0, started = worker.cpu_s(), time.time()
        job_id = _post_job(eps, _spec(skills, count))
        job = _wait(eps, job_id, timeout=600, worker=worker)
        cpu = worker.cpu_s() - cpu0
    finally:
        worker.stop()
    rows = _query(eps, """
        SELECT extract(epoch FROM created_at)::float8 AS t, status FROM questions_staging WHERE job_id = %s
        ORDER BY created_at""", job_id)
    first, last = rows[0]["t"], rows[-1]["t"]
    span = max(last - first, 1e-6)
    # Rows of one batch share their transaction's timestamp: leave the first batch's out of the rate.
    after_first = [r for r in rows if r["t"] > first]
    unique = [r for r in after_first if r["status"] in ("pending", "accepted")]
    by_tier = {r["tier"]: r["n"] for r in _query(eps, """
        SELECT provenance->>'tier' AS tier, count(*) AS n FROM questions_staging WHERE job_id = %s
        AND status <> 'invalid' GROUP BY 1""", job_id)}
    failures = {r["kind"]: r["n"] for r in _query(eps, """
        SELECT f->>'kind' AS kind, count(*) AS n FROM generation_batches b, jsonb_array_elements(b.failures) f
        WHERE b.job_id = %s GROUP BY 1""", job_id)}
    stats = fake.stats()
    events = [e for e in fake.events(since=first) if first <= e["start"] <= last]
    busy = sum(e["end"] - e["start"] for e in events)
    wall = job["finished_at"].timestamp() - started
    return {
        "job": job_id, "status": job["status"], "requested": job["requested"], "generated": job["generated"],
        "staged": job["staged"], "duplicates": job["duplicates"], "invalid": job["invalid"],
        "batches": job["batches_total"], "cost_usd": float(job["cost_usd"]),
        "span_s": round(span, 2), "items_per_min": round(len(after_first) / span * 60),
        "unique_items_per_min": round(len(unique) / span * 60),
        "wall_s": round(wall, 2), "items_per_min_wall": round(len(rows) / wall * 60),
        "llm_requests": stats.get("requests", 0), "llm_429": stats.get("outcome:rate_limit", 0),
        "max_in_flight": stats.get("max_in_flight", 0),
        "mean_in_flight": round(busy / span, 1),  # calls the fake was serving, on average, over the span
        "worker_cpu_s": round(cpu, 2), "items_by_tier": by_tier, "failures": failures,
    }


# --- phase 2: failover ------------------------------------------------------------------------------


def _failover(eps: Endpoints, fake: FakeLLMServer, folder: Path, skills: list[str], count: int) -> dict[str, Any]:
    _reset(eps, fake)
    worker = Worker(eps, fake, folder, name="failover")
    try:
        worker.wait_ready(eps.queue_redis_url)
        job_id = _post_job(eps, _spec(skills, count))
        t_job = time.time()
        _wait(eps, job_id, timeout=120, worker=worker, until=lambda j: j["staged"] + j["duplicates"] >= count // 4)
        t_fault = time.time()
        fake.set_fault("slow", latency_s=CALL_TIMEOUT_S + 2.0, model=PRIMARY)
        job = _wait(eps, job_id, timeout=600, worker=worker)
    finally:
        worker.stop()
    events = [e for e in fake.events(since=t_job) if e["start"] >= t_job]
    slow = [e for e in events if e["outcome"] == "slow"]
    first_timeout = min(e["start"] for e in slow) + CALL_TIMEOUT_S if slow else None
    backup_after = sorted(e["start"] for e in events if e["model"] == BACKUP and e["start"] >= t_fault)
    per_second: dict[int, Counter[str]] = defaultdict(Counter)
    for e in events:
        per_second[int(e["start"] - t_fault)][e["model"]] += 1
    tiers = _query(eps, """
        SELECT floor(extract(epoch FROM created_at) - %s)::int AS s, provenance->>'tier' AS tier, count(*) AS n
        FROM questions_staging WHERE job_id = %s AND status <> 'invalid' GROUP BY 1, 2 ORDER BY 1, 2""",
                   t_fault, job_id)
    staged: dict[int, dict[str, int]] = defaultdict(dict)
    for r in tiers:
        staged[r["s"]][r["tier"]] = r["n"]
    timeline = [{"s": s, "requests": dict(per_second.get(s, {})), "staged_by_tier": staged.get(s, {})}
                for s in range(min(per_second, default=0), max(per_second, default=0) + 1)]
    by_tier = Counter[str]()
    for r in tiers:
        by_tier[r["tier"]] += r["n"]
    return {
        "job": job_id, "status": job["status"], "requested": job["requested"], "staged": job["staged"],
        "duplicates": job["duplicates"], "fault_at_s": round(t_fault - t_job, 2),
        "first_timeout_after_fault_s": None if first_timeout is None else round(first_timeout - t_fault, 2),
        "backup_traffic_after_first_timeout_s":
            None if first_timeout is None or not backup_after else round(backup_after[0] - first_timeout, 2),
        "primary_requests_after_fault": sum(1 for e in events if e["model"] == PRIMARY and e["start"] >= t_fault),
        "primary_timeouts": len(slow), "items_by_tier": dict(by_tier), "timeline": timeline,
    }


# --- phase 3: kill and resume --------------------------------------------------------------------------


def _kill(eps: Endpoints, fake: FakeLLMServer, folder: Path, skills: list[str], count: int,
          lease_s: float) -> dict[str, Any]:
    _reset(eps, fake)
    fake.set_fault("rate_limit", rate=RATE_429, retry_after=1)
    env = {"LESSONLOOP_FACTORY_BATCH_LEASE_S": str(lease_s)}
    first = Worker(eps, fake, folder, name="killed", **env)
    try:
        first.wait_ready(eps.queue_redis_url)
        job_id = _post_job(eps, _spec(skills, count))
        before = _wait(eps, job_id, timeout=120, worker=first,
                       until=lambda j: j["batches_done"] >= j["batches_total"] // 3)
    except BaseException:
        first.stop()
        raise
    running = _query(eps, "SELECT count(*) AS n FROM generation_batches WHERE job_id = %s AND status = 'running'",
                     job_id)[0]["n"]
    first.kill()
    t_kill = time.time()
    with redis.Redis.from_url(eps.queue_redis_url) as client:  # the dead worker's last health check
        client.delete(constants.GENERATION_QUEUE + health_check_key_suffix)
    staged_at_kill = _job(eps, job_id)["batches_done"]
    second = Worker(eps, fake, folder, name="restarted", **env)
    try:
        restart_s = second.wait_ready(eps.queue_redis_url)
        job = _wait(eps, job_id, timeout=600, worker=second)
    finally:
        second.stop()
    checks = verify_job(eps.database_url, job_id)
    return {
        "job": job_id, "status": job["status"], "batches": job["batches_total"],
        "batches_done_at_kill": staged_at_kill, "batches_in_flight_at_kill": running,
        "killed_after_s": round(t_kill - before["created_at"].timestamp(), 2),
        "worker_restart_s": round(restart_s, 2),
        "finished_after_kill_s": round(job["finished_at"].timestamp() - t_kill, 2),
        "lease_s": lease_s, **checks,
    }


def verify_job(database_url: str, job_id: str) -> dict[str, Any]:
    """Zero lost and zero duplicated, from the database alone (also used by the tests)."""
    with psycopg.connect(database_url, row_factory=dict_row, autocommit=True) as conn:
        job = conn.execute("SELECT * FROM generation_jobs WHERE id = %s", (job_id,)).fetchone()
        assert job is not None
        batches = conn.execute("""
            SELECT b.batch_no, b.status, b.count, b.generated, b.staged, b.duplicates, b.invalid, b.attempts,
                   (SELECT count(*) FROM questions_staging s WHERE s.job_id = b.job_id AND s.batch_no = b.batch_no)
                       AS rows
            FROM generation_batches b WHERE b.job_id = %s ORDER BY b.batch_no""", (job_id,)).fetchall()
        seq_dups = conn.execute("""
            SELECT count(*) AS n FROM (SELECT 1 FROM questions_staging WHERE job_id = %s
            GROUP BY batch_no, seq HAVING count(*) > 1) d""", (job_id,)).fetchone()
        content_dups = conn.execute("""
            SELECT count(*) AS n FROM (SELECT 1 FROM questions_staging WHERE job_id = %s
            AND status IN ('pending', 'accepted') GROUP BY content_hash HAVING count(*) > 1) d""", (job_id,)).fetchone()
        rows = conn.execute("SELECT count(*) AS n FROM questions_staging WHERE job_id = %s", (job_id,)).fetchone()
    assert seq_dups is not None and content_dups is not None and rows is not None
    not_done = [b["batch_no"] for b in batches if b["status"] != "done"]
    short = [b["batch_no"] for b in batches if b["generated"] < b["count"]]
    mismatched = [b["batch_no"] for b in batches
                  if b["rows"] != b["generated"] or b["staged"] + b["duplicates"] + b["invalid"] != b["generated"]]
    lost = (len(not_done) + len(short) + len(mismatched)
            + (job["staged"] + job["duplicates"] + job["invalid"] != job["generated"])
            + (rows["n"] != job["generated"]) + (sum(b["count"] for b in batches) != job["requested"]))
    return {
        "generated": job["generated"], "staged": job["staged"], "duplicates": job["duplicates"],
        "invalid": job["invalid"], "rows": rows["n"], "batches_not_done": not_done,
        "batches_short": short, "batches_mismatched": mismatched,
        "batches_rerun": sum(1 for b in batches if b["attempts"] > 1),
        "seq_duplicates": seq_dups["n"], "content_duplicates": content_dups["n"],
        "zero_lost": lost == 0, "zero_duplicated": seq_dups["n"] == 0 and content_dups["n"] == 0,
    }


# --- the whole run -----------------------------------------------------------------------------------------


def run(quick: bool = False) -> dict[str, Any]:
    """Start the stores and the fake provider, run the three phases, return every figure."""
    folder = Path(tempfile.mkdtemp(prefix="lessonloop-factory-bench-"))
    services = EmbeddedServices(folder / "data")
    sizes = {"throughput": 600, "failover": 400, "kill": 300} if quick else \
        {"throughput": 3000, "failover": 1500, "kill": 1500}
    try:
        eps = services.start()
        migrate.upgrade(eps.database_url)
        curriculum = load_curriculum()

        async def load() -> None:
            async with await psycopg.AsyncConnection.connect(eps.database_url) as conn:
                await courses.save_curriculum(conn, curriculum)
                await conn.commit()

        asyncio.run(load())
        skills = [s["id"] for s in curriculum["skills"]]
        result: dict[str, Any] = {
            "conditions": {
                "cpus": os.cpu_count(), "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
                "worker_processes": 1, "concurrency": FactorySettings.model_fields["concurrency"].default,
                "batch_size": FactorySettings.model_fields["batch_size"].default, "latency_s": LATENCY_S,
                "rate_429": RATE_429, "call_timeout_s": CALL_TIMEOUT_S, "quick": quick,
                "skills": len(skills), "embedding": "hashing",
            },
        }
        with FakeLLMServer(latency_s=LATENCY_S) as fake:
            result["throughput"] = _throughput(eps, fake, folder, skills, sizes["throughput"])
            result["failover"] = _failover(eps, fake, folder, skills, sizes["failover"])
            result["kill"] = _kill(eps, fake, folder, skills, sizes["kill"], lease_s=3.0 if quick else 5.0)
        result["conditions"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        return result
    finally:
        services.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _table(title: str, rows: dict[str, Any]) -> str:
    width = max(len(k) for k in rows)
    return "\n".join([title, "-" * len(title)] + [f"{k:<{width}}  {v}" for k, v in rows.items()]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="Content factory benchmark (throughput, failover, kill).")
    parser.add_argument("--quick", action="store_true", help="smaller jobs (about a minute)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    result = run(quick=args.quick)
    failover = dict(result["failover"])
    timeline = failover.pop("timeline")
    print(_table("conditions", result["conditions"]))
    print(_table("throughput (one worker, 1.5 s replies, 10% 429)", result["throughput"]))
    print(_table("failover (primary turns slow mid-job)", failover))
    print("second  requests per model (started)                 items staged by tier")
    for row in timeline:
        if row["s"] >= -3:
            print(f"{row['s']:>6}  {json.dumps(row['requests']):<48} {json.dumps(row['staged_by_tier'])}")
    print()
    print(_table("kill -9 mid-job, restart", result["kill"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
