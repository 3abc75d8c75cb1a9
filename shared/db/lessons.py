"""Lessons: planned by the curator (warm) or built on the cold path, served, completed."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

INSERT_LESSON = """
INSERT INTO lessons (id, learner_id, course_id, source, items, status, served_at)
VALUES (%(id)s, %(learner_id)s, %(course_id)s, %(source)s, %(items)s, %(status)s,
        CASE WHEN %(status)s = 'served' THEN now() END)
"""
# A cold lesson and its questions marked seen, in one statement (atomic without a transaction block)
INSERT_SERVED = """
WITH lesson AS (
    INSERT INTO lessons (id, learner_id, course_id, source, items, status, served_at)
    VALUES (%(id)s, %(learner_id)s, %(course_id)s, %(source)s, %(items)s, 'served', now())
)
INSERT INTO learner_seen (learner_id, course_id, question_id)
SELECT %(learner_id)s, %(course_id)s, q FROM unnest(%(questions)s::uuid[]) AS q
ON CONFLICT DO NOTHING
"""
GET_LESSON = """
SELECT id, learner_id, course_id, source, items, status, created_at, served_at, completed_at, summary
FROM lessons WHERE id = %s
"""
# What an answer needs, in one round trip: the lesson's owner and status, the answered item's question
# id (NULL: no such item in the lesson) and that question (NULL columns: it no longer exists).
ANSWER_TARGET = """
SELECT l.learner_id, l.course_id, l.status, it.item->>'question_id' AS question_id,
       q.id AS q_id, q.skill_id, q.level_rank, q.type, q.content, q.item_state
FROM lessons l
LEFT JOIN LATERAL (SELECT i AS item FROM jsonb_array_elements(l.items) AS i
                   WHERE i->>'item_id' = %(item)s LIMIT 1) it ON true
LEFT JOIN questions q ON q.id = (it.item->>'question_id')::uuid
WHERE l.id = %(lesson)s
"""
# After an answer is recorded, the lesson side in one statement (atomic without a transaction block): the
# question's new item state, written only if the question still holds the state the answer was computed
# from (%(before)s: a concurrent answer to the question may have moved it since; a row updated by a
# transaction this one waited for is re-checked at its latest version), the question seen, the lesson
# served. %(after)s NULL (a duplicate answer) leaves the state as it is. Returns whether the state moved.
ANSWERED = """
WITH item AS (
    UPDATE questions SET item_state = %(after)s::jsonb
    WHERE id = %(question)s AND %(after)s::jsonb IS NOT NULL AND item_state = %(before)s::jsonb
    RETURNING 1
), seen AS (
    INSERT INTO learner_seen (learner_id, course_id, question_id) VALUES (%(learner)s, %(course)s, %(question)s)
    ON CONFLICT DO NOTHING
), lesson AS (
    UPDATE lessons SET status = 'served', served_at = now() WHERE id = %(lesson)s AND status = 'planned'
)
SELECT EXISTS (SELECT 1 FROM item) AS moved
"""
# When ANSWERED found the question's state moved: its latest state, locked until the transaction ends
# (NULL row: the question is gone), and the state with the answer's step applied to it.
LOCK_ITEM_STATE = "SELECT item_state FROM questions WHERE id = %s FOR UPDATE"
SET_ITEM_STATE = "UPDATE questions SET item_state = %s WHERE id = %s"
COMPLETE = """
UPDATE lessons SET status = 'completed', completed_at = now(), summary = %s
WHERE id = %s AND status <> 'completed' RETURNING id
"""
# Planned lessons whose playlist entry expired or was dropped are never served; they are pruned.
PRUNE_PLANNED = """
DELETE FROM lessons WHERE learner_id = %s AND course_id = %s AND status = 'planned' AND id <> ALL(%s)
"""
COUNT_BY_SOURCE = """
SELECT source, status, count(*) AS n FROM lessons GROUP BY source, status
"""
LEARNER_COUNTS = """
SELECT count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'served') AS in_progress
FROM lessons WHERE learner_id = %s AND course_id = %s
"""


async def insert_served(conn: AsyncConnection[Any], lesson: dict[str, Any]) -> None:
    """Store a lesson served now and record its questions as seen (the cold path)."""
    await conn.execute(INSERT_SERVED, {
        "id": lesson["lesson_id"], "learner_id": lesson["learner_id"], "course_id": lesson["course"],
        "source": lesson["source"], "items": Jsonb(lesson["items"]),
        "questions": [it["question_id"] for it in lesson["items"]]})


async def get_lesson(conn: AsyncConnection[Any], lesson_id: UUID) -> dict[str, Any] | None:
    return await (await conn.execute(GET_LESSON, (lesson_id,))).fetchone()


async def answer_target(conn: AsyncConnection[Any], lesson_id: UUID, item_id: str) -> dict[str, Any] | None:
    """The lesson (learner_id, course_id, status), the item's question_id and the question (q_id, skill_id,
    level_rank, type, content, item_state) an answer to `item_id` of `lesson_id` is about; None: no lesson."""
    return await (await conn.execute(ANSWER_TARGET, {"lesson": lesson_id, "item": item_id})).fetchone()


async def answered(conn: AsyncConnection[Any], *, learner: str, course: str, lesson_id: UUID, question_id: str,
                   before: dict[str, Any], after: dict[str, Any] | None) -> bool:
    """The lesson side of a recorded answer (`ANSWERED`): True if the question's item state went from
    `before` (as the answer read it) to `after`; False if it was no longer `before` (moved by a
    concurrent answer, or the question is gone) or `after` is None (a duplicate: left as it is)."""
    row = await (await conn.execute(ANSWERED, {
        "learner": learner, "course": course, "lesson": lesson_id, "question": question_id, "before": Jsonb(before),
        "after": Jsonb(after) if after is not None else None})).fetchone()
    return bool(row and row["moved"])


async def lock_item_state(conn: AsyncConnection[Any], question_id: str) -> dict[str, Any] | None:
    """The question's latest item state, row-locked until the transaction ends (None: no such question)."""
    row = await (await conn.execute(LOCK_ITEM_STATE, (question_id,))).fetchone()
    return row["item_state"] if row else None


