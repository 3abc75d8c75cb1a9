"""Retiring or correcting a live question. From the commit on, no learner receives it — including
from playlists computed earlier: the id is first added to the retired set of every playlist bucket
(the pop script checks the bucket's set in the same slot, same round trip), then the bank row is
retired. Order matters: if the commit fails after the Redis write, the question is only filtered
too early, never served too late."""

from __future__ import annotations

import time
import uuid
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis
from psycopg import AsyncConnection

from factory.embeddings import get_embedder, item_text
from factory.validation import content_hash
from review_portal.decisions import apply_edits, check_content
from shared import constants
from shared.db import questions, staging
from shared.errors import Conflict, NotFound

LEVELS = ("A1", "A2", "B1", "B2", "C1", "C2")


async def mark_retired_everywhere(r: aioredis.Redis, question_id: UUID) -> None:
    now = time.time()
    async with r.pipeline(transaction=False) as pipe:
        for bucket in range(constants.PLAYLIST_BUCKETS):
            key = constants.retired_key(bucket)
            pipe.zadd(key, {str(question_id): now})
            pipe.zremrangebyscore(key, 0, now - constants.RETIRED_TTL_S)
        await pipe.execute()


async def retire(conn: AsyncConnection[Any], r: aioredis.Redis, question_id: UUID, *, actor: str,
                 reason: str | None) -> dict[str, Any]:
    q = await questions.get_question(conn, question_id)
    if q is None:
        raise NotFound(f"question '{question_id}' not found", field="question_id")
    if q["status"] != "active":
        raise Conflict(f"question '{question_id}' is already retired", field="question_id")
    await mark_retired_everywhere(r, question_id)
    async with conn.transaction():
        if not await questions.retire(conn, question_id, actor=actor, reason=reason):
            raise Conflict(f"question '{question_id}' was retired meanwhile", field="question_id")
        await staging.record_decision(conn, staging_id=None, question_id=question_id, action="retire",
                                      reason=reason, actor=actor, before=q["content"], after=None)
    return {"question_id": str(question_id), "status": "retired"}


async def correct(conn: AsyncConnection[Any], r: aioredis.Redis, question_id: UUID, *, edits: dict[str, Any],
                  actor: str, reason: str | None, embedding_model: str) -> dict[str, Any]:
    """A corrected question is a new version (new id); the old one is retired."""
    q = await questions.get_question(conn, question_id)
    if q is None:
        raise NotFound(f"question '{question_id}' not found", field="question_id")
    content = apply_edits(q["content"], edits)
    check_content(content, q["skill_id"], LEVELS[q["level_rank"]])
    new_id = uuid.uuid4()
    vec = get_embedder(embedding_model).embed([item_text(content)])[0]
    await mark_retired_everywhere(r, question_id)
    async with conn.transaction():
        if not await questions.retire(conn, question_id, actor=actor, reason=reason or "corrected"):
            raise Conflict(f"question '{question_id}' is already retired", field="question_id")
        await questions.insert_correction(conn, old_id=question_id, new_id=new_id, content=content,
                                          content_hash=content_hash(content), embedding=vec)
        await staging.record_decision(conn, staging_id=None, question_id=question_id, action="correct",
                                      reason=reason, actor=actor, before=q["content"], after=content)
    return {"question_id": str(new_id), "replaces": str(question_id), "status": "active"}
