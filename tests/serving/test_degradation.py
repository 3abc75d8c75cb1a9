"""Degradation instead of outages, each proven by stopping the real server, with the default settings:
Redis down → lessons still served from the cold path and answers still recorded; PostgreSQL down →
warm lessons still served from Redis, answers, completions and cold starts get 503 with Retry-After
within about a second (never acknowledged and lost); both recover by themselves when the server
returns — the API's pool within about a second even after a long outage, a real curator worker
process refilling again after Redis restarted."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from litestar.testing import TestClient

from curator.learner_model import LearnerModel
from curator.refill import CuratorDeps, refill
from factory.offline.curriculum_file import load_curriculum
from lessonloop.app import create_app
from serving.warm_path import OUTAGE_BACKOFF_S
from shared import constants
from shared.db import migrate
from shared.db.pool import open_async_pool
from shared.redis_client import async_client
from shared.runtime import EmbeddedServices, Endpoints
from shared.settings import DatabaseSettings, Settings
from tests.conftest import load_curriculum_into
from tests.helpers import WorkerProcess, auth, seed_bank

COURSE = "spanish-a1-b1"
REFUSED_WITHIN_S = 1.5
"""A learner's request that needs PostgreSQL while it is down is refused within this (the default
`DatabaseSettings.connect_timeout`, 1 s, plus slack for a loaded machine)."""
RECOVERED_WITHIN_S = 2.5
"""Once PostgreSQL accepts connections again, an answer is accepted within this."""
PG_OUTAGE_S = 10.0
"""Long enough that psycopg_pool's own reconnection backoff (1, 2, 4, 8 s…) would leave the pool away
for seconds after the server returned."""


@pytest.fixture
def own_stores() -> Iterator[tuple[EmbeddedServices, Endpoints, Path]]:
    path = Path(tempfile.mkdtemp(prefix="lessonloop-degrade-"))
    svc = EmbeddedServices(path)
    eps = svc.start()
    migrate.upgrade(eps.database_url)
    curriculum = load_curriculum()
    load_curriculum_into(eps, curriculum)
    seed_bank(eps.database_url, curriculum, ["greetings", "numbers", "articles-gender"], per_skill=30)
    yield svc, eps, path
    svc.stop()
    shutil.rmtree(path, ignore_errors=True)


def settings_for(eps: Endpoints) -> Settings:
    """The defaults, pointed at these stores."""
    return Settings(database=DatabaseSettings(url=eps.database_url))


def fill_playlist(settings: Settings, eps: Endpoints, learner: str) -> int:
    async def run() -> int:
        pool = await open_async_pool(eps.database_url, settings.database, min_size=1)
        r = async_client(eps.redis_url, settings.redis)
        try:
            deps = CuratorDeps(settings=settings, pool=pool, playlist_redis=r, model=LearnerModel.load())
            return await refill(deps, learner, COURSE)
        finally:
            await r.aclose()
            await pool.close()

    return asyncio.run(run())


def answers_of(eps: Endpoints, learner: str) -> int:
    with psycopg.connect(eps.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM answer_events WHERE learner_id = %s", (learner,)).fetchone()
    assert row is not None
    return int(row[0])


def queued_lessons(eps: Endpoints, learner: str) -> int:
    client = redis.Redis.from_url(eps.redis_url)
    try:
        return int(client.llen(constants.playlist_key(learner, COURSE)))
    finally:
        client.close()


def answer(client: TestClient[Any], headers: dict[str, str], lesson: dict[str, Any], attempt: str) -> Any:
    item = lesson["items"][0]
    return client.post(f"/v1/lessons/{lesson['lesson_id']}/answers", headers=headers, json={
        "item_id": item["item_id"], "answer": "hola", "attempt_id": attempt, "response_ms": 900})


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.monotonic()
    r = call()
    return r, time.monotonic() - t0


def assert_refused(r: Any, seconds: float) -> None:
    """503 with Retry-After and a detail naming the problem, within REFUSED_WITHIN_S."""
    assert r.status_code == 503, r.text
    assert int(r.headers["retry-after"]) > 0
    assert "unavailable" in r.json()["detail"]
    assert seconds < REFUSED_WITHIN_S, f"the learner waited {seconds:.2f}s for the 503"


def test_redis_down_serves_cold_records_answers_and_the_curator_worker_refills_after(
        own_stores: tuple[EmbeddedServices, Endpoints, Path]) -> None:
    svc, eps, path = own_stores
    settings = settings_for(eps)
    learner = f"l-{uuid.uuid4().hex[:6]}"
    headers = auth("learner", learner)
    curator = WorkerProcess("curator", eps, path / "curator.log",
                            env={"LESSONLOOP_WORKER_CURATOR_METRICS_PORT": "0"}).start()
    try:
        with TestClient(app=create_app(settings, eps)) as client:
            svc.redis.stop()
            r = client.post(f"/v1/courses/{COURSE}/lessons", headers=headers)
            assert r.status_code == 200, r.text
            lesson = r.json()
            assert lesson["source"] == "cold" and lesson["items"]
            assert answer(client, headers, lesson, "a1").status_code == 200
            assert answers_of(eps, learner) == 1  # durable before the 200
            done = client.post(f"/v1/lessons/{lesson['lesson_id']}/complete", headers=headers)
            assert done.status_code == 200 and done.json()["answered"] == 1  # its refill trigger is lost
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["redis"] is False

            svc.redis.start()
            time.sleep(OUTAGE_BACKOFF_S + 0.1)  # the warm path skips Redis for this long after an error
            # Nothing refills by hand: the learner goes on; a cold start queues a refill (after its
            # response), and the worker — whose arq loop died with the connection — picks it up.
            sources = []
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline:
                r = client.post(f"/v1/courses/{COURSE}/lessons", headers=headers)
                assert r.status_code == 200, r.text
                sources.append(r.json()["source"])
                if sources[-1] == "warm":
                    break
                wait_until = time.monotonic() + 10
                while not queued_lessons(eps, learner) and time.monotonic() < wait_until:
                    time.sleep(0.1)
            assert sources[-1] == "warm", f"no refill after Redis came back: {sources}"
            assert len(sources) <= 3, sources
            assert client.get("/readyz").status_code == 200
        assert curator.alive(), "the curator worker exited"
        assert "lost a store" in curator.log.read_text()
    finally:
        curator.stop()


def test_postgres_down_serves_warm_refuses_the_rest_with_retry_after_and_recovers(
        own_stores: tuple[EmbeddedServices, Endpoints, Path]) -> None:
    svc, eps, _ = own_stores
    settings = settings_for(eps)
    learner, newcomer = f"l-{uuid.uuid4().hex[:6]}", f"n-{uuid.uuid4().hex[:6]}"
    headers, newcomer_headers = auth("learner", learner), auth("learner", newcomer)
    assert fill_playlist(settings, eps, learner) >= 2
    with TestClient(app=create_app(settings, eps)) as client:
        svc.postgres.stop()
        stopped = time.monotonic()
        r, seconds = timed(lambda: client.post(f"/v1/courses/{COURSE}/lessons", headers=headers))
        assert r.status_code == 200, r.text
        lesson = r.json()
        assert lesson["source"] == "warm" and seconds < 0.5

        assert_refused(*timed(lambda: answer(client, headers, lesson, "a1")))
        assert_refused(*timed(lambda: client.post(f"/v1/lessons/{lesson['lesson_id']}/complete", headers=headers)))
        # A learner with nothing precomputed needs the cold path, which needs PostgreSQL.
        assert_refused(*timed(lambda: client.post(f"/v1/courses/{COURSE}/lessons", headers=newcomer_headers)))
        ready, seconds = timed(lambda: client.get("/readyz"))
        assert ready.status_code == 503 and seconds < REFUSED_WITHIN_S
        assert ready.json()["checks"] == {"postgres": False, "redis": True, "queue_redis": True}
        # Still warm for the learner with precomputed lessons, however long it lasts.
        r = client.post(f"/v1/courses/{COURSE}/lessons", headers=headers)
        assert r.status_code == 200 and r.json()["source"] == "warm"

        time.sleep(max(0.0, PG_OUTAGE_S - (time.monotonic() - stopped)))
        svc.postgres.start()
        back = time.monotonic()
        while (accepted := answer(client, headers, lesson, "a1")).status_code != 200:  # the client retries
            assert accepted.status_code == 503, accepted.text
            assert time.monotonic() - back < RECOVERED_WITHIN_S, "the API did not recover"
            time.sleep(0.2)
        first = accepted.json()
        again = answer(client, headers, lesson, "a1").json()
        assert (first.pop("duplicate"), again.pop("duplicate")) == (False, True) and again == first
        assert answers_of(eps, learner) == 1  # the refused tries stored nothing, the retry once
        done = client.post(f"/v1/lessons/{lesson['lesson_id']}/complete", headers=headers)
        assert done.status_code == 200 and done.json()["answered"] == 1
        r = client.post(f"/v1/courses/{COURSE}/lessons", headers=newcomer_headers)
        assert r.status_code == 200 and r.json()["source"] == "cold"
        assert client.get("/readyz").status_code == 200
