"""Refills end to end: the three triggers (lesson complete, cold-path miss, buffer low) over HTTP,
trigger coalescing, bad triggers dropped with a reason and a metric, and what a refill writes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import psycopg
import pytest
import redis

from shared import constants, metrics, queues
from shared.redis_client import arq_pool
from shared.runtime import Endpoints
from shared.settings import get_settings
from tests.curator.conftest import COURSE
from tests.helpers import api_client, auth, run_worker


def _queued(eps: Endpoints) -> list[str]:
    r = redis.Redis.from_url(eps.queue_redis_url)
    try:
        return [j.decode() for j in r.zrange(constants.REFILL_QUEUE, 0, -1)]
    finally:
        r.close()


def _playlist(eps: Endpoints, learner: str) -> list[bytes]:
    r = redis.Redis.from_url(eps.redis_url)
    try:
        return r.lrange(constants.playlist_key(learner, COURSE), 0, -1)
    finally:
        r.close()


def _answer_all(client: Any, lesson: dict[str, Any], headers: dict[str, str]) -> None:
    for item in lesson["items"]:
        r = client.post(f"/v1/lessons/{lesson['lesson_id']}/answers", headers=headers, json={
            "item_id": item["item_id"], "answer": "a", "attempt_id": uuid.uuid4().hex, "response_ms": 2500})
        assert r.status_code == 200, r.text


def _queued_ids(eps: Endpoints, learner: str) -> list[str]:
    return [e.split(b'"lesson_id":"')[1][:36].decode() for e in _playlist(eps, learner)]


def _planned(eps: Endpoints, learner: str) -> set[str]:
    with psycopg.connect(eps.database_url) as conn:
        return {r[0] for r in conn.execute("SELECT id::text FROM lessons WHERE learner_id = %s AND status = 'planned'",
                                           (learner,)).fetchall()}


def test_triggers_cold_miss_complete_and_low_buffer(course: dict[str, float], clean: Endpoints) -> None:
    learner = f"l-{uuid.uuid4().hex[:6]}"
    job = constants.refill_job_id(learner, COURSE)
    headers = auth("learner", learner)
    with api_client() as client:
        first = client.post(f"/v1/courses/{COURSE}/lessons", headers=headers).json()
        assert first["source"] == "cold"
        assert _queued(clean) == [job]  # cold-path miss
        assert run_worker("curator") == 1
        depth = get_settings().serving.playlist_depth
        replaced = _queued_ids(clean, learner)
        assert len(replaced) == depth
        _answer_all(client, first, headers)
        client.post(f"/v1/lessons/{first['lesson_id']}/complete", headers=headers).raise_for_status()
        assert _queued(clean) == [job]  # lesson complete
        assert run_worker("curator") == 1
        seen = {it["question_id"] for it in first["items"]}
        popped = []
        for _ in range(depth):  # pop down to empty: the last pop finds the buffer low
            lesson = client.post(f"/v1/courses/{COURSE}/lessons", headers=headers).json()
            assert lesson["source"] == "warm"
            assert not seen & {it["question_id"] for it in lesson["items"]}
            popped.append(lesson["lesson_id"])
        assert _queued(clean) == [job]  # buffer running low
        assert run_worker("curator") == 1
        queued = _queued_ids(clean, learner)
        assert len(queued) == depth
    # what is planned: the lessons queued now, and those popped but not answered yet (kept: the
    # learner may still answer them); the first playlist, replaced before any of it was popped, is gone
    assert _planned(clean, learner) == set(queued) | set(popped)
    with psycopg.connect(clean.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM lessons WHERE id = ANY(%s::uuid[])", (replaced,)).fetchone()[0] == 0


def test_a_refill_plans_none_of_the_questions_of_lessons_in_progress(backend: str, clean: Endpoints) -> None:
    """The low-buffer trigger fires at the pop, before any answer, while a warm lesson's questions
    count as seen only once answered: the refill must still leave out the questions of the lessons
    popped and not completed — the half-answered one's unanswered items too."""
    learner = f"l-{uuid.uuid4().hex[:6]}"
    job = constants.refill_job_id(learner, COURSE)
    headers = auth("learner", learner)
    depth = get_settings().serving.playlist_depth
    with api_client() as client:
        first = client.post(f"/v1/courses/{COURSE}/lessons", headers=headers).json()
        _answer_all(client, first, headers)
        client.post(f"/v1/lessons/{first['lesson_id']}/complete", headers=headers).raise_for_status()
        assert run_worker("curator") == 1  # the cold miss and the completion, coalesced into one refill
        in_progress: set[str] = set()
        for k in range(depth):  # popped, none completed; the first one half answered
            lesson = client.post(f"/v1/courses/{COURSE}/lessons", headers=headers).json()
            assert lesson["source"] == "warm"
            if k == 0:
                _answer_all(client, {**lesson, "items": lesson["items"][:2]}, headers)
                in_progress |= {it["question_id"] for it in lesson["items"][2:]}
            else:
                in_progress |= {it["question_id"] for it in lesson["items"]}
        assert _queued(clean) == [job]  # the last pop found the buffer empty
        assert run_worker("curator") == 1
        planned = [client.post(f"/v1/courses/{COURSE}/lessons", headers=headers).json() for _ in range(depth)]
    assert all(p["source"] == "warm" for p in planned)
    assert len(in_progress) == depth * get_settings().serving.lesson_size - 2
    assert not in_progress & {it["question_id"] for p in planned for it in p["items"]}


def test_triggers_within_the_window_compute_once(course: dict[str, float], clean: Endpoints) -> None:
    async def enqueue() -> list[bool]:
        arq = await arq_pool(clean.queue_redis_url, get_settings().redis)
        try:
            return [await queues.enqueue_refill(arq, "learner-x", COURSE, coalesce_ms=500) for _ in range(5)]
        finally:
            await arq.aclose()

    assert asyncio.run(enqueue()) == [True, False, False, False, False]
    assert _queued(clean) == [constants.refill_job_id("learner-x", COURSE)]
    assert run_worker("curator") == 1
    assert len(_playlist(clean, "learner-x")) == get_settings().serving.playlist_depth
    assert asyncio.run(enqueue())[0] is True  # after the run, the next trigger computes again


@pytest.mark.parametrize(("args", "reason"), [
    ((123, COURSE), "malformed"), (("learner 1!", COURSE), "malformed"), (("learner-1", None), "malformed"),
    (("learner-1", "Bad Course"), "malformed"), (("learner-1", "no-such-course"), "unknown_course"),
])
def test_bad_triggers_are_dropped_with_a_reason_and_a_metric(course: dict[str, float], clean: Endpoints,
                                                             caplog: pytest.LogCaptureFixture, args: tuple,
                                                             reason: str) -> None:
    async def enqueue() -> None:
        arq = await arq_pool(clean.queue_redis_url, get_settings().redis)
        try:
            await arq.enqueue_job(queues.REFILL_TASK, *args, _queue_name=constants.REFILL_QUEUE)
        finally:
            await arq.aclose()

    before = metrics.DROPPED_TRIGGERS.labels(reason)._value.get()
    asyncio.run(enqueue())
    with caplog.at_level(logging.WARNING, logger="curator.tasks"):
        assert run_worker("curator") == 1  # completed (dropped), not failed and retried
    assert metrics.DROPPED_TRIGGERS.labels(reason)._value.get() == before + 1
    assert any("refill trigger dropped" in r.getMessage() and getattr(r, "reason", "") == reason
               for r in caplog.records)
