"""The chaos run (`make chaos`; a short version runs in the test suite, tests/chaos/): the real stack
under a learner load while its dependencies fail one after another, then proof that nothing was lost.

The system: `lessonloop.stack.Stack` in its own temporary data folder — embedded PostgreSQL and
Redis, the API, a factory worker and a curator worker as child processes — with the factory pointed
at the fake LLM server (loadtests/fake_llm.py) through two tiers: ``primary`` (OpenAI protocol) and
``backup`` (Anthropic protocol). The load: careful learners (loadtests/chaos_load.py) that retry an
answer with the same attempt id. The phases, in turn:

* ``baseline`` — nothing fails;
* ``llm-fault`` — a generation job is running when the primary provider starts failing every call;
* ``worker-kill`` — with a second job running, the factory and the curator worker are SIGKILLed and
  started again;
* ``redis-down`` — Redis is stopped, then started again; once the API is ready again, a few probe
  learners each start a cold lesson and the run waits for the curator worker (whose arq loop died
  with the connection) to refill their playlists;
* ``postgres-down`` — PostgreSQL is stopped, then started again; meanwhile the probe learners start
  lessons (their precomputed ones: warm, served from Redis alone) while the load's learners retry
  their answers;
* ``recovered`` — nothing fails.

A request counts in the phase in which its reply (or its failure) reached the client, so a request
sent just before a store stops and refused after is counted with that store's outage.

Questions are retired (as staff, through the API) during the run; the time each retire was
acknowledged is recorded. Afterwards the run checks, from the client's records and the database:

1. every acknowledged answer (every 200 the client saw, by attempt id) is stored exactly once in
   ``answer_events``, with the grade the client was given;
2. no learner received a retired question in a lesson asked for after the retire was acknowledged,
   and every question served is in the bank and came from a staged item a human accepted;
3. every generation job finished (or still has its unfinished batches pending, i.e. resumable), no
   ``(job, batch, seq)`` twice and no batch staged twice (rows = generated = staged + duplicates +
   invalid, for every batch);
4. the secrets (token secret, LLM keys, every bearer token used) appear in no process's log;
5. no process died except those the run killed;
6. every probe learner with a precomputed lesson got it warm while PostgreSQL was down;

and gives the error rate and latency percentiles per phase. `make chaos` writes them into
docs/reliability.md ("Last run").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from arq.constants import health_check_key_suffix, in_progress_key_prefix
from psycopg.rows import dict_row

from lessonloop.stack import Stack, child_env
from loadtests.chaos_load import CONN_ERROR, LearnerLoad, LoadRecord, Probes, Req
from loadtests.fake_llm import FakeLLMServer
from shared import constants, queues
from shared.auth import mint_token
from shared.settings import Settings, get_settings

COURSE = "spanish-a1-b1"
PRIMARY, BACKUP = "chaos-primary", "chaos-backup"
PHASES = ("baseline", "llm-fault", "worker-kill", "redis-down", "postgres-down", "recovered")
ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "reliability.md"
MARK_START, MARK_END = "<!-- chaos:last-run:start -->", "<!-- chaos:last-run:end -->"
PYCACHE = Path(tempfile.gettempdir()) / "lessonloop-pycache"
STORE_ENV = ("DATABASE_URL", "REDIS_URL", "LESSONLOOP_QUEUE_REDIS_URL", "LESSONLOOP_DB_URL", "LESSONLOOP_REDIS_URL")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ChaosConfig:
    learners: int
    phase_s: float
    """Length of the baseline, llm-fault, worker-kill and recovered phases."""
    outage_s: float
    """How long Redis, then PostgreSQL, stay down."""
    seed_skills: int
    seed_per_skill: int
    job_count: int
    """Items asked for by each of the two generation jobs run during the faults."""
    retire_per_phase: int
    llm_latency_s: float
    """Latency of the fake provider while the jobs run (keeps batches in flight across a fault)."""
    drain_s: float
    """How long the jobs may take to finish after the load stops (a job still unfinished then must be resumable)."""
    restart_wait_s: float
    """Longest wait for the restarted workers to poll again before the store outages begin."""
    probes: int
    """Probe learners whose precomputed lessons are asked for while PostgreSQL is down."""
    refill_wait_s: float
    """Longest wait, after Redis came back, for the curator to refill the probes' playlists."""


SHORT = ChaosConfig(learners=8, phase_s=4.0, outage_s=3.0, seed_skills=6, seed_per_skill=20, job_count=40,
                    retire_per_phase=2, llm_latency_s=0.8, drain_s=10.0,
                    restart_wait_s=8.0, probes=3, refill_wait_s=30.0)
LONG = ChaosConfig(learners=32, phase_s=25.0, outage_s=15.0, seed_skills=10, seed_per_skill=40, job_count=160,
                   retire_per_phase=3, llm_latency_s=1.0, drain_s=240.0,
                   restart_wait_s=90.0, probes=6, refill_wait_s=60.0)
