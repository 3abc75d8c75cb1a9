"""Test helpers: tokens, an in-process API client, and workers run to completion (arq burst mode)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from arq.worker import Worker
from litestar.testing import TestClient

from lessonloop.app import create_app
from lessonloop.workers import KINDS
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