async def set_item_state(conn: AsyncConnection[Any], question_id: str, state: dict[str, Any]) -> None:
    await conn.execute(SET_ITEM_STATE, (Jsonb(state), question_id))


async def complete(conn: AsyncConnection[Any], lesson_id: UUID, summary: dict[str, Any]) -> bool:
    return (await (await conn.execute(COMPLETE, (Jsonb(summary), lesson_id))).fetchone()) is not None


async def prune_planned(conn: AsyncConnection[Any], learner: str, course: str, keep: list[UUID]) -> None:
    await conn.execute(PRUNE_PLANNED, (learner, course, keep))


async def counts_by_source(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
    return await (await conn.execute(COUNT_BY_SOURCE)).fetchall()


async def learner_counts(conn: AsyncConnection[Any], learner: str, course: str) -> dict[str, Any]:
    row = await (await conn.execute(LEARNER_COUNTS, (learner, course))).fetchone()
    return dict(row) if row else {"completed": 0, "in_progress": 0}


# The curator's batch refill: many planned lessons in one COPY, and the planned lessons its new
# playlists replaced (never popped, so never served) deleted in one statement.
COPY_PLANNED = "COPY lessons (id, learner_id, course_id, source, items, status) FROM STDIN"
DELETE_PLANNED = "DELETE FROM lessons WHERE id = ANY(%s::text::uuid[]) AND status = 'planned'"


async def copy_planned(conn: AsyncConnection[Any], rows: list[tuple[str, str, str, str, str]]) -> None:
    """Rows of (lesson id, learner, course, source, items JSON text), stored as 'planned', sent as one
    COPY text-format buffer (JSON text has no raw tab or newline: only backslashes need escaping).
    Learner and course ids are escaped once per distinct id (a learner has several rows)."""
    names = {r[1] for r in rows} | {r[2] for r in rows}
    esc = {v: copy_text(v) for v in names}
    buf = "".join([f"{lid}\t{esc[learner]}\t{esc[course]}\t{source}\t{items.replace(_BS, _BS2)}\tplanned\n"
                   for lid, learner, course, source, items in rows])
    async with conn.cursor() as cur, cur.copy(COPY_PLANNED) as copy:
        await copy.write(buf.encode())


_BS, _BS2 = "\\", "\\\\"


def copy_text(value: str) -> str:
    """A value as a field of COPY's text format."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


async def delete_planned(conn: AsyncConnection[Any], lesson_ids: list[str]) -> None:
    """Lesson ids are UUID text (no quotes, commas or braces), so they go as one array literal: psycopg
    dumping a list of thousands of strings costs more than the DELETE."""
    await conn.execute(DELETE_PLANNED, ("{" + ",".join(lesson_ids) + "}",))
