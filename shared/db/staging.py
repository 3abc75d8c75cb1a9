"""questions_staging: what the factory produced, waiting for (or past) a human decision."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

STAGING_COLUMNS = """id, job_id, batch_no, seq, course_id, skill_id, level, type, content, content_hash,
    status, provenance, risk, warnings, duplicate_of, auto_accepted, decided_by, decided_at,
    decision_reason, version, created_at"""

INSERT_STAGED = """
INSERT INTO questions_staging (id, job_id, batch_no, seq, course_id, skill_id, level, type, content,
    content_hash, embedding, status, provenance, risk, warnings, duplicate_of, auto_accepted)
VALUES (%(id)s, %(job_id)s, %(batch_no)s, %(seq)s, %(course_id)s, %(skill_id)s, %(level)s, %(type)s,
    %(content)s, %(content_hash)s, %(embedding)b, %(status)s, %(provenance)s, %(risk)s, %(warnings)s,
    %(duplicate_of)s, %(auto_accepted)s)
ON CONFLICT (job_id, batch_no, seq) DO NOTHING
"""
GET_ITEM = f"SELECT {STAGING_COLUMNS} FROM questions_staging WHERE id = %s"
# Filters are optional: a NULL parameter matches everything.
LIST_ITEMS = f"""
SELECT {STAGING_COLUMNS} FROM questions_staging
WHERE (%(job)s::uuid IS NULL OR job_id = %(job)s::uuid)
  AND (%(status)s::text IS NULL OR status = %(status)s::text)
  AND (%(skill)s::text IS NULL OR skill_id = %(skill)s::text)
  AND (%(course)s::text IS NULL OR course_id = %(course)s::text)
  AND (%(type)s::text IS NULL OR type = %(type)s::text)
  AND (%(level)s::text IS NULL OR level = %(level)s::text)
  AND (%(max_risk)s::real IS NULL OR risk <= %(max_risk)s::real)
  AND (%(q)s::text IS NULL OR content::text ILIKE '%%' || %(q)s::text || '%%')
ORDER BY risk DESC, created_at, seq
LIMIT %(limit)s OFFSET %(offset)s
"""
# Optimistic concurrency: a decision names the version it saw; a newer one means someone else decided.
DECIDE = f"""
UPDATE questions_staging
SET status = %(status)s, content = %(content)s, content_hash = %(content_hash)s,
    embedding = coalesce(%(embedding)s, embedding), decided_by = %(actor)s, decided_at = now(),
    decision_reason = %(reason)s, version = version + 1
