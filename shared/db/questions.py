"""The question bank: what learners may be served (status 'active')."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

# Idempotent: a staged item enters the bank at most once (staging_id is UNIQUE), and the staging row
# flips to 'ingested' in the same transaction; a crash midway rolls both back, a re-run does the rest.
INGEST_ACCEPTED = """
WITH moved AS (
    INSERT INTO questions (id, staging_id, course_id, skill_id, level_rank, type, content, content_hash,
                           embedding, item_state)
    SELECT gen_random_uuid(), s.id, s.course_id, s.skill_id, k.level_rank, s.type, s.content, s.content_hash,
           s.embedding, %(item_state)s
    FROM questions_staging s JOIN skills k ON k.course_id = s.course_id AND k.id = s.skill_id
    WHERE s.status = 'accepted'
    ORDER BY s.decided_at
    LIMIT %(limit)s
    ON CONFLICT (staging_id) DO NOTHING
    RETURNING staging_id
)
UPDATE questions_staging SET status = 'ingested' WHERE id IN (SELECT staging_id FROM moved)
RETURNING id
"""
# Items accepted, then (after a crash between the two statements of an older version) already in
# the bank: flip them too, so nothing stays 'accepted' forever.
MARK_ALREADY_INGESTED = """
UPDATE questions_staging s SET status = 'ingested'
WHERE s.status = 'accepted' AND EXISTS (SELECT 1 FROM questions q WHERE q.staging_id = s.id)
"""
MISSING_EMBEDDINGS = """
SELECT id, content FROM questions WHERE embedding IS NULL LIMIT %s
"""
SET_EMBEDDING = "UPDATE questions SET embedding = %s WHERE id = %s"
QUESTION_COLUMNS = """id, staging_id, course_id, skill_id, level_rank, type, content, content_hash, item_state,
    status, replaces, created_at, retired_at, retired_by, retire_reason"""
GET_QUESTION = f"SELECT {QUESTION_COLUMNS} FROM questions WHERE id = %s"
GET_QUESTIONS = "SELECT id, skill_id, type, content, status, item_state FROM questions WHERE id = ANY(%s)"
RETIRE = """
UPDATE questions SET status = 'retired', retired_at = now(), retired_by = %s, retire_reason = %s
WHERE id = %s AND status = 'active' RETURNING id
"""
INSERT_CORRECTION = """
INSERT INTO questions (id, staging_id, course_id, skill_id, level_rank, type, content, content_hash,
                       embedding, item_state, replaces)
SELECT %(new_id)s, NULL, course_id, skill_id, level_rank, type, %(content)s, %(content_hash)s,
       %(embedding)s, item_state, id
