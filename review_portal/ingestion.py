"""Ingestion: ACCEPTED staged items into the question bank, idempotently (staging_id is unique in
the bank and each run is one transaction: a crash midway and a re-run leave exactly one copy).
Items whose embedding is missing get one computed."""

from __future__ import annotations

import logging
from typing import Any

from psycopg_pool import AsyncConnectionPool

from factory.embeddings import get_embedder, item_text
from shared.db import questions

log = logging.getLogger(__name__)


async def ingest(pool: AsyncConnectionPool, *, embedding_model: str = "hashing") -> dict[str, Any]:
    async with pool.connection() as conn:
        async with conn.transaction():
            moved = await questions.ingest_accepted(conn, item_state={})
        embedded = 0
        embedder = get_embedder(embedding_model)
        while rows := await questions.missing_embeddings(conn):
            vectors = embedder.embed([item_text(r["content"]) for r in rows])
            async with conn.transaction():
                for r, v in zip(rows, vectors, strict=True):
                    await questions.set_embedding(conn, r["id"], v)
            embedded += len(rows)
    log.info("ingestion", extra={"ingested": moved, "embedded": embedded})
    return {"ingested": moved, "embedded": embedded}
