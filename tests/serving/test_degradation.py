"""Degradation instead of outages, each proven by stopping the real server:
Redis down → lessons still served from the cold path and answers still recorded;
PostgreSQL down → warm lessons still served from Redis, answers get 503 with Retry-After (never
acknowledged and lost); both recover by themselves when the server returns."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from curator.learner_model import LearnerModel
from curator.refill import CuratorDeps, refill
from factory.offline.curriculum_file import load_curriculum
from lessonloop.app import create_app
from serving.warm_path import OUTAGE_BACKOFF_S
from shared.db import migrate
from shared.db.pool import open_async_pool
from shared.redis_client import async_client
from shared.runtime import EmbeddedServices, Endpoints
from shared.settings import DatabaseSettings, Settings
from tests.conftest import load_curriculum_into
from tests.helpers import auth, seed_bank

COURSE = "spanish-a1-b1"


@pytest.fixture
def own_stores() -> Iterator[tuple[EmbeddedServices, Endpoints]]:
    path = Path(tempfile.mkdtemp(prefix="lessonloop-degrade-"))
    svc = EmbeddedServices(path)
    eps = svc.start()
    migrate.upgrade(eps.database_url)
    curriculum = load_curriculum()
    load_curriculum_into(eps, curriculum)
    seed_bank(eps.database_url, curriculum, ["greetings", "numbers", "articles-gender"], per_skill=30)
    yield svc, eps
    svc.stop()
    shutil.rmtree(path, ignore_errors=True)


def settings_for(eps: Endpoints) -> Settings:
    return Settings(database=DatabaseSettings(url=eps.database_url, connect_timeout=1.0))


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


def answer(client: TestClient[Any], headers: dict[str, str], lesson: dict[str, Any], attempt: str) -> Any:
    item = lesson["items"][0]
    return client.post(f"/v1/lessons/{lesson['lesson_id']}/answers", headers=headers, json={
        "item_id": item["item_id"], "answer": "hola", "attempt_id": attempt, "response_ms": 900})


def test_redis_down_serves_cold_and_records_answers(own_stores: tuple[EmbeddedServices, Endpoints]) -> None:
    svc, eps = own_stores
    settings = settings_for(eps)
    learner = f"l-{uuid.uuid4().hex[:6]}"
    headers = auth("learner", learner)
    with TestClient(app=create_app(settings, eps)) as client:
        svc.redis.stop()
        r = client.post(f"/v1/courses/{COURSE}/lessons", headers=headers)
        assert r.status_code == 200, r.text
        lesson = r.json()
        assert lesson["source"] == "cold" and lesson["items"]
        assert answer(client, headers, lesson, "a1").status_code == 200
        assert client.post(f"/v1/lessons/{lesson['lesson_id']}/complete", headers=headers).status_code == 200
        assert answers_of(eps, learner) == 1
        assert client.get("/readyz").status_code == 503

        svc.redis.start()
        assert fill_playlist(settings, eps, learner) > 0
        time.sleep(OUTAGE_BACKOFF_S + 0.1)  # the warm path skips Redis for this long after an error
        r = client.post(f"/v1/courses/{COURSE}/lessons", headers=headers)
        assert r.status_code == 200 and r.json()["source"] == "warm"
        assert client.get("/readyz").status_code == 200


def test_postgres_down_serves_warm_and_refuses_answers_with_retry_after(
        own_stores: tuple[EmbeddedServices, Endpoints]) -> None:
    svc, eps = own_stores
    settings = settings_for(eps)
    learner = f"l-{uuid.uuid4().hex[:6]}"
    headers = auth("learner", learner)
    assert fill_playlist(settings, eps, learner) >= 2
    with TestClient(app=create_app(settings, eps)) as client:
        svc.postgres.stop()
        r = client.post(f"/v1/courses/{COURSE}/lessons", headers=headers)
        assert r.status_code == 200, r.text
        lesson = r.json()
        assert lesson["source"] == "warm"
        refused = answer(client, headers, lesson, "a1")
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) > 0
        assert "unavailable" in refused.json()["detail"]

        svc.postgres.start()
        accepted = answer(client, headers, lesson, "a1")  # the client retries the same attempt
        assert accepted.status_code == 200, accepted.text
        assert answer(client, headers, lesson, "a1").json()["duplicate"] is True
        assert answers_of(eps, learner) == 1
        r = client.post(f"/v1/courses/{COURSE}/lessons", headers=headers)
        assert r.status_code == 200 and r.json()["source"] == "warm"
