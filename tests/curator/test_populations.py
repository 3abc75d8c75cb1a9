"""The skills' population states: one SQL query equals the sum of the item states, the answer path
keeps its in-process cache equal to a reload (either progress backend), and the bank index, the
profile and the stored mastery use them."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import psycopg
import pytest
import redis.asyncio as aioredis

from curator.bank_index import build_index
from curator.learner_model import LearnerModel
from curator.planner import Difficulty
from curator.populations import PopulationCache
from shared import constants
from shared.db import courses, questions
from shared.db.pool import open_async_pool
from shared.runtime import Endpoints
from shared.settings import get_settings
from tests.curator.conftest import COURSE
from tests.helpers import LiveServer, api_client, auth, free_port

MODEL = LearnerModel.load()


def _item_states(eps: Endpoints) -> dict[str, list[dict[str, Any]]]:
    with psycopg.connect(eps.database_url) as conn:
        rows = conn.execute("SELECT skill_id, item_state FROM questions WHERE course_id = %s AND status = 'active'",
                            (COURSE,)).fetchall()
    out: dict[str, list[dict[str, Any]]] = {}
    for sid, state in rows:
        out.setdefault(sid, []).append(state)
    return out


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert {k: v for k, v in a.items() if k != "bn"} == {k: v for k, v in b.items() if k != "bn"}
    assert a["bn"] == pytest.approx(b["bn"], abs=1e-9)


async def _load(eps: Endpoints) -> dict[str, dict[str, Any]]:
    pool = await open_async_pool(eps.database_url, get_settings().database)
    try:
        return await PopulationCache(pool, 60.0).load(COURSE)
    finally:
        await pool.close()


def test_one_query_sums_the_item_states_old_ones_too(course: dict[str, float], clean: Endpoints) -> None:
    learner, skill = MODEL.new_learner_state(), MODEL.new_skill_state(0)
    with psycopg.connect(clean.database_url) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM questions WHERE course_id = %s ORDER BY id LIMIT 6",
                                          (COURSE,)).fetchall()]
        for k, qid in enumerate(ids):
            item = MODEL.new_item_state(1)
            for c in (True, False, True)[: k % 3 + 1]:
                MODEL.update(learner, skill, item, c, 0.0)
            if k == 0:  # stored before the run counters existed
                del item["run_n"], item["run_nc"]
            conn.execute("UPDATE questions SET item_state = %s WHERE id = %s", (json.dumps(item), qid))
    loaded = asyncio.run(_load(clean))
    states = _item_states(clean)
    assert set(loaded) == set(states)
    for sid, items in states.items():
        _same(loaded[sid], MODEL.population(items))
    assert sum(p["n"] for p in loaded.values()) == sum(k % 3 + 1 for k in range(6))


def test_answers_keep_the_cache_equal_to_a_reload(backend: str, clean: Endpoints) -> None:
    learner = f"l-{uuid.uuid4().hex[:6]}"
    headers = auth("learner", learner)
    with api_client() as client:
        progress = client.app.state.progress
        assert progress.populations is client.app.state.starter.curator.populations  # one cache per process
        for _ in range(2):
            lesson = client.post(f"/v1/courses/{COURSE}/lessons", headers=headers).json()
            for item in lesson["items"]:
                r = client.post(f"/v1/lessons/{lesson['lesson_id']}/answers", headers=headers, json={
                    "item_id": item["item_id"], "answer": "a" if int(item["item_id"]) % 2 else "b",
                    "attempt_id": f"{lesson['lesson_id']}-{item['item_id']}", "response_ms": 2000})
                assert r.status_code == 200, r.text
            client.post(f"/v1/lessons/{lesson['lesson_id']}/complete", headers=headers).raise_for_status()
        cached = progress.populations.cached(COURSE)
        profile = client.get("/v1/me/profile", params={"course": COURSE}, headers=headers).json()
    reloaded = asyncio.run(_load(clean))
    assert cached is not None and sum(p["n"] for p in cached.values()) == 10
    for sid, pop in reloaded.items():
        _same(cached[sid], pop)
    # the profile's mastery is the model's, with the skill's population
    skills = {s["skill"]: s for s in profile["courses"][0]["skills"]}
    assert skills and all(0.0 < s["mastery"] < 1.0 for s in skills.values())


def test_bank_index_builds_populations_and_uses_them(course: dict[str, float], clean: Endpoints) -> None:
    async def load() -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
        pool = await open_async_pool(clean.database_url, get_settings().database)
        try:
            async with pool.connection() as conn:
                return await courses.list_skills(conn, COURSE), await questions.active_bank(conn, COURSE)
        finally:
            await pool.close()

    skill_rows, bank = asyncio.run(load())
    bank = [(*r[:5], {**MODEL.new_item_state(int(r[2])), "n": 7, "nc": 2} if i % 2 else r[5])
            for i, r in enumerate(bank)]
    difficulty = Difficulty(MODEL)
    index = build_index(COURSE, skill_rows, bank, difficulty)
    for sid in index.pools:
        _same(index.populations[sid], MODEL.population(r[5] for r in bank if r[1] == sid))
    sid = skill_rows[0]["id"]
    row = next(r for r in bank if r[1] == sid)
    rel = difficulty.rel(row[5], int(row[2]), index.populations[sid])
    assert rel in [pytest.approx(x, abs=1e-6) for x in index.pools[sid].rel]


def test_a_burst_of_cold_starts_larger_than_the_pool_is_served(course: dict[str, float], clean: Endpoints,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh process's first cold starts wait for the first population load, which needs a pooled
    connection of its own: requests must not hold theirs while they wait."""
    monkeypatch.setenv("LESSONLOOP_DB_POOL_MAX", "2")
    monkeypatch.setenv("LESSONLOOP_DB_CONNECT_TIMEOUT", "3")
    server = LiveServer().start()

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
            replies = await asyncio.gather(*(
                client.post(f"/v1/courses/{COURSE}/lessons", headers=auth("learner", f"burst-{i}"))
                for i in range(6)))
            return [r.status_code for r in replies]

    try:
        assert asyncio.run(burst()) == [200] * 6
    finally:
        server.stop()
        get_settings.cache_clear()


