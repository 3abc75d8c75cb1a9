"""The learner's own data over HTTP: profile, reset, export, and erasure everywhere (PostgreSQL,
Redis playlists of every course, DynamoDB), on both progress backends; a refill already under way
when the learner resets writes nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import redis

from curator.learner_model import LearnerModel
from curator.playlist_writer import PlaylistWriter
from curator.refill import CuratorDeps, refill_many
from shared import constants
from shared.db.pool import open_async_pool
from shared.redis_client import async_client
from shared.runtime import Endpoints
from shared.settings import get_settings
from tests.curator.conftest import COURSE, dynamo_items
from tests.helpers import api_client, auth, run_worker


def _learn(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    lesson = client.post(f"/v1/courses/{COURSE}/lessons", headers=headers).json()
    for item in lesson["items"]:
        r = client.post(f"/v1/lessons/{lesson['lesson_id']}/answers", headers=headers, json={
            "item_id": item["item_id"], "answer": "a", "attempt_id": f"{lesson['lesson_id']}-{item['item_id']}",
            "response_ms": 2000})
        assert r.status_code == 200, r.text
    dup = client.post(f"/v1/lessons/{lesson['lesson_id']}/answers", headers=headers, json={
        "item_id": "1", "answer": "a", "attempt_id": f"{lesson['lesson_id']}-1", "response_ms": 2000})
    assert dup.json()["duplicate"] is True
    client.post(f"/v1/lessons/{lesson['lesson_id']}/complete", headers=headers).raise_for_status()
    return lesson


def _pg_rows(eps: Endpoints, learner: str) -> dict[str, int]:
    with psycopg.connect(eps.database_url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t} WHERE learner_id = %s", (learner,)).fetchone()[0]
                for t in ("lessons", "answer_events", "learner_seen", "learner_skill_state", "learner_course_state")}


def test_profile_reset_export_erase(backend: str, clean: Endpoints) -> None:
    learner, other = f"l-{uuid.uuid4().hex[:6]}", f"o-{uuid.uuid4().hex[:6]}"
    me, them = auth("learner", learner), auth("learner", other)
    r = redis.Redis.from_url(clean.redis_url)
    with api_client() as client:
        lesson = _learn(client, me)
        _learn(client, them)
        assert run_worker("curator") == 2
        profile = client.get("/v1/me/profile", headers=me).json()
        (mine,) = profile["courses"]
        assert mine["counts"]["answers"] == len(lesson["items"]) and mine["skills"]
        assert all(0 < s["mastery"] < 1 for s in mine["skills"])

        exported = client.get("/v1/me/export", headers=me)
        assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
        data = exported.json()
        assert data["progress_backend"] == backend and len(data["answers"]) == len(lesson["items"])
        assert data["lessons"] and data["skills"] and data["seen"]
        assert all(a.get("learner_id", learner) == learner for a in data["answers"])

        assert client.post("/v1/me/reset", params={"course": "no-such-course"}, headers=me).status_code == 404
        assert client.post("/v1/me/reset", params={"course": COURSE}, headers=me).json()["reset"] == [COURSE]
        assert client.get("/v1/me/profile", headers=me).json()["courses"] == []
        assert not r.exists(constants.playlist_key(learner, COURSE))
        assert len(client.get("/v1/me/export", headers=me).json()["answers"]) == len(lesson["items"])

        _learn(client, me)
        assert run_worker("curator") == 1
        assert r.exists(constants.playlist_key(learner, COURSE))
        gone = client.delete("/v1/me", headers=me)
        assert gone.status_code == 200 and gone.json()["erased"] is True
        assert client.delete("/v1/me", headers=me).status_code == 200  # idempotent
        assert client.post("/v1/me/reset", headers=auth("designer", "d-1")).status_code == 403

        spec = client.get("/schema/openapi.json").json()["paths"]
        for path, method in (("/v1/me/reset", "post"), ("/v1/me/export", "get"), ("/v1/me", "delete")):
            assert spec[path][method]["summary"] and spec[path][method]["description"]
    assert set(_pg_rows(clean, learner).values()) == {0}
    assert not [k for k in r.scan_iter(f"*{learner}*")] or [k for k in r.scan_iter(f"*{learner}*")] == [
        constants.erased_key(learner).encode()]
    assert _pg_rows(clean, other)["lessons"] > 0  # nobody else's data
    if backend == "dynamodb":
        assert dynamo_items(get_settings().progress_table, learner) == []
        assert dynamo_items(get_settings().progress_table, other)
    r.close()


def test_profile_of_one_course_checks_the_course(course: dict[str, float], clean: Endpoints) -> None:
    me = auth("learner", f"l-{uuid.uuid4().hex[:6]}")
    with api_client() as client:
        ok = client.get("/v1/me/profile", params={"course": COURSE}, headers=me)
        assert ok.status_code == 200 and [c["course"] for c in ok.json()["courses"]] == [COURSE]
        unknown = client.get("/v1/me/profile", params={"course": "no-such-course"}, headers=me)
        assert unknown.status_code == 404 and unknown.json()["field"] == "course"
        assert "no-such-course" in unknown.json()["detail"]
        for bad in ("Bad Course", "-dash-first", "x" * 49, f"{COURSE}\n", ""):
            r = client.get("/v1/me/profile", params={"course": bad}, headers=me)
            assert r.status_code == 400, (bad, r.text)
            assert r.json()["field"] == "course" and "course" in r.json()["detail"]
        assert client.get("/v1/me/profile", headers=me).json()["courses"] == []  # no course: those with state
        spec = client.get("/schema/openapi.json").json()["paths"]["/v1/me/profile"]["get"]
        assert {"400", "404"} <= set(spec["responses"])


class _PausedWriter(PlaylistWriter):
    """The refill's own playlist writer, made to run `before_write` (the test's reset) after the refill
    has read the learner's model and stored its planned lessons, just before the playlist write."""

    def __init__(self, r: Any, before_write: Any) -> None:
        super().__init__(r)
        self.before_write = before_write

    async def replace_many(self, *args: Any, **kwargs: Any) -> Any:
        self.before_write()
        return await super().replace_many(*args, **kwargs)


