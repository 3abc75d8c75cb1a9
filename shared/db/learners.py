"""Learner state: the learner model per learner x course and per skill, plus what they have seen."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

GET_COURSE_STATE = "SELECT state FROM learner_course_state WHERE learner_id = %s AND course_id = %s FOR UPDATE"
GET_COURSE_STATE_RO = "SELECT state FROM learner_course_state WHERE learner_id = %s AND course_id = %s"
UPSERT_COURSE_STATE = """
INSERT INTO learner_course_state (learner_id, course_id, state) VALUES (%s, %s, %s)
ON CONFLICT (learner_id, course_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()
"""
GET_SKILL_STATES = """
SELECT skill_id, state, card, mastery, attempts, correct, due_at, last_seen_at
FROM learner_skill_state WHERE learner_id = %s AND course_id = %s
"""
UPSERT_SKILL_STATE = """
INSERT INTO learner_skill_state (learner_id, course_id, skill_id, state, card, mastery, attempts, correct,
                                 due_at, last_seen_at)
VALUES (%(learner)s, %(course)s, %(skill)s, %(state)s, %(card)s, %(mastery)s, %(attempts)s, %(correct)s,
        %(due_at)s, now())
ON CONFLICT (learner_id, course_id, skill_id) DO UPDATE SET state = EXCLUDED.state, card = EXCLUDED.card,
    mastery = EXCLUDED.mastery, attempts = EXCLUDED.attempts, correct = EXCLUDED.correct,
    due_at = EXCLUDED.due_at, last_seen_at = now()
"""
ERASE = [
    "DELETE FROM answer_events WHERE learner_id = %(learner)s",
    "DELETE FROM lessons WHERE learner_id = %(learner)s",
    "DELETE FROM learner_seen WHERE learner_id = %(learner)s",
    "DELETE FROM learner_skill_state WHERE learner_id = %(learner)s",
    "DELETE FROM learner_course_state WHERE learner_id = %(learner)s",
]
RESET = [
    "DELETE FROM learner_seen WHERE learner_id = %(learner)s AND course_id = %(course)s",
    "DELETE FROM learner_skill_state WHERE learner_id = %(learner)s AND course_id = %(course)s",
    "DELETE FROM learner_course_state WHERE learner_id = %(learner)s AND course_id = %(course)s",
    "DELETE FROM lessons WHERE learner_id = %(learner)s AND course_id = %(course)s AND status = 'planned'",
]
EXPORT = {
    "lessons": "SELECT * FROM lessons WHERE learner_id = %(learner)s ORDER BY created_at",
    "answers": "SELECT * FROM answer_events WHERE learner_id = %(learner)s ORDER BY id",
    "skills": "SELECT * FROM learner_skill_state WHERE learner_id = %(learner)s ORDER BY course_id, skill_id",
    "courses": "SELECT * FROM learner_course_state WHERE learner_id = %(learner)s ORDER BY course_id",
}
LEARNERS_OF_COURSE = "SELECT DISTINCT learner_id FROM lessons WHERE course_id = %s"


async def course_state(conn: AsyncConnection[Any], learner: str, course: str, *, lock: bool = False) -> dict[str, Any] | None:
    row = await (await conn.execute(GET_COURSE_STATE if lock else GET_COURSE_STATE_RO, (learner, course))).fetchone()
    return row["state"] if row else None


async def save_course_state(conn: AsyncConnection[Any], learner: str, course: str, state: dict[str, Any]) -> None:
    await conn.execute(UPSERT_COURSE_STATE, (learner, course, Jsonb(state)))


async def skill_states(conn: AsyncConnection[Any], learner: str, course: str) -> dict[str, dict[str, Any]]:
    return {r["skill_id"]: r for r in await (await conn.execute(GET_SKILL_STATES, (learner, course))).fetchall()}


async def save_skill_state(conn: AsyncConnection[Any], *, learner: str, course: str, skill: str,
                           state: dict[str, Any], card: dict[str, Any] | None, mastery: float, attempts: int,
                           correct: int, due_at: datetime | None) -> None:
    await conn.execute(UPSERT_SKILL_STATE, {
        "learner": learner, "course": course, "skill": skill, "state": Jsonb(state),
        "card": Jsonb(card) if card is not None else None, "mastery": mastery, "attempts": attempts,
        "correct": correct, "due_at": due_at})


async def erase(conn: AsyncConnection[Any], learner: str) -> None:
    for sql in ERASE:
        await conn.execute(sql, {"learner": learner})


async def reset(conn: AsyncConnection[Any], learner: str, course: str) -> None:
    for sql in RESET:
        await conn.execute(sql, {"learner": learner, "course": course})


async def export(conn: AsyncConnection[Any], learner: str) -> dict[str, list[dict[str, Any]]]:
    return {name: await (await conn.execute(sql, {"learner": learner})).fetchall() for name, sql in EXPORT.items()}