HEALTH_KEYS = {"factory": constants.GENERATION_QUEUE + health_check_key_suffix,
               "curator": constants.REFILL_QUEUE + health_check_key_suffix}
"""arq writes `<queue>:health-check` once a worker polls (arq.constants.health_check_key_suffix)."""


class ChaosStack(Stack):
    """`Stack` whose children's log files are closed in this process once handed to the child (the child
    keeps its own descriptor); `Stack.spawn` leaves them to the garbage collector (a ResourceWarning)."""

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        assert self.endpoints is not None and self.log_dir is not None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{name}.log", "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "lessonloop.cli", *args], env=child_env(self.endpoints),
                                    stdout=out, stderr=subprocess.STDOUT)
        self.children[name] = proc
        return proc


@dataclass
class Retire:
    question_id: str
    phase: str
    sent: float
    acked: float | None
    status: int


@dataclass
class ChaosRun:
    cfg: ChaosConfig
    progress: Progress
    folder: Path
    stack: Stack
    fake: FakeLLMServer
    secrets: dict[str, str]
    staff_headers: dict[str, str]
    phases: list[tuple[str, float, float]] = field(default_factory=list)
    retires: list[Retire] = field(default_factory=list)
    jobs: dict[str, str] = field(default_factory=dict)  # job id -> the phase it ran in
    killed: list[tuple[str, int, float]] = field(default_factory=list)  # (child, pid, when)
    crashes: list[dict[str, Any]] = field(default_factory=list)
    load: LearnerLoad | None = None
    phase: str = "setup"
    worker_restart_s: float = 0.0
    workers_ready: bool = False
    probes: Probes | None = None
    recovery_s: dict[str, float | None] = field(default_factory=dict)
    """Seconds from a store's restart to the API's /readyz answering 200 again (None: not within 60 s)."""
    metrics_ports: dict[str, int] = field(default_factory=dict)

    # --- plumbing ------------------------------------------------------------------------------------
    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, self.stack.base_url + path, headers=self.staff_headers, timeout=30, **kw)

    def supervise(self) -> None:
        """A child that died without being killed by the run is a crash: record it and start it
        again, as the platform's supervisor (ECS, systemd) would."""
        for name, proc in list(self.stack.children.items()):
            if proc.poll() is not None and all(pid != proc.pid for _, pid, _ in self.killed):
                self.crashes.append({"process": name, "exit_code": proc.returncode, "phase": self.phase,
                                     "at": time.time(), "cause": _last_error(self.folder / "logs" / f"{name}.log")})
                self.progress(f"  !! {name} exited with {proc.returncode} during {self.phase}; restarting it")
                self.stack.spawn(name, _child_args(name, self.stack.port))

    def hold(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.supervise()
            time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    @contextlib.contextmanager
    def in_phase(self, name: str) -> Iterator[None]:
        self.phase = name
        start = time.time()
        self.progress(f"phase {name}")
        try:
            yield
        finally:
            self.phases.append((name, start, time.time()))

    # --- actions -------------------------------------------------------------------------------------
    def post_job(self, skills: list[str], count: int) -> str:
        r = self.api("POST", "/v1/generation-jobs", json={"course": COURSE, "skills": skills, "count": count})
        r.raise_for_status()
        job_id = str(r.json()["id"])
        self.jobs[job_id] = self.phase
        return job_id

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.api("GET", f"/v1/generation-jobs/{job_id}").json())

    def wait_job(self, job_id: str, timeout: float, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                job = self.job(job_id)
                if until(job) or time.monotonic() > deadline:
                    return job
            except (httpx.HTTPError, ValueError):
                if time.monotonic() > deadline:
                    return {"id": job_id, "status": "unknown"}
            self.hold(0.2)

    def retire_some(self, n: int) -> None:
        """Retire n questions that sit in learners' precomputed playlists (or were served lately)."""
        candidates = self._queued_question_ids() + [q for s in reversed(self._served()) for q in s.question_ids]
        done = {r.question_id for r in self.retires}
        picked: list[str] = []
        for qid in candidates:
            if qid not in done and qid not in picked:
                picked.append(qid)
            if len(picked) == n:
                break
        for qid in picked:
            sent = time.time()
            try:
                r = self.api("POST", f"/v1/questions/{qid}/retire", json={"reason": "chaos run"})
                status = r.status_code
            except httpx.HTTPError:
                status = CONN_ERROR
            self.retires.append(Retire(qid, self.phase, sent, time.time() if status == 200 else None, status))

    def _served(self) -> list[Any]:
        return list(self.load.record.served) if self.load is not None else []

    def _queued_question_ids(self) -> list[str]:
        assert self.stack.endpoints is not None
        client = redis.Redis.from_url(self.stack.endpoints.redis_url, socket_timeout=2)
        out: list[str] = []
        try:
            for key in client.scan_iter("ll:pl:*", count=200):
                if Probes.PREFIX.encode() in key:
                    continue  # the probes' lessons are asked for while PostgreSQL is down: not retired
                for element in client.lrange(key, 0, 1):
                    out.extend(element.split(b"|", 1)[0].decode().split(","))
                if len(out) > 50:
                    break
        except redis.RedisError:
            pass
        finally:
            client.close()
        return out

    def kill(self, name: str) -> None:
        proc = self.stack.children[name]
        self.killed.append((name, proc.pid, time.time()))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def restart_workers(self, names: tuple[str, ...], timeout: float = 90.0) -> float:
        """Start the workers again and wait until each polls its queue; returns the seconds it took."""
        assert self.stack.endpoints is not None
        t0 = time.monotonic()
        client = redis.Redis.from_url(self.stack.endpoints.queue_redis_url, socket_timeout=2)
        try:
            client.delete(*[HEALTH_KEYS[n] for n in names])  # the killed workers' last health checks
            for name in names:
                self.stack.spawn(name, ["worker", name])
            while not (ready := all(client.exists(HEALTH_KEYS[n]) for n in names)) and time.monotonic() - t0 < timeout:
                self.hold(0.2)
        finally:
            client.close()
        self.workers_ready = ready
        return time.monotonic() - t0

    def wait_recovered(self, store: str, timeout: float = 60.0) -> None:
        """Hold (supervising) until the API's /readyz is 200 again after `store` restarted."""
        t0 = time.monotonic()
        self.recovery_s[store] = None
        while time.monotonic() - t0 < timeout:
            try:
                if httpx.get(self.stack.base_url + "/readyz", timeout=2).status_code == 200:
                    self.recovery_s[store] = round(time.monotonic() - t0, 2)
                    return
            except httpx.HTTPError:
                pass
            self.hold(0.1)

    def worker_metric(self, name: str, metric: str) -> float | None:
        """A worker's own counter (summed over labels) from its /metrics endpoint; None: unreachable."""
        port = self.metrics_ports.get(name)
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return None
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(metric + "{") or line.startswith(metric + " "))