def test_a_refill_under_way_when_the_learner_resets_writes_nothing(course: dict[str, float],
                                                                   clean: Endpoints) -> None:
    learner = f"l-{uuid.uuid4().hex[:6]}"
    me = auth("learner", learner)
    r = redis.Redis.from_url(clean.redis_url)
    with api_client() as client:
        _learn(client, me)  # a model to reset

        def reset() -> None:
            assert client.post("/v1/me/reset", params={"course": COURSE}, headers=me).status_code == 200

        async def refill_around(before_write: Any) -> dict[tuple[str, str], int]:
            settings = get_settings()
            pool = await open_async_pool(clean.database_url, settings.database)
            playlists = async_client(clean.redis_url, settings.redis)
            deps = CuratorDeps(settings=settings, pool=pool, playlist_redis=playlists, model=LearnerModel.load())
            deps._writer = _PausedWriter(playlists, before_write)
            try:
                return await refill_many(deps, [(learner, COURSE)])
            finally:
                await playlists.aclose()
                await pool.close()

        # planned from the old model, written after the reset: refused, and its planned rows deleted
        assert asyncio.run(refill_around(reset)) == {(learner, COURSE): 0}
        assert not r.exists(constants.playlist_key(learner, COURSE))
        with psycopg.connect(clean.database_url) as conn:
            assert conn.execute("SELECT count(*) FROM lessons WHERE learner_id = %s AND status = 'planned'",
                                (learner,)).fetchone()[0] == 0
        # a refill that starts after the reset plans from the reset model and writes
        depth = get_settings().serving.playlist_depth
        assert asyncio.run(refill_around(lambda: None)) == {(learner, COURSE): depth}
        assert r.llen(constants.playlist_key(learner, COURSE)) == depth
    r.close()
