"""The progress store, both backends (PostgreSQL; DynamoDB on moto's server): an answer and its state
updates commit together, the same attempt id records once, concurrent answers lose no update, and
erasure leaves nothing."""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from typing import Any

import psycopg
import pytest

from curator.learner_model import TYPICAL_LOGIT, LearnerModel
from curator.progress_store import AnswerEvent, AttemptConflict, SkillRecord, StateUpdate, open_progress_store
from shared.db import lessons
from shared.db.pool import open_async_pool
from shared.runtime import Endpoints
from shared.settings import get_settings
from tests.curator.conftest import COURSE, dynamo_items

MODEL = LearnerModel.load()


def compute(correct: bool) -> Any:
    def run(learner: dict[str, Any] | None, rec: SkillRecord | None) -> StateUpdate:
        now = time.time()
        lst = copy.deepcopy(learner) if learner else MODEL.new_learner_state()
        sk = copy.deepcopy(rec.state) if rec else MODEL.new_skill_state(0)
        item = MODEL.new_item_state(0)
        p = MODEL.predict(lst, sk, item, now)
        MODEL.update(lst, sk, item, correct, now)
        mastery, sk[TYPICAL_LOGIT] = MODEL.mastery_and_typical(lst, sk, now)  # as serving/progress.py keeps it
        return StateUpdate(lst, SkillRecord(sk, None, mastery, (rec.attempts if rec else 0) + 1,
                                            (rec.correct if rec else 0) + int(correct), None), p)
    return run


async def _with_store(eps: Endpoints, fn: Any) -> Any:
    pool = await open_async_pool(eps.database_url, get_settings().database, min_size=1)
    store = open_progress_store(get_settings(), pool)
    try:
        return await fn(store, pool)
    finally:
        await store.close()
        await pool.close()


async def _lesson(pool: Any, learner: str, n_items: int) -> str:
    lid = str(uuid.uuid4())
    items = [{"item_id": str(i), "question_id": str(uuid.uuid4()), "skill": "k00"} for i in range(1, n_items + 1)]
    async with pool.connection() as conn:
        await lessons.insert_served(conn, {"lesson_id": lid, "learner_id": learner, "course": COURSE,
                                           "source": "warm", "items": items})
    return lid


def _event(learner: str, lesson: str, item: str, attempt: str, correct: bool = True) -> AnswerEvent:
    return AnswerEvent(learner_id=learner, attempt_id=attempt, lesson_id=lesson, item_id=item,
                       question_id=str(uuid.uuid4()), course_id=COURSE, skill_id="k00", answer="a",
                       correct=correct, response_ms=2000)


def test_answers_are_atomic_idempotent_and_lose_no_update(backend: str, clean: Endpoints) -> None:
    learner = f"l-{uuid.uuid4().hex[:6]}"

    async def run(store: Any, pool: Any) -> None:
        lesson = await _lesson(pool, learner, 8)
        first = await store.record_answer(_event(learner, lesson, "1", "att-1"), compute(True))
        assert not first.duplicate and first.correct
        again = await store.record_answer(_event(learner, lesson, "1", "att-1"), compute(False))
        assert again.duplicate and again.correct  # the first recording wins, nothing is applied twice
        assert again.answer == "a"  # what was first answered: the duplicate's reply is graded from it
        with pytest.raises(AttemptConflict):
            await store.record_answer(_event(learner, lesson, "2", "att-1"), compute(True))  # attempt reused
        with pytest.raises(AttemptConflict):
            await store.record_answer(_event(learner, lesson, "1", "att-other"), compute(True))  # item twice
        # concurrent answers of one learner: every update lands (row lock / optimistic version)
        if store.backend == "postgres":
            await asyncio.gather(*(store.record_answer(_event(learner, lesson, str(i), f"att-{i}", i % 2 == 0),
                                                       compute(i % 2 == 0)) for i in range(2, 8)))
        else:
            # moto's server is not safe for concurrent transactions, so the race is staged: while item
            # i is being computed, item i+1 commits; the version check must make item i re-read.
            calls = {"n": 0}

            def racing(i: int) -> Any:
                inner = compute(i % 2 == 0)

                def run(learner_state: Any, rec: Any) -> StateUpdate:
                    calls["n"] += 1
                    if calls["n"] == 1:
                        store._record(_event(learner, lesson, str(i + 1), f"att-{i + 1}", (i + 1) % 2 == 0),
                                      compute((i + 1) % 2 == 0))
                    return inner(learner_state, rec)
                return run

            await store.record_answer(_event(learner, lesson, "2", "att-2", True), racing(2))
            assert calls["n"] == 2  # recomputed on the fresh state
            for i in range(4, 8):
                await store.record_answer(_event(learner, lesson, str(i), f"att-{i}", i % 2 == 0), compute(i % 2 == 0))
        rec = await store.skill_record(learner, COURSE, "k00")
        assert rec is not None and rec.attempts == 7 and rec.correct == 4
        assert rec.state["n"] == 7
        state = await store.course_state(learner, COURSE)
        assert state is not None and state["n"] == 7
        assert await store.totals(learner, COURSE) == {"answers": 7, "correct": 4}
        assert {a["item_id"] for a in await store.lesson_answers(learner, lesson)} == {str(i) for i in range(1, 8)}
        planning = await store.planning_states([(learner, COURSE), ("nobody", COURSE)])
        brief = planning[(learner, COURSE)].skills["k00"]
        assert brief.attempts == 7 and brief.streak == rec.state["streak"]
        assert brief.typical_logit == rec.state[TYPICAL_LOGIT]  # what the planner aims from, read back exactly
        assert await store.courses(learner) == [COURSE]

    asyncio.run(_with_store(clean, run))


def test_reset_export_and_erase(backend: str, clean: Endpoints) -> None:
    learner, other = f"l-{uuid.uuid4().hex[:6]}", f"o-{uuid.uuid4().hex[:6]}"

    async def run(store: Any, pool: Any) -> None:
        for who in (learner, other):
            lesson = await _lesson(pool, who, 2)
            await store.record_answer(_event(who, lesson, "1", f"{who}-1"), compute(True))
        exported = await store.export(learner)
        assert len(exported["answers"]) == 1 and len(exported["skills"]) == 1 and len(exported["courses"]) == 1
        await store.reset(learner, COURSE)
        assert await store.skill_records(learner, COURSE) == {}
        assert await store.course_state(learner, COURSE) is None
        assert (await store.export(learner))["answers"]  # the history stays
        await store.erase(learner)
        assert not any((await store.export(learner)).values())
        assert await store.skill_record(other, COURSE, "k00") is not None  # nobody else's data
        await store.erase(learner)  # idempotent

    asyncio.run(_with_store(clean, run))
    if backend == "dynamodb":
        assert dynamo_items(get_settings().progress_table, learner) == []
    else:
        with psycopg.connect(clean.database_url) as conn:
            for table in ("answer_events", "learner_skill_state", "learner_course_state"):
                n = conn.execute(f"SELECT count(*) FROM {table} WHERE learner_id = %s", (learner,)).fetchone()
                assert n is not None and n[0] == 0, table
