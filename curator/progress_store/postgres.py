"""The PostgreSQL progress backend (the default): `answer_events`, `learner_course_state` and
`learner_skill_state` through `shared.db`. An answer and its state updates commit in one
transaction of two statements (`shared.db.answers.RECORD_READS`, `RECORD_WRITES`); the learner's
course-state row is locked (FOR UPDATE) so concurrent answers of one learner apply one after the
other, and UNIQUE (learner_id, attempt_id) makes answers idempotent."""

from __future__ import annotations

from typing import Any

import msgspec
from psycopg_pool import AsyncConnectionPool

from curator.progress_store import (
    AnswerEvent,
    AttemptConflict,
    Compute,
    PlanningState,
    Recorded,
    SkillBrief,
    SkillRecord,
)
from shared.db import answers, learners

_BRIEFS = msgspec.json.Decoder(dict[str, SkillBrief])
"""`learners.PLANNING_BATCH`'s skills column: msgspec builds the briefs in C, ~8x json.loads plus a
tuple per skill (most of the decoding cost of a refill batch)."""


def _record(row: dict[str, Any]) -> SkillRecord:
    return SkillRecord(state=row["state"], card=row["card"], mastery=float(row["mastery"]), attempts=row["attempts"],
                       correct=row["correct"], due_at=row["due_at"], last_seen_at=row["last_seen_at"])


class PostgresProgressStore:
    backend = "postgres"

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def record_answer(self, event: AnswerEvent, compute: Compute) -> Recorded:
        ev = event.__dict__
        async with self.pool.connection() as conn, conn.transaction():
            got = await answers.record_reads(conn, ev)
            if got["prior_lesson_id"] is not None:
                return _duplicate(got, event)
            if got["item_answered"]:
                raise AttemptConflict(f"item '{event.item_id}' was already answered with another attempt_id")
            update = compute(got["learner_state"], _record(got) if got["skill_id"] is not None else None)
            sk = update.skill
            recorded = await answers.record_writes(
                conn, {**ev, "p_correct": update.p_correct}, learner_state=update.learner,
                skill={"state": sk.state, "card": sk.card, "mastery": sk.mastery, "attempts": sk.attempts,
                       "correct": sk.correct, "due_at": sk.due_at})
            if not recorded:  # a concurrent request with the same attempt (or item) won the race
                raise AttemptConflict(f"attempt_id '{event.attempt_id}' is being recorded concurrently; retry")
        return Recorded(correct=event.correct, duplicate=False, p_correct=update.p_correct)

    async def skill_record(self, learner_id: str, course_id: str, skill_id: str) -> SkillRecord | None:
        async with self.pool.connection() as conn:
            row = await learners.skill_state(conn, learner_id, course_id, skill_id)
        return _record(row) if row else None

    async def course_state(self, learner_id: str, course_id: str) -> dict[str, Any] | None:
        async with self.pool.connection() as conn:
            return await learners.course_state(conn, learner_id, course_id)

    async def skill_records(self, learner_id: str, course_id: str) -> dict[str, SkillRecord]:
        async with self.pool.connection() as conn:
            rows = await learners.skill_states(conn, learner_id, course_id)
        return {sid: _record(r) for sid, r in rows.items()}

    async def planning_states(self, pairs: list[tuple[str, str]], *,
                              conn: Any = None, seen: bool = True) -> dict[tuple[str, str], PlanningState]:
        if conn is None:
            async with self.pool.connection() as own:
                return await self.planning_states(pairs, conn=own, seen=seen)
        out: dict[tuple[str, str], PlanningState] = {}
        for lid, cid, state, skills_json, seen_text in await learners.planning_batch(conn, pairs, with_seen=seen):
            ps = PlanningState(state, seen=(set(seen_text.split(",")) if seen_text else set()) if seen else None)
            if skills_json:  # {skill: [mastery, attempts, due, last, streak, typical logit]}, decoded and typed in C
                ps.skills = _BRIEFS.decode(skills_json)
            out[(lid, cid)] = ps
        return out

    async def lesson_answers(self, learner_id: str, lesson_id: str) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            return await answers.for_lesson(conn, lesson_id)  # type: ignore[arg-type]

    async def totals(self, learner_id: str, course_id: str) -> dict[str, int]:
        async with self.pool.connection() as conn:
            return await answers.learner_totals(conn, learner_id, course_id)

    async def courses(self, learner_id: str) -> list[str]:
        async with self.pool.connection() as conn:
            return await learners.courses_of(conn, learner_id)

    async def reset(self, learner_id: str, course_id: str | None) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            await learners.reset_progress(conn, learner_id, course_id)

    async def export(self, learner_id: str) -> dict[str, list[dict[str, Any]]]:
        async with self.pool.connection() as conn:
            return await learners.export_progress(conn, learner_id)

    async def erase(self, learner_id: str) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            await learners.erase_progress(conn, learner_id)

    async def close(self) -> None:
        return None


def _duplicate(got: dict[str, Any], event: AnswerEvent) -> Recorded:
    if str(got["prior_lesson_id"]) != str(event.lesson_id) or got["prior_item_id"] != event.item_id:
        raise AttemptConflict(f"attempt_id '{event.attempt_id}' was already used for another item")
    return Recorded(correct=bool(got["prior_correct"]), duplicate=True, answer=got["prior_answer"])
