"""The warm lane (serving.warm_lane) answers warm hits in front of the framework and leaves the rest
to the litestar route: a miss goes cold with one pop, not two; a lesson whose items were all retired
is skipped; errors are answered by the route as for every other endpoint."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import psycopg
import redis
import redis.asyncio as aioredis

from curator.playlist_writer import replace_playlist
from review_portal.retirement import mark_retired_everywhere
from shared import constants
from shared.runtime import Endpoints
from tests.helpers import api_client, auth, seed_bank, staff

COURSE = "spanish-a1-b1"


def _bank_questions(eps: Endpoints, n: int) -> list[tuple[str, str, str]]:
    with psycopg.connect(eps.database_url) as conn:
        rows = conn.execute("SELECT id::text, skill_id, type FROM questions ORDER BY id LIMIT %s", (n,)).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def _lesson(learner: str, questions: list[tuple[str, str, str]]) -> dict[str, Any]:
    return {"lesson_id": str(uuid.uuid4()), "learner_id": learner, "course": COURSE, "source": "warm",
            "items": [{"item_id": str(i), "question_id": q, "skill": skill, "type": qtype, "prompt": "?"}
                      for i, (q, skill, qtype) in enumerate(questions, 1)]}


def _queue(eps: Endpoints, learner: str, lessons: list[dict[str, Any]]) -> None:
    async def run() -> None:
        r = aioredis.Redis.from_url(eps.redis_url)
        try:
            await replace_playlist(r, learner, COURSE, lessons)
        finally:
            await r.aclose()

    asyncio.run(run())


def _queued(eps: Endpoints, learner: str) -> int:
    client = redis.Redis.from_url(eps.redis_url)
    try:
        return int(client.llen(constants.playlist_key(learner, COURSE)))
    finally:
        client.close()


def test_warm_hit_partly_retired_and_wholly_retired_lessons(curriculum: dict[str, Any], clean: Endpoints) -> None:
    seed_bank(clean.database_url, curriculum, ["greetings", "numbers"], per_skill=8)
    qs = _bank_questions(clean, 6)
    learner = f"lane-{uuid.uuid4().hex[:6]}"
    whole = _lesson(learner, qs[0:2])        # every item retired: skipped, the learner gets a cold lesson
    partly = _lesson(learner, qs[2:5])       # one retired item dropped, the rest served warm
    clean_lesson = _lesson(learner, qs[5:6])
    _queue(clean, learner, [clean_lesson, partly, whole, _lesson(learner, qs[5:6])])
    headers = auth("learner", learner)
    with api_client() as client:
        for qid in (qs[0][0], qs[1][0], qs[3][0]):  # in the bank and in every retired set
            r = client.post(f"/v1/questions/{qid}/retire", json={"reason": "typo"}, headers=staff())
            assert r.status_code == 200, r.text
        first = client.post(f"/v1/courses/{COURSE}/lessons", headers=headers)
        assert first.status_code == 200 and first.headers["x-lesson-source"] == "warm"
        assert json.loads(first.content) == clean_lesson  # the stored bytes, as they were

        second = client.post(f"/v1/courses/{COURSE}/lessons", headers=headers)
        assert second.status_code == 200 and second.headers["x-lesson-source"] == "warm"
        assert [i["question_id"] for i in second.json()["items"]] == [qs[2][0], qs[4][0]]

        third = client.post(f"/v1/courses/{COURSE}/lessons", headers=headers)
        assert third.status_code == 200, third.text
        assert third.headers["x-lesson-source"] == "cold"
        served = {i["question_id"] for i in third.json()["items"]}
        assert not served & {qs[0][0], qs[1][0], qs[3][0]}, "a retired question reached the learner"
        # one pop for that request: the lesson behind the retired one is still queued
        assert _queued(clean, learner) == 1
        assert "server-timing" in third.headers


def test_errors_on_the_lesson_start_are_answered_by_the_route(curriculum: dict[str, Any], clean: Endpoints) -> None:
    with api_client() as client:
        r = client.post(f"/v1/courses/{COURSE}/lessons")
        assert r.status_code == 401 and "Authorization" in r.json()["detail"]
        assert r.headers["www-authenticate"] == "Bearer"
        r = client.post(f"/v1/courses/{COURSE}/lessons", headers={"Authorization": "Bearer not-a-jwt"})
        assert r.status_code == 401 and "invalid token" in r.json()["detail"]
        r = client.post(f"/v1/courses/{COURSE}/lessons", headers=staff())
        assert r.status_code == 403 and "learner" in r.json()["detail"]
        r = client.post("/v1/courses/Not_A_Course/lessons", headers=auth("learner", "l1"))
        assert r.status_code == 400 and "course" in r.text
        r = client.post("/v1/courses/no-such-course/lessons", headers=auth("learner", "l1"))
        assert r.status_code == 404 and r.json()["field"] == "course"
        assert client.get(f"/v1/courses/{COURSE}/lessons", headers=auth("learner", "l1")).status_code == 405


def test_a_broken_playlist_element_is_a_json_500_not_a_dropped_connection(curriculum: dict[str, Any],
                                                                         clean: Endpoints) -> None:
    learner = f"lane-{uuid.uuid4().hex[:6]}"
    retired = str(uuid.uuid4())
    client = redis.Redis.from_url(clean.redis_url)
    try:  # a header naming a retired question and a body that is not JSON: decoding it fails
        client.rpush(constants.playlist_key(learner, COURSE), f"{retired}|not json".encode())
    finally:
        client.close()
    asyncio.run(_retire_in_redis(clean, retired))
    with api_client() as api:
        r = api.post(f"/v1/courses/{COURSE}/lessons", headers=auth("learner", learner))
        assert r.status_code == 500 and r.json() == {"status_code": 500, "detail": "internal error"}
        assert 'lessonloop_http_errors_total{route="start_lesson",status="500"}' in api.get("/metrics").text


async def _retire_in_redis(eps: Endpoints, qid: str) -> None:
    r = aioredis.Redis.from_url(eps.redis_url)
    try:
        await mark_retired_everywhere(r, uuid.UUID(qid))
    finally:
        await r.aclose()