FROM questions WHERE id = %(old_id)s
"""
# Cold path: per skill, probe the partial index (course, skill, rand) from a random point and walk
# forward past what the learner has seen; wrap around to the start when the tail runs out. Each probe
# is an index range scan of a few rows: no ORDER BY random(), no scan of the skill's questions.
# JSON as text: the caller decodes the item states it ranks and the content of the few it picks.
# "Not seen" is a primary-key probe per walked row, whatever the plan: OFFSET 0 keeps the planner from
# turning NOT EXISTS into an anti join, which a generic plan (shared.db.pool sets plan_cache_mode)
# sizes for the average learner's ~100 seen rows — for a learner with 10,000 it re-read all of them
# for every row walked (38 ms instead of ~1 ms, docs/api.md).
COLD_CANDIDATES = """
SELECT q.id::text, q.skill_id, q.type, q.content::text, q.item_state::text
FROM unnest(%(skills)s::text[]) AS s(skill_id)
CROSS JOIN LATERAL (SELECT random() AS r) p
CROSS JOIN LATERAL (
    (SELECT q.id, q.skill_id, q.type, q.content, q.item_state, q.rand FROM questions q
     WHERE q.course_id = %(course)s AND q.skill_id = s.skill_id AND q.status = 'active' AND q.rand >= p.r
       AND NOT EXISTS (SELECT 1 FROM learner_seen ls WHERE ls.learner_id = %(learner)s
                       AND ls.course_id = %(course)s AND ls.question_id = q.id OFFSET 0)
     ORDER BY q.rand LIMIT %(per_skill)s)
    UNION ALL
    (SELECT q.id, q.skill_id, q.type, q.content, q.item_state, q.rand FROM questions q
     WHERE q.course_id = %(course)s AND q.skill_id = s.skill_id AND q.status = 'active' AND q.rand < p.r
       AND NOT EXISTS (SELECT 1 FROM learner_seen ls WHERE ls.learner_id = %(learner)s
                       AND ls.course_id = %(course)s AND ls.question_id = q.id OFFSET 0)
     ORDER BY q.rand LIMIT %(per_skill)s)
    LIMIT %(per_skill)s
) q
"""
COUNT_ACTIVE = "SELECT skill_id, count(*) AS n FROM questions WHERE course_id = %s AND status = 'active' GROUP BY 1"


async def ingest_accepted(conn: AsyncConnection[Any], *, item_state: dict[str, Any], limit: int = 5000) -> int:
    rows = await (await conn.execute(INGEST_ACCEPTED, {"item_state": Jsonb(item_state), "limit": limit})).fetchall()
    await conn.execute(MARK_ALREADY_INGESTED)
    return len(rows)


async def missing_embeddings(conn: AsyncConnection[Any], limit: int = 500) -> list[dict[str, Any]]:
    return await (await conn.execute(MISSING_EMBEDDINGS, (limit,))).fetchall()


async def set_embedding(conn: AsyncConnection[Any], question_id: UUID, vec: Any) -> None:
    await conn.execute(SET_EMBEDDING, (vec, question_id))


async def get_question(conn: AsyncConnection[Any], question_id: UUID) -> dict[str, Any] | None:
    return await (await conn.execute(GET_QUESTION, (question_id,))).fetchone()


async def get_questions(conn: AsyncConnection[Any], ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
    return {r["id"]: r for r in await (await conn.execute(GET_QUESTIONS, (ids,))).fetchall()}


async def retire(conn: AsyncConnection[Any], question_id: UUID, *, actor: str, reason: str | None) -> bool:
    return (await (await conn.execute(RETIRE, (actor, reason, question_id))).fetchone()) is not None


async def insert_correction(conn: AsyncConnection[Any], *, old_id: UUID, new_id: UUID, content: dict[str, Any],
                            content_hash: str, embedding: Any) -> None:
    await conn.execute(INSERT_CORRECTION, {"old_id": old_id, "new_id": new_id, "content": Jsonb(content),
                                           "content_hash": content_hash, "embedding": embedding})


async def cold_candidates(conn: AsyncConnection[Any], *, learner: str, course: str, skills: list[str],
                          per_skill: int) -> list[tuple[str, str, str, str, str | None]]:
    """(id, skill, type, content JSON text, item state JSON text | None) of unseen active questions,
    up to `per_skill` of each skill from a random point of its `rand` order."""
    params = {"learner": learner, "course": course, "skills": skills, "per_skill": per_skill}
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(COLD_CANDIDATES, params)
    return await cur.fetchall()


async def count_active_by_skill(conn: AsyncConnection[Any], course: str) -> dict[str, int]:
    return {r["skill_id"]: int(r["n"]) for r in await (await conn.execute(COUNT_ACTIVE, (course,))).fetchall()}


# The curator's in-memory bank index (curator/bank_index.py) loads a course's active questions whole.
ACTIVE_BANK = """
SELECT id::text, skill_id, level_rank, type, content, item_state FROM questions
WHERE course_id = %s AND status = 'active'
"""


async def active_bank(conn: AsyncConnection[Any], course: str) -> list[tuple[Any, ...]]:
    """(id text, skill, level rank, type, content, item state) of every active question of the course."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(ACTIVE_BANK, (course,))
    return await cur.fetchall()


# The skills' population states (curator/populations.py): every active question's item state summed
# per skill, in one pass. Scalars come back with index 0, list fields once per element; item states
# stored before a list field existed simply contribute nothing to it.
POPULATIONS = """
SELECT q.skill_id, e.key, e.i, sum(e.v) AS v
FROM questions q
CROSS JOIN LATERAL (
    SELECT 'n' AS key, 0::bigint AS i, (q.item_state->>'n')::float8 AS v
    UNION ALL SELECT 'nc', 0, (q.item_state->>'nc')::float8
    UNION ALL SELECT 'bn', 0, (q.item_state->>'n')::float8 * (q.item_state->>'b')::float8
    UNION ALL SELECT k.key, a.i - 1, a.v::float8
    FROM unnest(%(keys)s::text[]) AS k(key)
    CROSS JOIN LATERAL jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(q.item_state->k.key) = 'array' THEN q.item_state->k.key END
    ) WITH ORDINALITY AS a(v, i)
) e
WHERE q.course_id = %(course)s AND q.status = 'active' AND e.v IS NOT NULL
GROUP BY 1, 2, 3
"""


async def population_sums(conn: AsyncConnection[Any], course: str,
                          list_keys: list[str]) -> list[tuple[str, str, int, float]]:
    """(skill, key, index, sum over the skill's active questions) of the item-state fields 'n', 'nc',
    'bn' (= n * b) and of every element of the list fields `list_keys`."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(POPULATIONS, {"course": course, "keys": list_keys})
    return await cur.fetchall()
