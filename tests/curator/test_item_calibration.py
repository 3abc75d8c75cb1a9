"""Item calibration on the answer path: an answer writes the question's new item state only if the
question still holds the state the answer read (`lessons.ANSWERED`), and otherwise applies its item
step (`LearnerModel.apply_item_step`) to the latest state under the row lock — so concurrent answers
to one question from several learners each apply (the stored state is a sequential result) and the
process's population cache stays equal to a reload."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import uuid

import httpx
import psycopg
import pytest

from curator.learner_model import LearnerModel
from shared.runtime import Endpoints
from shared.settings import get_settings
from tests.curator.conftest import COURSE
from tests.helpers import LiveServer, auth

MODEL = LearnerModel.load()


async def _waiting_on(database_url: str, n: int) -> None:
    """Until `n` backends wait for a lock (the answers queued behind the test's row lock). Its own
    autocommit connection: pg_stat_activity is a snapshot per transaction."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        for _ in range(1000):
            row = await (await conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                            "AND datname = current_database()")).fetchone()
            if row and row[0] >= n:
                return
            await asyncio.sleep(0.01)
    raise TimeoutError(f"fewer than {n} answers waited for the question's row lock")


def test_concurrent_answers_to_one_question_each_apply(course: dict[str, float], clean: Endpoints) -> None:
    """Five learners answer one question at once. The test holds the question's row lock until every
    answer has read the question and queued behind the lock, so each computed its step from the same
    stale state: a last-writer-wins write would keep one step (n = 1)."""
    outcomes = [True, False, True, True, False]
    learners = [f"c-{k}-{uuid.uuid4().hex[:6]}" for k in range(len(outcomes))]
    with psycopg.connect(clean.database_url) as conn:
        qid, skill, level = conn.execute("SELECT id::text, skill_id, level_rank FROM questions WHERE course_id = %s "
                                         "ORDER BY id LIMIT 1", (COURSE,)).fetchone()
        lesson_ids = [str(uuid.uuid4()) for _ in learners]
        for lid, learner in zip(lesson_ids, learners, strict=True):
            items = [{"item_id": "1", "question_id": qid, "skill": skill, "type": "multiple_choice", "prompt": "?"}]
            conn.execute("INSERT INTO lessons (id, learner_id, course_id, source, items, status) "
                         "VALUES (%s, %s, %s, 'warm', %s, 'planned')", (lid, learner, COURSE, json.dumps(items)))
        start = conn.execute("SELECT item_state FROM questions WHERE id = %s", (qid,)).fetchone()[0]

    server = LiveServer().start()  # uvicorn in its own thread: the requests really run at once

    async def run() -> list[int]:
        progress = server.server.config.app.state.progress
        blocker = await psycopg.AsyncConnection.connect(clean.database_url)
        try:
            await blocker.execute("SELECT 1 FROM questions WHERE id = %s FOR UPDATE", (qid,))
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                async def answer(lid: str, learner: str, ok: bool) -> int:
                    r = await client.post(f"/v1/lessons/{lid}/answers", headers=auth("learner", learner), json={
                        "item_id": "1", "answer": "a" if ok else "b", "attempt_id": f"{lid}-1",
                        "response_ms": 2000})
                    return r.status_code

                async def release() -> None:
                    await _waiting_on(clean.database_url, len(learners))
                    await blocker.commit()

                assert progress.populations.cached(COURSE) is not None  # loaded: the answers must keep it exact
                replies = await asyncio.gather(*(answer(lid, ln, ok) for lid, ln, ok
                                                 in zip(lesson_ids, learners, outcomes, strict=True)), release())
        finally:
            await blocker.close()
        return list(replies[:-1])

    try:
        with httpx.Client(base_url=server.url) as warmup:  # the process loads the course's populations
            warmup.get("/v1/me/profile", params={"course": COURSE}, headers=auth("learner", learners[0]))
        statuses = asyncio.run(run())
        cached = server.server.config.app.state.progress.populations.cached(COURSE)
    finally:
        server.stop()
        get_settings.cache_clear()
    assert statuses == [200] * len(learners)
    with psycopg.connect(clean.database_url) as conn:
        stored = conn.execute("SELECT item_state FROM questions WHERE id = %s", (qid,)).fetchone()[0]
        answered = conn.execute("SELECT count(*) FROM answer_events WHERE question_id = %s", (qid,)).fetchone()[0]
    assert answered == len(learners)
    # every learner is new to the course, so each answer's step differs only in right/wrong: the stored
    # state must be those steps applied one after the other, in the (unknown) commit order
    fresh_learner, fresh_skill = MODEL.new_learner_state(), MODEL.new_skill_state(level)
    sequential = []
    for order in set(itertools.permutations(outcomes)):
        item = copy.deepcopy(start)
        for ok in order:
            MODEL.update(copy.deepcopy(fresh_learner), copy.deepcopy(fresh_skill), item, ok, 0.0)
        sequential.append(item)
    assert stored["n"] == start["n"] + len(learners) and stored["nc"] == start["nc"] + sum(outcomes)
    assert stored in sequential
    # and the process's cached population followed every step: equal to a reload from PostgreSQL
    with psycopg.connect(clean.database_url) as conn:
        states = [r[0] for r in conn.execute("SELECT item_state FROM questions WHERE course_id = %s AND "
                                             "skill_id = %s AND status = 'active'", (COURSE, skill)).fetchall()]
    reloaded = MODEL.population(states)
    assert cached is not None
    assert {k: v for k, v in cached[skill].items() if k != "bn"} == {k: v for k, v in reloaded.items() if k != "bn"}
    assert cached[skill]["bn"] == pytest.approx(reloaded["bn"], abs=1e-9)
