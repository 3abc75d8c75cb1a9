"""Test helpers: tokens, an in-process API client, workers run to completion (arq burst mode) and
worker processes."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from arq.constants import health_check_key_suffix
from arq.worker import Worker
from litestar.testing import TestClient

from lessonloop.app import create_app
from lessonloop.workers import KINDS
from shared import constants
from shared.auth import mint_token
from shared.runtime import Endpoints
from shared.settings import get_settings


def auth(role: str, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(get_settings().auth, sub=sub, role=role)}"}


STAFF = ("designer", "designer-1")


def staff() -> dict[str, str]:
    return auth(*STAFF)


@contextmanager
def api_client() -> Iterator[TestClient[Any]]:
    get_settings.cache_clear()
    with TestClient(app=create_app(get_settings())) as client:
        yield client


def run_worker(kind: str, *, max_burst_jobs: int = -1) -> int:
    """Run a worker of `kind` until its queue is empty; returns the number of jobs it completed."""

    async def run() -> int:
        worker = Worker(**{**KINDS[kind](), "burst": True, "handle_signals": False, "poll_delay": 0.01,
                           "max_burst_jobs": max_burst_jobs})
        try:
            await worker.async_run()
            return worker.jobs_complete
        finally:
            await worker.close()

    get_settings.cache_clear()
    return asyncio.run(run())


def generate_and_accept(client: TestClient[Any], course: str, skills: list[str], count: int) -> dict[str, Any]:
    """POST a job, run the factory worker, accept every pending item, ingest; returns the job."""
    r = client.post("/v1/generation-jobs", json={"course": course, "skills": skills, "count": count}, headers=staff())
    assert r.status_code == 202, r.text
    run_worker("factory")
    job = client.get(r.headers["location"], headers=staff()).json()
    pending = client.get("/v1/staging", params={"job": job["id"], "status": "pending", "limit": 500},
                         headers=staff()).json()
    for item in pending:
        d = client.post(f"/v1/staging/{item['id']}/decision", json={"decision": "accept"}, headers=staff())
        assert d.status_code == 200, d.text
    r = client.post("/v1/ingestions", headers=staff())
    assert r.status_code == 200, r.text
    return job


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """The real app under uvicorn on a free loopback port, in a background thread; `options` override
    uvicorn's (e.g. `lessonloop.cli.server_options`, what `lessonloop serve` runs with)."""

    def __init__(self, endpoints: Endpoints | None = None, options: dict[str, Any] | None = None) -> None:
        import uvicorn

        get_settings.cache_clear()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(get_settings(), endpoints), host="127.0.0.1", port=self.port, **{
            "lifespan": "on", "log_level": "warning", "access_log": False, "timeout_graceful_shutdown": 1,
            **(options or {})})
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="live-server", daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def seed_bank(database_url: str, course: dict[str, Any], skill_ids: list[str], per_skill: int) -> int:
    """Put offline-tier questions straight into the bank (for tests about serving, not the factory)."""
    import uuid

    import psycopg
    from psycopg.types.json import Jsonb

    from factory.offline.generator import OfflineGenerator
    from factory.validation import content_hash

    skills = {s["id"]: s for s in course["skills"]}
    gen = OfflineGenerator()
    rows = []
    for sid in skill_ids:
        level_rank = {"A1": 0, "A2": 1, "B1": 2}[skills[sid]["level"]]
        for item in gen.generate(skills[sid], ["multiple_choice", "cloze", "translation"], per_skill, seed=sid):
            rows.append((uuid.uuid4(), course["course"]["id"], sid, level_rank, item["type"], Jsonb(item),
                         content_hash(item)))
    with psycopg.connect(database_url) as conn:
        conn.cursor().executemany(
            "INSERT INTO questions (id, course_id, skill_id, level_rank, type, content, content_hash) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
    return len(rows)


class WorkerProcess:
    """`lessonloop worker KIND` as a child process against `endpoints` (as `lessonloop up` and ECS run
    it), its output in `log`; `env` adds to its environment."""

    PYCACHE = Path(tempfile.gettempdir()) / "lessonloop-pycache"

    def __init__(self, kind: str, endpoints: Endpoints, log: Path, env: dict[str, str] | None = None) -> None:
        from lessonloop.stack import child_env

        self.kind = kind
        self.endpoints = endpoints
        self.log = log
        self.env = {k: v for k, v in child_env(endpoints).items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env.update({"PYTHONPYCACHEPREFIX": str(self.PYCACHE), **(env or {})})
        self.proc: subprocess.Popen[bytes] | None = None
        queue = {"factory": constants.GENERATION_QUEUE, "curator": constants.REFILL_QUEUE}[kind]
        self.health_key = queue + health_check_key_suffix

    def start(self, timeout: float = 60) -> WorkerProcess:
        """Start it and wait until it polls its queue."""
        return self.spawn().wait_polling(timeout)

    def spawn(self) -> WorkerProcess:
        """Start it (not waiting): its queue's health-check key, which arq writes once it polls, is cleared first."""
        client = redis.Redis.from_url(self.endpoints.queue_redis_url)
        try:
            client.delete(self.health_key)
        finally:
            client.close()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "lessonloop.cli", "worker", self.kind],
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT)
        return self

    def polling(self) -> bool:
        client = redis.Redis.from_url(self.endpoints.queue_redis_url)
        try:
            return bool(client.exists(self.health_key))
        finally:
            client.close()

    def wait_polling(self, timeout: float = 60) -> WorkerProcess:
        deadline = time.monotonic() + timeout
        while not self.polling():
            assert self.alive(), f"the {self.kind} worker exited: {self.log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"the {self.kind} worker did not start polling"
            time.sleep(0.1)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