def _last_error(log: Path) -> str:
    """The last exception line of a child's log (what it died of)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "?"
    for line in reversed(lines):
        if re.match(r"^[\w.]+(Error|Exception|Timeout)\b", line):
            return line[:200]
    return "?"


def _child_args(name: str, port: int) -> list[str]:
    return ["serve", "--port", str(port)] if name == "api" else ["worker", name]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _environment(overrides: dict[str, str]) -> Iterator[None]:
    """Set the stack's environment (its children inherit it); restore the caller's afterwards."""
    saved = dict(os.environ)
    for key in (*STORE_ENV, "PYTHONDONTWRITEBYTECODE"):
        os.environ.pop(key, None)
    os.environ.update(overrides)
    get_settings.cache_clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


def stack_environment(folder: Path, fake: FakeLLMServer, keys: dict[str, str],
                      metrics_ports: dict[str, int]) -> dict[str, str]:
    tiers = [
        {"name": "primary", "provider": "openai", "model": PRIMARY, "base_url": fake.base_url},
        {"name": "backup", "provider": "anthropic", "model": BACKUP, "base_url": fake.url},
    ]
    return {
        "LESSONLOOP_DATA_DIR": str(folder / "data"),
        "LESSONLOOP_TOKEN_SECRET": keys["token_secret"],
        "OPENAI_API_KEY": keys["openai_key"],
        "ANTHROPIC_API_KEY": keys["anthropic_key"],
        "LESSONLOOP_FACTORY_TIERS": json.dumps(tiers),
        "LESSONLOOP_FACTORY_CONCURRENCY": "2",
        "LESSONLOOP_FACTORY_CALL_TIMEOUT": "3",
        "LESSONLOOP_FACTORY_RETRY_ATTEMPTS": "2",
        "LESSONLOOP_FACTORY_RETRY_INITIAL_S": "0.1",
        "LESSONLOOP_FACTORY_RETRY_MAX_S": "0.5",
        "LESSONLOOP_FACTORY_BREAKER_FAIL_MAX": "3",
        "LESSONLOOP_FACTORY_BREAKER_RESET_S": "5",
        "LESSONLOOP_FACTORY_BATCH_LEASE_S": "3",
        # Every simulated learner comes from 127.0.0.1: the per-address limit would throttle the whole
        # population as one client. The per-learner limit stays on (the careful client honours 429).
        "LESSONLOOP_SERVING_RATE_PER_IP": "0",
        # Each worker's Prometheus endpoint on a port of its own (the run reads their restart counters).
        "LESSONLOOP_WORKER_FACTORY_METRICS_PORT": str(metrics_ports["factory"]),
        "LESSONLOOP_WORKER_CURATOR_METRICS_PORT": str(metrics_ports["curator"]),
        "LESSONLOOP_LOG_LEVEL": "INFO",
        "PYTHONPYCACHEPREFIX": str(PYCACHE),
    }


# --- the run -------------------------------------------------------------------------------------------------


def run(cfg: ChaosConfig = SHORT, *, progress: Progress = print, keep: bool = False) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="lessonloop-chaos-"))
    keys = {"token_secret": "chaos-secret-" + secrets.token_hex(16), "openai_key": "sk-chaos-" + secrets.token_hex(16),
            "anthropic_key": "sk-ant-chaos-" + secrets.token_hex(16)}
    t_begin = time.time()
    metrics_ports = {"factory": _free_port(), "curator": _free_port()}
    with FakeLLMServer() as fake, _environment(stack_environment(folder, fake, keys, metrics_ports)):
        settings = Settings()
        mint = lambda sub, role="learner": mint_token(settings.auth, sub=sub, role=role, ttl_s=6 * 3600)  # noqa: E731
        staff_token = mint("chaos-designer", "designer")
        stack = ChaosStack(settings=settings, port=_free_port(), log_dir=folder / "logs")
        chaos = ChaosRun(cfg=cfg, progress=progress, folder=folder, stack=stack, fake=fake,
                         secrets={**keys, "staff_token": staff_token},
                         staff_headers={"Authorization": f"Bearer {staff_token}"}, metrics_ports=metrics_ports)
        try:
            progress(f"starting the stack in {folder}")
            stack.start()
            setup_s = time.time() - t_begin
            bank = seed(chaos)
            progress(f"bank: {bank} accepted questions; {cfg.learners} learners start")
            chaos.load = LearnerLoad(stack.base_url, COURSE, mint, learners=cfg.learners).start()
            assert stack.endpoints is not None
            chaos.probes = Probes(stack.base_url, COURSE, mint, chaos.load.record, stack.endpoints.redis_url,
                                  count=cfg.probes)
            phases(chaos)
            progress("stopping the load; letting the generation jobs finish")
            stopped = chaos.load.stop(timeout=90)
            fake.clear_faults()
            fake.set_latency(0.0)
            drain_until = time.monotonic() + cfg.drain_s
            for job_id in chaos.jobs:
                chaos.wait_job(job_id, max(0.0, drain_until - time.monotonic()),
                               lambda j: j.get("status") in ("succeeded", "partial", "failed", "cancelled"))
            chaos.supervise()
            restarts = {k: chaos.worker_metric(k, "lessonloop_worker_restarts_total") for k in chaos.metrics_ports}
            report = check(chaos, stopped)
            report["worker_restarts"] = restarts
            report["setup_s"] = round(setup_s, 1)
        finally:
            if chaos.load is not None:
                chaos.load.stop(timeout=5)
            stack.stop()
    report["total_s"] = round(time.time() - t_begin, 1)
    report["config"] = asdict(cfg)
    if keep or not report["ok"]:
        report["folder"] = str(folder)
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return report


def seed(chaos: ChaosRun) -> int:
    """A bank the real way: a generation job, every pending item accepted, ingested."""
    course = chaos.api("GET", f"/v1/courses/{COURSE}").json()
    skills = [s["id"] for s in course["skills"]][: chaos.cfg.seed_skills]
    job_id = chaos.post_job(skills, chaos.cfg.seed_skills * chaos.cfg.seed_per_skill)
    chaos.jobs.pop(job_id)  # the seed job is not part of the faults (it is checked all the same)
    chaos.jobs[job_id] = "setup"
    chaos.wait_job(job_id, 120, lambda j: j["status"] not in ("queued", "running"))
    pending = chaos.api("GET", "/v1/staging", params={"job": job_id, "status": "pending", "limit": 500}).json()
    for item in pending:
        chaos.api("POST", f"/v1/staging/{item['id']}/decision", json={"decision": "accept"}).raise_for_status()
    chaos.api("POST", "/v1/ingestions").raise_for_status()
    return len(pending)


def phases(chaos: ChaosRun) -> None:
    cfg, stack, fake = chaos.cfg, chaos.stack, chaos.fake
    assert stack.services is not None, "the chaos run needs the embedded stores (it stops and starts them)"
    assert chaos.probes is not None
    course = chaos.api("GET", f"/v1/courses/{COURSE}").json()
    job_skills = [s["id"] for s in course["skills"]][cfg.seed_skills:cfg.seed_skills + 2]

    with chaos.in_phase("baseline"):
        chaos.hold(cfg.phase_s / 2)
        chaos.retire_some(cfg.retire_per_phase)
        chaos.hold(cfg.phase_s / 2)

    with chaos.in_phase("llm-fault"):
        fake.set_latency(cfg.llm_latency_s)
        job = chaos.post_job(job_skills, cfg.job_count)
        chaos.wait_job(job, 10, lambda j: j["status"] == "running")
        fake.set_fault("server_error", model=PRIMARY)
        chaos.hold(cfg.phase_s)
        fake.clear_faults()

    with chaos.in_phase("worker-kill"):
        job = chaos.post_job(job_skills, cfg.job_count)
        chaos.wait_job(job, 10, lambda j: j["status"] == "running")
        chaos.hold(min(1.0, cfg.phase_s / 4))
        for name in ("factory", "curator"):
            chaos.kill(name)
        chaos.progress("  factory and curator workers SIGKILLed")
        chaos.hold(0.5)
        chaos.worker_restart_s = chaos.restart_workers(("factory", "curator"), timeout=cfg.restart_wait_s)
        chaos.progress(f"  workers polling again after {chaos.worker_restart_s:.1f} s")
        chaos.retire_some(cfg.retire_per_phase)
        chaos.hold(cfg.phase_s / 2)

    with chaos.in_phase("redis-down"):
        stack.services.redis.stop()
        chaos.hold(cfg.outage_s)
        stack.services.redis.start()
        chaos.wait_recovered("redis")
        chaos.probes.prepare(cfg.refill_wait_s, wait=chaos.hold)  # refilled by the curator: it started again
        chaos.hold(1.5)

    with chaos.in_phase("postgres-down"):
        stack.services.postgres.stop()
        chaos.probes.start_warm()
        chaos.hold(cfg.outage_s / 2)
        chaos.probes.start_warm()
        chaos.hold(cfg.outage_s / 2)
        stack.services.postgres.start()
        chaos.wait_recovered("postgres")
        chaos.hold(1.5)

    with chaos.in_phase("recovered"):
        chaos.hold(cfg.phase_s / 2)
        chaos.retire_some(cfg.retire_per_phase)
        chaos.hold(cfg.phase_s / 2)


# --- the checks ----------------------------------------------------------------------------------------------


def check(chaos: ChaosRun, load_stopped: bool) -> dict[str, Any]:
    assert chaos.load is not None and chaos.probes is not None and chaos.stack.endpoints is not None
    rec = chaos.load.record
    with psycopg.connect(chaos.stack.endpoints.database_url, row_factory=dict_row, autocommit=True) as conn:
        answers = check_answers(conn, rec)
        served = check_served(conn, rec, chaos.retires)
        jobs = [check_job(conn, job_id, phase) for job_id, phase in chaos.jobs.items()]
    arq = redis.Redis.from_url(chaos.stack.endpoints.queue_redis_url, socket_timeout=2)
    try:
        for j in jobs:
            # An unfinished batch whose arq job still carries the killed worker's in-progress marker runs
            # again only once the marker expires (arq: the task timeout + 10 s).
            j["in_progress_marker_ttl_s"] = {
                b: arq.ttl(in_progress_key_prefix + queues.batch_job_id(j["job"], b)) for b in j["unfinished_batches"]}
    finally:
        arq.close()
    logs = check_logs(chaos.folder / "logs", {**chaos.secrets, **{f"learner_token_{i}": t
                                                                   for i, t in enumerate(sorted(rec.tokens))}})
    report: dict[str, Any] = {
        "phases": phase_stats(rec, chaos.phases),
        "answers": answers, "served": served, "jobs": jobs, "retires": [asdict(r) for r in chaos.retires],
        "secrets_in_logs": logs, "crashes": chaos.crashes, "killed": [k[0] for k in chaos.killed],
        "load_stopped_cleanly": load_stopped, "learners": len(rec.learners), "exhausted": rec.exhausted,
        "worker_restart_s": round(chaos.worker_restart_s, 1), "workers_ready": chaos.workers_ready,
        "llm": chaos.fake.stats(), "recovery_s": chaos.recovery_s,
        "probes": chaos.probes.summary(),
    }
    report["violations"] = violations(report)
    report["ok"] = not report["violations"]
    return report


def check_answers(conn: psycopg.Connection[Any], rec: LoadRecord) -> dict[str, Any]:
    rows = conn.execute(
        "SELECT learner_id, attempt_id, count(*) AS n, bool_and(correct) AS correct FROM answer_events "
        "WHERE learner_id = ANY(%s) GROUP BY learner_id, attempt_id", (sorted(rec.learners),)).fetchall()
    stored = {(r["learner_id"], r["attempt_id"]): r for r in rows}
    missing, duplicated, mismatched = [], [], []
    for ack in rec.acks.values():
        row = stored.get((ack.learner, ack.attempt_id))
        if row is None:
            missing.append(ack.attempt_id)
        elif row["n"] != 1:
            duplicated.append(ack.attempt_id)
        elif row["correct"] != ack.correct:
            mismatched.append(ack.attempt_id)
    abandoned = {(learner, a) for learner, a in rec.abandoned}
    return {
        "acknowledged": len(rec.acks), "stored_exactly_once": len(rec.acks) - len(missing) - len(duplicated),
        "acknowledged_as_duplicate": sum(1 for a in rec.acks.values() if a.duplicate),
        "missing": missing, "duplicated": duplicated, "grade_mismatch": mismatched,
        "never_acknowledged": len(abandoned), "never_acknowledged_but_stored": len(abandoned & set(stored)),
        "stored_without_ack": len(set(stored) - {(a.learner, a.attempt_id) for a in rec.acks.values()}),
    }


def check_served(conn: psycopg.Connection[Any], rec: LoadRecord, retires: list[Retire]) -> dict[str, Any]:
    qids = sorted({q for s in rec.served for q in s.question_ids})
    rows = conn.execute(
        "SELECT q.id::text AS id, q.status, q.retired_at, s.status AS staging_status FROM questions q "
        "LEFT JOIN questions_staging s ON s.id = q.staging_id WHERE q.id::text = ANY(%s)", (qids,)).fetchall()
    bank = {r["id"]: r for r in rows}
    acked_retire = {r.question_id: r.acked for r in retires if r.acked is not None}
    unknown, unaccepted, retired_after, in_window = set(), set(), [], 0
    items = 0
    for s in rec.served:
        for q in s.question_ids:
            items += 1
            row = bank.get(q)
            if row is None:
                unknown.add(q)
                continue
            if row["staging_status"] not in ("accepted", "ingested"):
                unaccepted.add(q)
            if row["retired_at"] is not None:
                at = acked_retire.get(q, row["retired_at"].timestamp())
                if s.sent > at:
                    retired_after.append({"question_id": q, "lesson_id": s.lesson_id, "source": s.source,
                                          "asked_s_after_retire": round(s.sent - at, 3)})
                elif s.received > row["retired_at"].timestamp():
                    in_window += 1  # asked before the retire was acknowledged, answered after: allowed
    return {"lessons": len(rec.served), "items": items,
            "warm": sum(1 for s in rec.served if s.source == "warm"),
            "cold": sum(1 for s in rec.served if s.source == "cold"),
            "retired_served_after_commit": retired_after, "retired_in_flight_at_commit": in_window,
            "unknown": sorted(unknown), "unaccepted": sorted(unaccepted)}


def check_job(conn: psycopg.Connection[Any], job_id: str, phase: str) -> dict[str, Any]:
    job = conn.execute("SELECT * FROM generation_jobs WHERE id = %s", (job_id,)).fetchone()
    assert job is not None
    batches = conn.execute("""
        SELECT b.batch_no, b.status, b.generated, b.staged, b.duplicates, b.invalid, b.attempts,
               (SELECT count(*) FROM questions_staging s WHERE s.job_id = b.job_id AND s.batch_no = b.batch_no) AS rows
        FROM generation_batches b WHERE b.job_id = %s ORDER BY b.batch_no""", (job_id,)).fetchall()
    seq_dups = conn.execute("""SELECT count(*) AS n FROM (SELECT 1 FROM questions_staging WHERE job_id = %s
        GROUP BY batch_no, seq HAVING count(*) > 1) d""", (job_id,)).fetchone()
    tiers = conn.execute("""SELECT provenance->>'tier' AS tier, count(*) AS n FROM questions_staging
        WHERE job_id = %s GROUP BY 1 ORDER BY 1""", (job_id,)).fetchall()
    staged_twice = [b["batch_no"] for b in batches
                    if b["status"] == "done" and (b["rows"] != b["generated"]
                                                  or b["staged"] + b["duplicates"] + b["invalid"] != b["generated"])]
    unfinished = [b["batch_no"] for b in batches if b["status"] not in ("done", "failed", "cancelled")]
    orphan_rows = [b["batch_no"] for b in batches if b["status"] != "done" and b["rows"]]
    finished = job["status"] in ("succeeded", "partial")
    resumable = not finished and job["status"] in ("queued", "running") and all(
        b["status"] in ("pending", "running", "done") for b in batches)
    return {"job": job_id, "phase": phase, "status": job["status"], "requested": job["requested"],
            "generated": job["generated"], "batches": len(batches), "unfinished_batches": unfinished,
            "batches_rerun": sum(1 for b in batches if b["attempts"] > 1),
            "seq_duplicates": seq_dups["n"] if seq_dups else 0, "staged_twice": staged_twice + orphan_rows,
            "items_by_tier": {r["tier"] or "?": r["n"] for r in tiers}, "finished_or_resumable": finished or resumable}


def check_logs(folder: Path, needles: dict[str, str]) -> dict[str, Any]:
    found: list[dict[str, str]] = []
    lines = 0
    for path in sorted(folder.glob("*.log")):
        text = path.read_text(errors="replace")
        lines += text.count("\n")
        for name, value in needles.items():
            if value and value in text:
                found.append({"log": path.name, "secret": re.sub(r"_\d+$", "", name)})
    return {"log_lines": lines, "found": found}


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[max(0, min(len(xs) - 1, int(len(xs) * p / 100 + 0.999) - 1))]


def phase_stats(rec: LoadRecord, phases: list[tuple[str, float, float]]) -> list[dict[str, Any]]:
    out = []
    for name, start, end in phases:
        reqs: list[Req] = [r for r in rec.requests if start <= r.end < end]  # by when the client saw it
        failed = [r for r in reqs if r.status == CONN_ERROR or r.status >= 500 or r.status == 429]
        lat = [(r.end - r.start) * 1000 for r in reqs]
        starts = [r for r in reqs if r.kind == "start" and r.status == 200]
        answers = [(r.end - r.start) * 1000 for r in reqs if r.kind == "answer" and r.status == 200]
        out.append({
            "phase": name, "seconds": round(end - start, 1), "requests": len(reqs),
            "errors": len(failed), "error_rate": round(len(failed) / len(reqs), 4) if reqs else 0.0,
            "statuses": {str(s): n for s, n in sorted(_count(r.status for r in failed).items())},
            "errors_by_kind": {str(s): dict(sorted(_count(r.kind for r in failed if r.status == s).items()))
                               for s in sorted({r.status for r in failed})},
            "p50_ms": round(_pct(lat, 50), 1), "p99_ms": round(_pct(lat, 99), 1),
            "start_p99_ms": round(_pct([(r.end - r.start) * 1000 for r in starts], 99), 1),
            "answer_p99_ms": round(_pct(answers, 99), 1),
            "warm": sum(1 for r in starts if r.source == "warm"), "cold": sum(1 for r in starts if r.source == "cold"),
            "answers_acknowledged": sum(1 for a in rec.acks.values() if start <= a.at < end),
        })
    return out


def _count(xs: Any) -> dict[Any, int]:
    out: dict[Any, int] = {}
    for x in xs:
        out[x] = out.get(x, 0) + 1
    return out


def violations(report: dict[str, Any]) -> list[str]:
    out = []
    a, s = report["answers"], report["served"]
    if a["missing"] or a["duplicated"] or a["grade_mismatch"]:
        out.append(f"answers: {len(a['missing'])} acknowledged but not stored, {len(a['duplicated'])} stored twice, "
                   f"{len(a['grade_mismatch'])} stored with another grade")
    if s["retired_served_after_commit"]:
        out.append(f"{len(s['retired_served_after_commit'])} retired question(s) served after the retire commit")
    if s["unknown"] or s["unaccepted"]:
        out.append(f"{len(s['unknown'])} served question(s) not in the bank, {len(s['unaccepted'])} never accepted")
    for j in report["jobs"]:
        if not j["finished_or_resumable"] or j["seq_duplicates"] or j["staged_twice"]:
            out.append(f"job {j['job']} ({j['phase']}): status {j['status']}, {j['seq_duplicates']} (batch, seq) "
                       f"duplicates, batches staged twice {j['staged_twice']}")
    if report["secrets_in_logs"]["found"]:
        out.append(f"secrets in logs: {report['secrets_in_logs']['found'][:5]}")
    # A worker that exits is restarted by the supervisor (ECS, systemd; here the run) and its work resumes —
    # an availability finding, reported with its cause; the API exiting is a violation.
    api_exits = [c for c in report["crashes"] if c["process"] == "api"]
    if api_exits:
        out.append(f"the API exited: {[(c['exit_code'], c['phase'], c['cause']) for c in api_exits]}")
    if not report["load_stopped_cleanly"]:
        out.append("the learners did not stop within 90 s (a request hung)")
    probes = report["probes"]
    if probes["refilled_after_redis_s"] is None:
        out.append(f"the curator did not refill the {probes['learners']} probe learners' playlists within "
                   f"{report['config']['refill_wait_s']:g} s after Redis came back")
    elif not probes["starts"] or probes["refused"]:
        out.append(f"warm lessons while PostgreSQL was down: {probes['warm']} of {probes['starts']} probe starts "
                   f"served warm; refused: {probes['refused'][:3]}")
    if not any(r["acked"] for r in report["retires"]):
        out.append("no question could be retired (the check of retired questions proved nothing)")
    return out


# --- the report ----------------------------------------------------------------------------------------------


def render(report: dict[str, Any], command: str) -> str:
    cfg = report["config"]
    a, s = report["answers"], report["served"]
    lines = [
        f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} with `{command}` on a {os.cpu_count()}-core "
        f"machine: {cfg['learners']} concurrent learners ({report['learners']} in all, new ones mixed in), phases of "
        f"{cfg['phase_s']:g} s, store outages of {cfg['outage_s']:g} s; whole run {report['total_s']} s "
        f"(stack start {report['setup_s']} s). Result: **{'PASS' if report['ok'] else 'FAIL'}**.",
        "",
        "| phase | s | requests | errors | error rate | p50 ms | p99 ms | lesson start p99 ms | answer p99 ms "
        "| warm / cold | answers acked |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in report["phases"]:
        errs = ", ".join(f"{n}×{'conn' if k == '0' else k} ({', '.join(f'{kind} {m}' for kind, m in by.items())})"
                         for (k, n), by in zip(p["statuses"].items(), p["errors_by_kind"].values(), strict=True)) or "—"
        lines.append(f"| {p['phase']} | {p['seconds']} | {p['requests']} | {errs} | {p['error_rate']:.2%} | "
                     f"{p['p50_ms']} | {p['p99_ms']} | {p['start_p99_ms']} | {p['answer_p99_ms']} | "
                     f"{p['warm']} / {p['cold']} | {p['answers_acknowledged']} |")
    retired = [r for r in report["retires"] if r["acked"]]
    lines += [
        "",
        "Errors are what the client saw before its retry (503 + Retry-After, 429, connection errors), by "
        "request kind; a retried answer counts once per try. A request counts in the phase its reply arrived in.",
        "",
        f"- **Answers**: {a['acknowledged']} acknowledged, {a['stored_exactly_once']} stored exactly once "
        f"(missing {len(a['missing'])}, duplicated {len(a['duplicated'])}, other grade {len(a['grade_mismatch'])}); "
        f"{a['acknowledged_as_duplicate']} acknowledgements were retries answered `duplicate: true`; "
        f"{a['never_acknowledged']} attempts never acknowledged ({a['never_acknowledged_but_stored']} of them stored).",
        f"- **Lessons**: {s['lessons']} served ({s['warm']} warm, {s['cold']} cold), {s['items']} items; "
        f"{len(retired)} questions retired mid-run, served after the retire's commit: "
        f"{len(s['retired_served_after_commit'])} ({s['retired_in_flight_at_commit']} items were in requests "
        f"already in flight at the commit); not in the bank: {len(s['unknown'])}; never accepted: "
        f"{len(s['unaccepted'])}.",
    ]
    pr, rec_s = report["probes"], report["recovery_s"]
    lines += [
        f"- **Stores back**: the API ready again {rec_s.get('redis')} s after Redis restarted, "
        f"{rec_s.get('postgres')} s after PostgreSQL restarted. **Probes**: {pr['learners']} new learners' "
        f"playlists refilled by the curator " + (f"{pr['refilled_after_redis_s']} s after their cold starts "
                                                 if pr["refilled_after_redis_s"] is not None else "NOT ")
        + f"(Redis back); with PostgreSQL down they started {pr['starts']} lessons: {pr['warm']} warm, "
        f"{len(pr['refused'])} refused.",
    ]
    for j in report["jobs"]:
        tiers = ", ".join(f"{k} {v}" for k, v in j["items_by_tier"].items())
        waiting = ""
        if j["unfinished_batches"]:
            waiting = (f" — unfinished batches {j['unfinished_batches']} (pending, resumable; arq in-progress "
                       f"marker left by the killed worker expires in {j['in_progress_marker_ttl_s']} s)")
        lines.append(f"- **Generation job** ({j['phase']}): {j['status']}, {j['generated']}/{j['requested']} items "
                     f"generated (by tier: {tiers}), {j['batches']} batches, {j['batches_rerun']} re-run after a "
                     f"failure, (job, batch, seq) duplicates {j['seq_duplicates']}, batches staged twice "
                     f"{len(j['staged_twice'])}{waiting}.")
    lines += [
        f"- **Logs**: {report['secrets_in_logs']['log_lines']} lines from the API and workers; secrets found "
        f"(token secret, LLM keys, {report['learners'] + 1} bearer tokens): {len(report['secrets_in_logs']['found'])}.",
        f"- **Processes**: killed on purpose {', '.join(report['killed']) or 'none'} ("
        + ("polling their queues again" if report["workers_ready"] else "still starting (not polling yet)")
        + f" {report['worker_restart_s']} s after the restart); exited by themselves and restarted by the run's "
        f"supervisor: {len(report['crashes'])}; started again in-process after losing a store: "
        + ", ".join(f"{k} {'?' if n is None else int(n)}×" for k, n in report.get("worker_restarts", {}).items())
        + ".",
    ]
    for c in report["crashes"]:
        lines.append(f"  - {c['process']} exited with code {c['exit_code']} during {c['phase']}: `{c['cause']}`")
    if report["violations"]:
        lines += ["", "Violations:", *[f"- {v}" for v in report["violations"]]]
    return "\n".join(lines) + "\n"


def write_docs(section: str, path: Path = DOCS) -> None:
    text = path.read_text() if path.exists() else f"# Reliability\n\n## Last run\n\n{MARK_START}\n{MARK_END}\n"
    if MARK_START not in text:
        text = text.rstrip() + f"\n\n## Last run\n\n{MARK_START}\n{MARK_END}\n"
    head, rest = text.split(MARK_START, 1)
    _, tail = rest.split(MARK_END, 1)
    path.write_text(f"{head}{MARK_START}\n{section}{MARK_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The chaos run: load + faults on the real stack, then checks.")
    parser.add_argument("--short", action="store_true", help="the short run of the test suite")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, data)")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/reliability.md")
    parser.add_argument("--json", type=Path, help="also write the whole report as JSON here")
    args = parser.parse_args(argv)
    cfg = SHORT if args.short else LONG
    report = run(cfg, progress=lambda m: print(m, flush=True), keep=args.keep)
    command = "make chaos" if not args.short else "python -m loadtests.chaos --short"
    section = render(report, command)
    print("\n" + section)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    if not args.no_docs:
        write_docs(section)
        print(f"written to {DOCS.relative_to(ROOT)}")
    if report.get("folder"):
        print(f"data and logs kept in {report['folder']}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