def test_computed_once_and_shared_through_redis_recomputed_by_one_process_when_stale(
        course: dict[str, float], clean: Endpoints) -> None:
    key = constants.populations_key(COURSE)

    async def run() -> None:
        pool = await open_async_pool(clean.database_url, get_settings().database)
        redis = aioredis.Redis.from_url(clean.redis_url)
        try:
            first = await PopulationCache(pool, 60.0, redis).load(COURSE)  # nothing shared yet: computed
            assert json.loads(await redis.get(key))["skills"] == first
            async with pool.connection() as conn:  # answers recorded elsewhere change the bank...
                await conn.execute("UPDATE questions SET item_state = %s WHERE id = "
                                   "(SELECT id FROM questions WHERE course_id = %s LIMIT 1)",
                                   (json.dumps({**MODEL.new_item_state(1), "n": 9, "nc": 4}), COURSE))
            computed = await PopulationCache(pool, 60.0).compute(COURSE)
            assert computed != first
            # ...a second process takes the shared copy instead of aggregating the bank again
            assert await PopulationCache(pool, 60.0, redis).load(COURSE) == first
            # stale, and another process is recomputing: keep using the stale copy
            doc = json.loads(await redis.get(key))
            await redis.set(key, json.dumps({**doc, "at": doc["at"] - 61}))
            await redis.set(constants.populations_lock_key(COURSE), "1")
            assert await PopulationCache(pool, 60.0, redis).load(COURSE) == first
            # stale and nobody on it: this process recomputes and shares the result
            await redis.delete(constants.populations_lock_key(COURSE))
            assert await PopulationCache(pool, 60.0, redis).load(COURSE) == computed
            assert json.loads(await redis.get(key))["skills"] == computed
            assert await redis.exists(constants.populations_lock_key(COURSE)) == 0
            # Redis away: computed from PostgreSQL
            away = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}", socket_connect_timeout=1)
            assert await PopulationCache(pool, 60.0, away).load(COURSE) == computed
            await away.aclose()
        finally:
            await redis.aclose()
            await pool.close()

    asyncio.run(run())
