"""The worker process (`lessonloop worker curator`, lessonloop/workers.py) against its own PostgreSQL
and Redis: its Prometheus endpoint serves what its tasks count (a dropped refill trigger); a Redis
restart ends its arq run and it starts again in-process — refilling again, with the previous run's
PostgreSQL connections closed, counted in `lessonloop_worker_restarts_total`; several workers on one
host do not fight over the endpoint's port."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from factory.offline.curriculum_file import load_curriculum
from shared import constants, metrics_endpoint, queues
from shared.db import migrate
from shared.redis_client import arq_pool
from shared.runtime import EmbeddedServices, Endpoints
from shared.settings import RedisSettings, WorkerSettings
from tests.conftest import load_curriculum_into
from tests.helpers import WorkerProcess, free_port, seed_bank

COURSE = "spanish-a1-b1"


class Curator:
    def __init__(self, svc: EmbeddedServices, eps: Endpoints, worker: WorkerProcess, port: int) -> None:
        self.svc, self.eps, self.worker, self.port = svc, eps, worker, port

    def sample(self, name: str, labels: dict[str, str]) -> float | None:
        """One sample of the worker's /metrics (None: not there, or no endpoint)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return None
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return float(s.value)
        return None

    def enqueue(self, *args: object) -> None:
        async def run() -> None:
            arq = await arq_pool(self.eps.queue_redis_url, RedisSettings())
            try:
                await arq.enqueue_job(queues.REFILL_TASK, *args, _queue_name=constants.REFILL_QUEUE)
            finally:
                await arq.aclose()

        asyncio.run(run())

    def queued_lessons(self, learner: str) -> int:
        client = redis.Redis.from_url(self.eps.redis_url)
        try:
            return int(client.llen(constants.playlist_key(learner, COURSE)))
        finally:
            client.close()

    def backends(self) -> set[int]:
        """PostgreSQL backend pids of everyone but this probe (only the worker connects here)."""
        with psycopg.connect(self.eps.database_url) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' "
                                "AND pid <> pg_backend_pid()").fetchall()
        return {int(r[0]) for r in rows}


def eventually(check: Callable[[], bool], timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < timeout, f"not within {timeout:.0f}s: {what}"
        time.sleep(0.1)
    return time.monotonic() - t0


@pytest.fixture(scope="module")
def curator() -> Iterator[Curator]:
    path = Path(tempfile.mkdtemp(prefix="lessonloop-workers-"))
    svc = EmbeddedServices(path)
    eps = svc.start()
    migrate.upgrade(eps.database_url)
    curriculum = load_curriculum()
    load_curriculum_into(eps, curriculum)
    seed_bank(eps.database_url, curriculum, ["greetings", "numbers"], per_skill=30)
    port = free_port()
    worker = WorkerProcess("curator", eps, path / "curator.log",
                           env={"LESSONLOOP_WORKER_CURATOR_METRICS_PORT": str(port)})
    try:
        yield Curator(svc, eps, worker.start(), port)
    finally:
        worker.stop()
        svc.stop()
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(180)
def test_a_dropped_trigger_shows_on_the_worker_metrics_endpoint(curator: Curator) -> None:
    dropped = "lessonloop_dropped_triggers_total"
    assert curator.sample(dropped, {"reason": "malformed"}) is None  # nothing dropped yet: no child
    curator.enqueue("not a learner id!", COURSE)
    curator.enqueue(f"l-{uuid.uuid4().hex[:6]}", "no-such-course")
    eventually(lambda: curator.sample(dropped, {"reason": "malformed"}) == 1.0, 20, "malformed trigger counted")
    eventually(lambda: curator.sample(dropped, {"reason": "unknown_course"}) == 1.0, 20, "unknown course counted")
    assert "refill trigger dropped" in curator.worker.log.read_text()


@pytest.mark.timeout(180)
def test_the_curator_worker_refills_after_redis_restarts_without_leaking_connections(curator: Curator) -> None:
    before = f"l-{uuid.uuid4().hex[:6]}"
    curator.enqueue(before, COURSE)
    eventually(lambda: curator.queued_lessons(before) > 0, 20, "a refill before the outage")
    old_backends = curator.backends()
    assert old_backends, "the worker holds pooled PostgreSQL connections"
    restarts = {"kind": "curator"}

    for outage in (1, 2):
        restarted = curator.sample("lessonloop_worker_restarts_total", restarts) or 0
        log_mark = len(curator.worker.log.read_bytes())
        curator.svc.redis.stop()
        eventually(lambda n=restarted: (curator.sample("lessonloop_worker_restarts_total", restarts) or 0) > n, 20,
                   "the worker's run ended and it is starting again")
        time.sleep(1.5)
        curator.svc.redis.start()
        learner = f"l-{uuid.uuid4().hex[:6]}"
        eventually(lambda lr=learner: _enqueued(curator, lr), 10, "the trigger queued")
        took = eventually(lambda lr=learner: curator.queued_lessons(lr) > 0, 20, "a refill after Redis came back")
        assert took < 8, f"refilled {took:.1f}s after Redis came back (outage {outage})"
        assert curator.worker.alive(), "the worker exited instead of starting again"
        # A worker that had started again waits 1 s, however long its last outage made it wait.
        first_loss = next(line for line in curator.worker.log.read_bytes()[log_mark:].decode().splitlines()
                          if "lost a store" in line)
        assert "starting again in 1s" in first_loss, first_loss

    assert not old_backends & curator.backends(), "the first run's PostgreSQL connections were left open"


def _enqueued(curator: Curator, learner: str) -> bool:
    try:
        curator.enqueue(learner, COURSE)
        return True
    except (redis.RedisError, OSError):
        return False


def test_a_worker_whose_metrics_port_is_taken_serves_on_the_next_free_one() -> None:
    cfg = WorkerSettings(metrics_port_span=3)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = metrics_endpoint.serve(port, cfg)
        assert server is not None
        try:
            assert server.server_port != port and port < server.server_port < port + 3
            r = httpx.get(f"http://127.0.0.1:{server.server_port}/metrics", timeout=2)
            assert r.status_code == 200 and "lessonloop_answers_total" in r.text
        finally:
            server.shutdown()
            server.server_close()
    assert metrics_endpoint.serve(0, cfg) is None  # 0 = no endpoint


@pytest.mark.timeout(180)
def test_a_factory_worker_started_while_postgres_is_down_starts_once_it_is_back(curator: Curator,
                                                                                 tmp_path: Path) -> None:
    """Its start-up reads PostgreSQL (unfinished batches): the run fails, and it starts again in-process."""
    factory = WorkerProcess("factory", curator.eps, tmp_path / "factory.log",
                            env={"LESSONLOOP_WORKER_FACTORY_METRICS_PORT": "0"})
    curator.svc.postgres.stop()
    try:
        factory.spawn()
        eventually(lambda: "lost a store (PoolTimeout" in factory.log.read_text(), 60, "the start-up failing")
        assert factory.alive() and not factory.polling()
        curator.svc.postgres.start()
        factory.wait_polling(30)
        assert factory.alive()
    finally:
        factory.stop()
        if curator.svc.postgres.running_pid() is None:
            curator.svc.postgres.start()
