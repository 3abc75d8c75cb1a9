"""Answer events: durable before the API acknowledges them, idempotent by (learner, attempt id)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

# Recording an answer (PostgreSQL progress backend) takes two statements in one transaction.
# The reads: this attempt's earlier recording (prior_*: NULL if none), whether the item was answered under
# any attempt, the learner's course state and the skill's record (skill_id NULL: none yet) — both locked,
# so concurrent answers of one learner apply one after the other. Both locks matter: a row locked after a
# wait is re-read at its latest version, while an unlocked row would come from the statement's snapshot,
# taken before the wait (a lost update).
RECORD_READS = """
SELECT a.lesson_id AS prior_lesson_id, a.item_id AS prior_item_id, a.correct AS prior_correct,
       a.answer AS prior_answer,
       EXISTS (SELECT 1 FROM answer_events e WHERE e.lesson_id = %(lesson_id)s AND e.item_id = %(item_id)s)
           AS item_answered,
       c.state AS learner_state,
       s.skill_id, s.state, s.card, s.mastery, s.attempts, s.correct, s.due_at, s.last_seen_at
FROM (SELECT 1) AS one
LEFT JOIN answer_events a ON a.learner_id = %(learner_id)s AND a.attempt_id = %(attempt_id)s
LEFT JOIN LATERAL (SELECT state FROM learner_course_state
                   WHERE learner_id = %(learner_id)s AND course_id = %(course_id)s FOR UPDATE) c ON true
LEFT JOIN LATERAL (SELECT * FROM learner_skill_state
                   WHERE learner_id = %(learner_id)s AND course_id = %(course_id)s AND skill_id = %(skill_id)s
                   FOR UPDATE) s ON true
"""
# The writes: the answer event (nothing if this attempt or item is already recorded: UNIQUE constraints)
# and, only if it went in, the new course state and skill record. Returns the event's id, or no row.
RECORD_WRITES = """
WITH answer AS (
    INSERT INTO answer_events (learner_id, attempt_id, lesson_id, item_id, question_id, course_id, skill_id,
                               answer, correct, response_ms, p_correct)
    VALUES (%(learner_id)s, %(attempt_id)s, %(lesson_id)s, %(item_id)s, %(question_id)s, %(course_id)s,
            %(skill_id)s, %(answer)s, %(correct)s, %(response_ms)s, %(p_correct)s)
    ON CONFLICT DO NOTHING
    RETURNING id
), course_state AS (
    INSERT INTO learner_course_state (learner_id, course_id, state)
    SELECT %(learner_id)s, %(course_id)s, %(learner_state)s::jsonb FROM answer
    ON CONFLICT (learner_id, course_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()
), skill_state AS (
    INSERT INTO learner_skill_state (learner_id, course_id, skill_id, state, card, mastery, attempts, correct,
                                     due_at, last_seen_at)
    SELECT %(learner_id)s, %(course_id)s, %(skill_id)s, %(sk_state)s::jsonb, %(sk_card)s::jsonb,
           %(sk_mastery)s::real, %(sk_attempts)s::int, %(sk_correct)s::int, %(sk_due_at)s::timestamptz, now()
    FROM answer
    ON CONFLICT (learner_id, course_id, skill_id) DO UPDATE SET state = EXCLUDED.state, card = EXCLUDED.card,
        mastery = EXCLUDED.mastery, attempts = EXCLUDED.attempts, correct = EXCLUDED.correct,
        due_at = EXCLUDED.due_at, last_seen_at = now()
)
SELECT id FROM answer
"""
FOR_LESSON = """
SELECT item_id, question_id, skill_id, correct, response_ms FROM answer_events WHERE lesson_id = %s ORDER BY id
"""
LEARNER_TOTALS = """
SELECT count(*) AS answers, count(*) FILTER (WHERE correct) AS correct
FROM answer_events WHERE learner_id = %s AND course_id = %s
"""
COUNT_ALL = "SELECT count(*) AS n FROM answer_events"
# Every answer as a response-log row (curator/response_log.py), in answer order: learner, question,
# epoch seconds, correct 0/1, skill (course/skill when %(course)s is NULL: skill ids are per course), the
# question's level rank (0 if it left the bank).
RESPONSE_LOG = """
SELECT e.learner_id, e.question_id::text, extract(epoch FROM e.created_at)::bigint, e.correct::int,
       CASE WHEN %(course)s::text IS NULL THEN e.course_id || '/' || e.skill_id ELSE e.skill_id END,
       coalesce(q.level_rank, 0)
FROM answer_events e LEFT JOIN questions q ON q.id = e.question_id
WHERE %(course)s::text IS NULL OR e.course_id = %(course)s
ORDER BY e.id
"""


async def record_reads(conn: AsyncConnection[Any], event: dict[str, Any]) -> dict[str, Any]:
    """`RECORD_READS` for an answer event (learner_id, attempt_id, lesson_id, item_id, course_id, skill_id)."""
    row = await (await conn.execute(RECORD_READS, event)).fetchone()
    assert row is not None  # one row always (FROM a constant)
    return row


async def record_writes(conn: AsyncConnection[Any], event: dict[str, Any], *, learner_state: dict[str, Any],
                        skill: dict[str, Any]) -> bool:
    """`RECORD_WRITES`: True if recorded now; False if this attempt (or item) was already recorded.
    `skill` holds the skill record's state, card, mastery, attempts, correct and due_at."""
    params = {**event, "learner_state": Jsonb(learner_state), "sk_state": Jsonb(skill["state"]),
              "sk_card": Jsonb(skill["card"]) if skill["card"] is not None else None,
              **{f"sk_{k}": skill[k] for k in ("mastery", "attempts", "correct", "due_at")}}
    return (await (await conn.execute(RECORD_WRITES, params)).fetchone()) is not None


async def for_lesson(conn: AsyncConnection[Any], lesson_id: UUID) -> list[dict[str, Any]]:
    return await (await conn.execute(FOR_LESSON, (lesson_id,))).fetchall()


async def learner_totals(conn: AsyncConnection[Any], learner: str, course: str) -> dict[str, Any]:
    row = await (await conn.execute(LEARNER_TOTALS, (learner, course))).fetchone()
    return dict(row) if row else {"answers": 0, "correct": 0}


async def count_all(conn: AsyncConnection[Any]) -> int:
    row = await (await conn.execute(COUNT_ALL)).fetchone()
    return int(row["n"]) if row else 0


async def response_log(conn: AsyncConnection[Any], course: str | None) -> AsyncIterator[tuple[Any, ...]]:
    """`RESPONSE_LOG` rows, streamed through a server-side cursor (`conn` must not be in autocommit)."""
    async with conn.cursor(name="response_log", row_factory=tuple_row) as cur:
        await cur.execute(RESPONSE_LOG, {"course": course})
        async for row in cur:
            yield row
