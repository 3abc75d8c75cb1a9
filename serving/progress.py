"""Answers (graded, durable before the reply, idempotent by attempt id, owned by their learner),
lesson completion (fires the refill) and the learner's own data: profile, reset, export, erasure.

The answer event and the model's state updates go to the progress store (PostgreSQL or DynamoDB,
see `curator.progress_store`) in one atomic write. What lives with the lessons and the bank —
the question's calibrated item state, `learner_seen`, the lesson's `served` mark — is written to
PostgreSQL right after, in one statement (`lessons.ANSWERED`). The item state is written only if
the question still holds the state the answer read; if a concurrent answer to the question moved
it meanwhile, the answer's item step (`LearnerModel.apply_item_step`) is applied to the latest
state under the row's lock, so concurrent answers each calibrate the question, in commit order.
A retried attempt id re-applies `learner_seen` and `served` but not the step (it would count
twice), so a crash in between loses at most one item-calibration step.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from curator.learner_model import TYPICAL_LOGIT, ItemStep, LearnerModel
from curator.populations import PopulationCache
from curator.progress_store import (
    AnswerEvent,
    AttemptConflict,
    ProgressStore,
    SkillRecord,
    StateUpdate,
    open_progress_store,
)
from curator.scheduler import ReviewScheduler
from serving.grading import grade
from serving.lessons import trigger_refill
from shared import constants, metrics
from shared.db import courses, learners, lessons
from shared.db.pool import autocommit_connection
from shared.errors import BadInput, Conflict, NotFound
from shared.ids import COURSE_ID
from shared.services import Services

log = logging.getLogger(__name__)


@dataclass
class ProgressService:
    services: Services
    model: LearnerModel
    scheduler: ReviewScheduler
    store: ProgressStore = field(default=None)  # type: ignore[assignment]
    populations: PopulationCache = field(default=None)  # type: ignore[assignment]
    """The skills' population states (in process; share the cold path's, see lessonloop/app.py)."""

    def __post_init__(self) -> None:
        if self.store is None:
            self.store = open_progress_store(self.services.settings, self.services.pool)
        if self.populations is None:
            self.populations = PopulationCache(self.services.pool, self.services.settings.curator.population_refresh_s,
                                               self.services.redis)

    # --- answers -----------------------------------------------------------------------------------
    async def answer(self, learner_id: str, lesson_id: UUID, body: dict[str, Any]) -> dict[str, Any]:
        """Grade and record one answer; durable before return; the same attempt id twice records once."""
        item_id, attempt_id = body["item_id"], body["attempt_id"]
        async with autocommit_connection(self.services.pool) as conn:  # one read
            target = await lessons.answer_target(conn, lesson_id, item_id)
        if target is None or target["learner_id"] != learner_id:
            raise NotFound(f"lesson '{lesson_id}' not found", field="lesson_id")
        if target["question_id"] is None:
            raise NotFound(f"item '{item_id}' is not in lesson '{lesson_id}'", field="item_id")
        if target["status"] == "completed":
            raise Conflict(f"lesson '{lesson_id}' is already completed", field="lesson_id")
        if target["q_id"] is None:
            raise NotFound(f"question of item '{item_id}' no longer exists", field="item_id")
        question = {k: target[k] for k in ("skill_id", "level_rank", "type", "content", "item_state")}
        question["id"] = target["q_id"]
        result = grade(question["type"], question["content"], body["answer"])
        course_id = target["course_id"]
        event = AnswerEvent(
            learner_id=learner_id, attempt_id=attempt_id, lesson_id=str(lesson_id), item_id=item_id,
            question_id=str(question["id"]), course_id=course_id, skill_id=question["skill_id"],
            answer=body["answer"], correct=result.correct, response_ms=body["response_ms"])
        computed: dict[str, Any] = {}
        population = await self.populations.skill(course_id, question["skill_id"])  # cached: no round trip

        def compute(learner: dict[str, Any] | None, rec: SkillRecord | None) -> StateUpdate:
            item_state = copy.deepcopy(question["item_state"]) or self.model.new_item_state(question["level_rank"])
            update, step = self.update_model(learner, rec, item_state, level_rank=question["level_rank"],
                                             correct=result.correct, response_ms=body["response_ms"],
                                             population={k: v[:] if isinstance(v, list) else v
                                                         for k, v in population.items()})
            computed["item_state"], computed["step"] = item_state, step
            return update

        try:
            recorded = await self.store.record_answer(event, compute)
        except AttemptConflict as exc:
            raise Conflict(exc.detail, field="attempt_id") from exc
        if recorded.duplicate and recorded.answer is not None:  # replied as the first was, whatever the retry says
            result = grade(question["type"], question["content"], recorded.answer)
        async with autocommit_connection(self.services.pool) as conn:  # the lesson side: one statement
            moved = await lessons.answered(conn, learner=learner_id, course=course_id, lesson_id=lesson_id,
                                           question_id=target["question_id"], before=question["item_state"],
                                           after=None if recorded.duplicate else computed["item_state"])
            if moved:  # the cached population follows the item: old state out, new in
                self.populations.apply(course_id, question["skill_id"], question["item_state"], computed["item_state"])
            elif not recorded.duplicate:
                await self._step_latest(conn, course_id, question, computed["step"])
        reply = {"correct": recorded.correct, "expected": result.expected, "feedback": result.feedback,
                 "attempt_id": attempt_id}
        if recorded.duplicate:
            return {**reply, "duplicate": True}
        metrics.ANSWERS.labels(str(result.correct).lower()).inc()
        return reply

    async def _step_latest(self, conn: AsyncConnection[Any], course_id: str, question: dict[str, Any],
                           step: ItemStep) -> None:
        """A concurrent answer moved the question's item state after this answer read it: apply this
        answer's step to the latest state, under the row's lock (the rare, contended path)."""
        async with conn.transaction():
            latest = await lessons.lock_item_state(conn, str(question["id"]))
            if latest is None:
                return  # the question is gone
            after = copy.deepcopy(latest) or self.model.new_item_state(question["level_rank"])
            self.model.apply_item_step(after, step)
            await lessons.set_item_state(conn, str(question["id"]), after)
        self.populations.apply(course_id, question["skill_id"], latest, after)

    def update_model(self, learner: dict[str, Any] | None, rec: SkillRecord | None, item_state: dict[str, Any], *,
                     level_rank: int, correct: bool, response_ms: int | None, now: float | None = None,
                     population: dict[str, Any] | None = None) -> tuple[StateUpdate, ItemStep]:
        """The learner's states after one answer, and the answer's step of the item (pure apart from
        mutating `item_state` and `population`, the skill's population state: None reads as a skill
        nobody has answered)."""
        now = time.time() if now is None else now
        learner = copy.deepcopy(learner) if learner is not None else self.model.new_learner_state()
        skill = copy.deepcopy(rec.state) if rec is not None else self.model.new_skill_state(level_rank)
        p = self.model.predict(learner, skill, item_state, now, population)
        step = self.model.update(learner, skill, item_state, correct, now, population)
        card = self.scheduler.review(rec.card if rec is not None and rec.card else self.scheduler.new_card(),
                                     correct, response_ms, datetime.fromtimestamp(now, UTC))
        # the planner aims each item's predicted success from the typical-item logit (docs/curator.md)
        mastery, skill[TYPICAL_LOGIT] = self.model.mastery_and_typical(learner, skill, now, population)
        return StateUpdate(learner=learner, p_correct=p, skill=SkillRecord(
            state=skill, card=card, mastery=mastery,
            attempts=(rec.attempts if rec else 0) + 1, correct=(rec.correct if rec else 0) + int(correct),
            due_at=self.scheduler.due(card))), step

    # --- complete ---------------------------------------------------------------------------------
    async def complete(self, learner_id: str, lesson_id: UUID) -> dict[str, Any]:
        async with self.services.pool.connection() as conn:
            lesson = await lessons.get_lesson(conn, lesson_id)
        if lesson is None or lesson["learner_id"] != learner_id:
            raise NotFound(f"lesson '{lesson_id}' not found", field="lesson_id")
        if lesson["status"] == "completed" and lesson["summary"]:
            return {**lesson["summary"], "already_completed": True}
        given = await self.store.lesson_answers(learner_id, str(lesson_id))
        summary = {
            "lesson_id": str(lesson_id), "course": lesson["course_id"], "source": lesson["source"],
            "items": len(lesson["items"]), "answered": len(given),
            "correct": sum(1 for a in given if a["correct"]),
            "skills": sorted({a["skill_id"] for a in given}),
        }
        async with self.services.pool.connection() as conn, conn.transaction():
            await lessons.complete(conn, lesson_id, summary)
        await trigger_refill(self.services, learner_id, lesson["course_id"], "complete")
        return summary

    # --- the learner's own data ---------------------------------------------------------------------
    async def profile(self, learner_id: str, course_id: str | None) -> dict[str, Any]:
        """The learner's model in one course (`course_id`: 404 if unknown) or in every course they
        have model state in."""
        if course_id is not None:
            await self._known_course(course_id)
        now = time.time()
        out: dict[str, Any] = {"learner_id": learner_id, "courses": []}
        course_ids = [course_id] if course_id else await self.store.courses(learner_id)
        for cid in course_ids:
            rows = await self.store.skill_records(learner_id, cid)
            learner = await self.store.course_state(learner_id, cid) or self.model.new_learner_state()
            populations = await self.populations.course(cid)
            skills = [{
                "skill": sid, "mastery": round(self.model.mastery(learner, r.state, now, populations.get(sid)), 4),
                "attempts": r.attempts, "correct": r.correct,
                "due_at": r.due_at.isoformat() if r.due_at else None,
            } for sid, r in sorted(rows.items())]
            async with self.services.pool.connection() as conn:
                counts = await lessons.learner_counts(conn, learner_id, cid)
            out["courses"].append({
                "course": cid, "skills": skills,
                "due_reviews": [sid for sid, r in sorted(rows.items()) if r.due_at and r.due_at.timestamp() <= now],
                "counts": {**await self.store.totals(learner_id, cid), **counts},
            })
        return out

    async def _known_course(self, course_id: str) -> None:
        """BadInput (400) for a malformed course id, NotFound (404) for one that does not exist."""
        if not COURSE_ID.fullmatch(course_id):
            raise BadInput(f"course: {course_id[:64]!r} is not a course id (lower-case letters, digits and "
                           "dashes, 1-48 characters)", field="course")
        async with self.services.pool.connection() as conn:
            if await courses.get_course(conn, course_id) is None:
                raise NotFound(f"course '{course_id}' not found", field="course")

    async def _all_courses(self) -> list[str]:
        async with self.services.pool.connection() as conn:
            return [c["id"] for c in await courses.list_courses(conn)]

    async def _drop_playlists(self, learner_id: str, course_ids: list[str]) -> None:
        """Delete the learner's playlists, their reset marks and any refill still queued for them (a
        refill under way that read a mark deleted here cannot write either)."""
        if not course_ids:
            return
        # Every playlist (and mark) of one learner carries the same bucket hash tag: one DEL, one slot.
        await self.services.redis.delete(*[constants.playlist_key(learner_id, c) for c in course_ids],
                                         *[constants.reset_key(learner_id, c) for c in course_ids])
        job_ids = [constants.refill_job_id(learner_id, c) for c in course_ids]
        async with self.services.arq.pipeline(transaction=False) as pipe:
            pipe.zrem(constants.REFILL_QUEUE, *job_ids)
            pipe.delete(*[constants.ARQ_JOB_KEY_PREFIX + j for j in job_ids])
            await pipe.execute()

    async def reset(self, learner_id: str, course_id: str | None) -> dict[str, Any]:
        """Forget the learner's model (one course or all): mastery, reviews, what they have seen and
        their precomputed lessons. The answer history stays (it is in the export).

        A refill already under way may have read the old model: after the stores are reset, a new
        reset mark per course (`constants.reset_key`) makes its playlist write a no-op (the write
        script compares the mark with the one the refill read before the model), and the playlists
        are dropped again, taking whatever such a refill wrote before the mark. A refill that reads
        the new mark reads the reset model. Playlists also go first, so no lesson planned from the
        old model is popped while the stores are being reset."""
        if course_id is not None:
            await self._known_course(course_id)
        targets = [course_id] if course_id else await self._all_courses()
        await self._drop_playlists(learner_id, targets)
        await self.store.reset(learner_id, course_id)
        async with self.services.pool.connection() as conn, conn.transaction():
            await learners.reset_lessons(conn, learner_id, course_id)
        if targets:
            mark = os.urandom(8).hex()
            async with self.services.redis.pipeline(transaction=False) as pipe:  # one slot: the learner's
                for cid in targets:
                    pipe.set(constants.reset_key(learner_id, cid), mark, ex=constants.RESET_TTL_S)
                await pipe.execute()
            await self.services.redis.delete(*[constants.playlist_key(learner_id, c) for c in targets])
        log.info("learner reset", extra={"learner": learner_id, "course": course_id or "*"})
        return {"learner_id": learner_id, "reset": targets}

    async def export(self, learner_id: str) -> dict[str, Any]:
        """Everything stored about the learner, as JSON-ready values."""
        async with self.services.pool.connection() as conn:
            lesson_side = await learners.export_lessons(conn, learner_id)
        progress = await self.store.export(learner_id)
        return _jsonable({"learner_id": learner_id, "exported_at": datetime.now(UTC).isoformat(),
                          "progress_backend": self.store.backend, **lesson_side, **progress})

    async def erase(self, learner_id: str) -> dict[str, Any]:
        """Erase the learner everywhere: playlists and queued refills (Redis), lessons, seen and — on the
        PostgreSQL backend — progress (PostgreSQL), progress (DynamoDB backend). A refill already
        running cannot write their playlist again: the tombstone makes the playlist write a no-op."""
        await self.services.redis.set(constants.erased_key(learner_id), b"1", ex=constants.ERASED_TTL_S)
        await self._drop_playlists(learner_id, await self._all_courses())
        async with self.services.pool.connection() as conn, conn.transaction():
            await learners.erase_lessons(conn, learner_id)
        await self.store.erase(learner_id)
        log.info("learner erased", extra={"learner": learner_id})
        return {"learner_id": learner_id, "erased": True}


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, UUID):
        return str(v)
    return v


def check_answer_body(body: dict[str, Any], max_chars: int) -> None:
    if len(body["answer"]) > max_chars:
        raise BadInput(f"answer: longer than {max_chars} characters", field="answer")
    if not body["attempt_id"].strip():
        raise BadInput("attempt_id: must not be blank", field="attempt_id")
