"""Answer events: durable before the API acknowledges them, idempotent by (learner, attempt id)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

INSERT_ANSWER = """
INSERT INTO answer_events (learner_id, attempt_id, lesson_id, item_id, question_id, course_id, skill_id,
                           answer, correct, response_ms, p_correct)
VALUES (%(learner_id)s, %(attempt_id)s, %(lesson_id)s, %(item_id)s, %(question_id)s, %(course_id)s,
        %(skill_id)s, %(answer)s, %(correct)s, %(response_ms)s, %(p_correct)s)
ON CONFLICT DO NOTHING
RETURNING id
"""
BY_ATTEMPT = """
SELECT lesson_id, item_id, answer, correct FROM answer_events WHERE learner_id = %s AND attempt_id = %s
"""
BY_ITEM = "SELECT attempt_id, answer, correct FROM answer_events WHERE lesson_id = %s AND item_id = %s"
FOR_LESSON = """
SELECT item_id, question_id, skill_id, correct, response_ms FROM answer_events WHERE lesson_id = %s ORDER BY id
"""
LEARNER_TOTALS = """
SELECT count(*) AS answers, count(*) FILTER (WHERE correct) AS correct
FROM answer_events WHERE learner_id = %s AND course_id = %s
"""
COUNT_ALL = "SELECT count(*) AS n FROM answer_events"


async def insert_answer(conn: AsyncConnection[Any], event: dict[str, Any]) -> bool:
    """True if recorded now; False if this attempt (or this item) was already recorded."""
    return (await (await conn.execute(INSERT_ANSWER, event)).fetchone()) is not None


async def by_attempt(conn: AsyncConnection[Any], learner: str, attempt_id: str) -> dict[str, Any] | None:
    return await (await conn.execute(BY_ATTEMPT, (learner, attempt_id))).fetchone()


async def by_item(conn: AsyncConnection[Any], lesson_id: UUID, item_id: str) -> dict[str, Any] | None:
    return await (await conn.execute(BY_ITEM, (lesson_id, item_id))).fetchone()


async def for_lesson(conn: AsyncConnection[Any], lesson_id: UUID) -> list[dict[str, Any]]:
    return await (await conn.execute(FOR_LESSON, (lesson_id,))).fetchall()


async def learner_totals(conn: AsyncConnection[Any], learner: str, course: str) -> dict[str, Any]:
    row = await (await conn.execute(LEARNER_TOTALS, (learner, course))).fetchone()
    return dict(row) if row else {"answers": 0, "correct": 0}


async def count_all(conn: AsyncConnection[Any]) -> int:
    row = await (await conn.execute(COUNT_ALL)).fetchone()
    return int(row["n"]) if row else 0