WHERE id = %(id)s AND version = %(version)s AND status IN ('pending', 'revision', 'duplicate')
RETURNING {STAGING_COLUMNS}
"""
INSERT_DECISION = """
INSERT INTO review_decisions (staging_id, question_id, action, reason, actor, before, after)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""
LIST_DECISIONS = """
SELECT id, staging_id, question_id, action, reason, actor, before, after, created_at
FROM review_decisions WHERE staging_id = %s OR question_id = %s ORDER BY created_at, id
"""
# A bank match is named before a staging one (an ingested item is in both).
EXACT_MATCHES = """
SELECT 'bank' AS kind, id, content_hash FROM questions
WHERE course_id = %(course)s AND content_hash = ANY(%(hashes)s) AND status = 'active'
UNION ALL
SELECT 'staging' AS kind, id, content_hash FROM questions_staging
WHERE course_id = %(course)s AND content_hash = ANY(%(hashes)s)
  AND status IN ('pending', 'accepted', 'ingested', 'revision')
ORDER BY 1
"""
# The nearest live item (bank or staging, same course and skill) of every vector of a batch, in one
# round trip. Exact (a scan of the skill's rows, each vector compared once): pgvector's HNSW index
# filters *after* its candidate search, so with a WHERE on the skill it can miss the true neighbour.
# A skill holds hundreds to a few thousand items, which an exact scan compares in milliseconds.
NEAREST_MANY = """
WITH v AS MATERIALIZED (
    SELECT vec, i::int AS i FROM unnest(%(vecs)b::vector[]) WITH ORDINALITY AS u(vec, i)
), candidates AS MATERIALIZED (
    SELECT 'bank' AS kind, id, embedding FROM questions
    WHERE course_id = %(course)s AND skill_id = %(skill)s AND status = 'active' AND embedding IS NOT NULL
    UNION ALL
    SELECT 'staging' AS kind, id, embedding FROM questions_staging
    WHERE course_id = %(course)s AND skill_id = %(skill)s AND embedding IS NOT NULL
      AND status IN ('pending', 'accepted', 'ingested', 'revision')
)
SELECT DISTINCT ON (v.i) v.i, c.kind, c.id, 1 - (c.embedding <=> v.vec) AS similarity
FROM v CROSS JOIN candidates c
ORDER BY v.i, c.embedding <=> v.vec, c.kind
"""
# Staging of one skill is serialised (per transaction) so that two batches of the same skill staged
# at the same moment see each other's items: de-duplication is exact across concurrent workers.
LOCK_SKILL = "SELECT pg_advisory_xact_lock(hashtextextended('staging:' || %s || ':' || %s, 0))"
COST_BY_MODEL = """
SELECT c->>'provider' AS provider, c->>'model' AS model, c->>'tier' AS tier, count(*) AS calls,
    coalesce(sum((c->>'tokens_in')::bigint), 0)::bigint AS tokens_in,
    coalesce(sum((c->>'tokens_out')::bigint), 0)::bigint AS tokens_out,
    coalesce(sum((c->>'cost_usd')::numeric), 0) AS cost_usd
FROM questions_staging s, jsonb_array_elements(s.provenance->'calls') c
WHERE s.job_id = %s AND s.provenance ? 'calls'
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
COUNTS_BY_STATUS = "SELECT status, count(*) AS n FROM questions_staging GROUP BY status"


async def insert_items(conn: AsyncConnection[Any], rows: list[dict[str, Any]]) -> int:
    """Insert staged rows; a row already there (same job, batch, seq) is left as it is."""
    if not rows:
        return 0
    async with conn.cursor() as cur:
        await cur.executemany(INSERT_STAGED, [
            {**r, "content": Jsonb(r["content"]), "provenance": Jsonb(r["provenance"]),
             "warnings": Jsonb(r["warnings"]),
             "duplicate_of": Jsonb(r["duplicate_of"]) if r["duplicate_of"] is not None else None}
            for r in rows
        ])
    return len(rows)


async def get_item(conn: AsyncConnection[Any], item_id: UUID) -> dict[str, Any] | None:
    return await (await conn.execute(GET_ITEM, (item_id,))).fetchone()


async def list_items(conn: AsyncConnection[Any], *, job: UUID | None = None, status: str | None = None,
                     skill: str | None = None, course: str | None = None, type: str | None = None,
                     level: str | None = None, max_risk: float | None = None, q: str | None = None,
                     limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    params = {"job": job, "status": status, "skill": skill, "course": course, "type": type, "level": level,
              "max_risk": max_risk, "q": q, "limit": limit, "offset": offset}
    return await (await conn.execute(LIST_ITEMS, params)).fetchall()


async def decide(conn: AsyncConnection[Any], *, item_id: UUID, version: int, status: str, content: dict[str, Any],
                 content_hash: str, embedding: Any, actor: str, reason: str | None) -> dict[str, Any] | None:
    params = {"id": item_id, "version": version, "status": status, "content": Jsonb(content),
              "content_hash": content_hash, "embedding": embedding, "actor": actor, "reason": reason}
    return await (await conn.execute(DECIDE, params)).fetchone()


async def record_decision(conn: AsyncConnection[Any], *, staging_id: UUID | None, question_id: UUID | None,
                          action: str, reason: str | None, actor: str, before: Any, after: Any) -> None:
    await conn.execute(INSERT_DECISION, (staging_id, question_id, action, reason, actor,
                                         Jsonb(before) if before is not None else None,
                                         Jsonb(after) if after is not None else None))


async def record_decisions(conn: AsyncConnection[Any], decisions: list[dict[str, Any]]) -> None:
    """Several `record_decision`s in one pipelined round trip."""
    if not decisions:
        return
    async with conn.cursor() as cur:
        await cur.executemany(INSERT_DECISION, [
            (d["staging_id"], d.get("question_id"), d["action"], d.get("reason"), d["actor"],
             Jsonb(d["before"]) if d.get("before") is not None else None,
             Jsonb(d["after"]) if d.get("after") is not None else None)
            for d in decisions
        ])


async def list_decisions(conn: AsyncConnection[Any], item_id: UUID) -> list[dict[str, Any]]:
    return await (await conn.execute(LIST_DECISIONS, (item_id, item_id))).fetchall()


async def exact_matches(conn: AsyncConnection[Any], course: str, hashes: list[str]) -> dict[str, dict[str, Any]]:
    rows = await (await conn.execute(EXACT_MATCHES, {"course": course, "hashes": hashes})).fetchall()
    found: dict[str, dict[str, Any]] = {}
    for r in rows:
        found.setdefault(r["content_hash"], {"kind": "exact", "match": r["kind"], "id": str(r["id"]),
                                              "similarity": 1.0})
    return found


async def nearest_many(conn: AsyncConnection[Any], course: str, skill: str,
                       vectors: list[Any]) -> list[dict[str, Any] | None]:
    """For each vector, the most similar live item (bank or staging) of the same skill, or None."""
    found: list[dict[str, Any] | None] = [None] * len(vectors)
    if not vectors:
        return found
    params = {"course": course, "skill": skill, "vecs": list(vectors)}
    rows = await (await conn.execute(NEAREST_MANY, params)).fetchall()
    for r in rows:
        found[r["i"] - 1] = {"kind": "near", "match": r["kind"], "id": str(r["id"]),
                             "similarity": float(r["similarity"])}
    return found


async def nearest(conn: AsyncConnection[Any], course: str, skill: str, vec: Any) -> dict[str, Any] | None:
    """The most similar live item (bank or staging) of the same skill, with its cosine similarity."""
    return (await nearest_many(conn, course, skill, [vec]))[0]


async def lock_skill(conn: AsyncConnection[Any], course: str, skill: str) -> None:
    """Serialise staging of one skill until the end of the caller's transaction."""
    await conn.execute(LOCK_SKILL, (course, skill))


async def cost_by_model(conn: AsyncConnection[Any], job_id: UUID) -> list[dict[str, Any]]:
    """Calls, tokens and cost of a job by provider, model and tier (from each batch's call records)."""
    return await (await conn.execute(COST_BY_MODEL, (job_id,))).fetchall()


async def counts_by_status(conn: AsyncConnection[Any]) -> dict[str, int]:
    return {r["status"]: int(r["n"]) for r in await (await conn.execute(COUNTS_BY_STATUS)).fetchall()}
