"""Running one batch of a generation job: claim it, call the router (tiers, retries, breakers,
validation), de-duplicate, and stage everything — items, duplicates, invalid output, counts —
in ONE transaction with the batch's completion.

Zero lost, zero duplicated, even when a worker dies:

* the batch row is claimed ('running') and, while the router works, its lease (``updated_at``) is
  renewed every ``batch_lease_s / 3`` seconds; a worker that dies stops renewing it, and any
  worker's recovery loop (:mod:`factory.tasks`) hands the batch to arq again;
* a killed worker leaves nothing staged (the staging transaction never committed), so the re-run
  redoes the batch whole;
* the staging transaction first locks the batch row and stages only if it is still 'running': of
  two runs of one batch (a worker presumed dead that was only slow) exactly one stages, and
  ``(job, batch, seq)`` is unique besides.

De-duplication, per item, in order: the same content hash in the bank or staging (exact), the same
hash earlier in the batch, then the nearest neighbour by cosine similarity in the bank, staging or
earlier in the batch (near, at or above ``near_duplicate_threshold``). A duplicate is staged with
status 'duplicate' and ``duplicate_of`` naming the match (kind, where, id or seq, similarity).
Staging of one skill is serialised by a transaction-level advisory lock, so batches of the same
skill staged at the same moment de-duplicate against each other too. The nearest-neighbour checks of
a whole batch are one SQL round trip, and the inserts one pipelined ``executemany``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

import numpy as np
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from factory.embeddings import get_embedder, item_text
from factory.jobs import set_cancel_flag
from factory.risk import ReviewPolicy, item_risk
from factory.router import BatchRequest, BatchResult, Router
from factory.validation import content_hash
from shared.db import courses, jobs, staging
from shared.settings import Settings

log = logging.getLogger(__name__)

@dataclass
class FactoryDeps:
    settings: Settings
    pool: AsyncConnectionPool
    router: Router
    policy: ReviewPolicy
    redis: Redis
    """The queue Redis (cancel flags)."""


async def run_batch(deps: FactoryDeps, job_id: UUID, batch_no: int) -> dict[str, Any]:
    async with deps.pool.connection() as conn:
        job = await jobs.get_job(conn, job_id)
        if job is None or job["status"] not in ("queued", "running"):
            return {"skipped": "job not active"}
        batch = await jobs.claim_batch(conn, job_id, batch_no)
        await conn.commit()
        if batch is None:
            return {"skipped": "batch already finished"}
        course = await courses.get_course(conn, job["course_id"])
        skills = {s["id"]: s for s in await courses.list_skills(conn, job["course_id"])}
    spec = job["spec"]
    skill = skills[batch["skill_id"]]
    deadline = job["created_at"].timestamp() + spec["deadline_s"] if spec.get("deadline_s") else None
    req = BatchRequest(
        job_id=str(job_id), batch_no=batch_no, course=dict(course or {}), skills=[dict(skill)],
        level=spec.get("level") or skill["level"], topic=spec.get("topic"), types=spec["types"],
        count=batch["count"], language=spec["language"], deadline=deadline, budget_usd=spec.get("budget_usd"),
    )
    async with _lease(deps, job_id, batch_no):
        result = await deps.router.generate_batch(req)
    return await stage_result(deps, job, batch, skill, result)


@contextlib.asynccontextmanager
async def _lease(deps: FactoryDeps, job_id: UUID, batch_no: int) -> AsyncIterator[None]:
    """Renew the batch's lease while the body runs; a batch found no longer running (the job was
    cancelled, e.g. from the portal) raises the job's cancel flag so the router stops calling."""
    every = max(0.2, deps.settings.factory.batch_lease_s / 3)

    async def renew() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                async with deps.pool.connection() as conn:
                    running = await jobs.heartbeat(conn, job_id, batch_no)
                if not running:
                    await set_cancel_flag(deps.redis, job_id)
                    return
            except Exception:  # a missed renewal is harmless unless they all fail
                log.warning("batch lease renewal failed", extra={"job": str(job_id), "batch": batch_no},
                            exc_info=True)

    task = asyncio.create_task(renew())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def stage_result(deps: FactoryDeps, job: dict[str, Any], batch: dict[str, Any], skill: dict[str, Any],
                       result: BatchResult) -> dict[str, Any]:
    embedder = get_embedder(deps.settings.factory.embedding)
    threshold = deps.settings.factory.near_duplicate_threshold
    course_id, job_id, batch_no = job["course_id"], job["id"], batch["batch_no"]
    items = result.items
    # CPU work before the transaction: it holds row and skill locks, so it must stay short.
    vectors = embedder.embed([item_text(it) for it, _, _ in items]) if items else np.zeros((0, 0), np.float32)
    hashes = [content_hash(it) for it, _, _ in items]
    calls = [asdict(c) for c in result.calls]
    counts = {"generated": len(items) + len(result.invalid), "invalid": len(result.invalid), "duplicates": 0,
              "staged": 0}
    async with deps.pool.connection() as conn:
        async with conn.transaction():
            if not await jobs.lock_running_batch(conn, job_id, batch_no):
                # Cancelled meanwhile, or staged by another run of the same batch: stage nothing,
                # but money spent on a cancelled batch is still the job's.
                if result.cost_usd and (await jobs.get_job(conn, job_id) or {}).get("status") == "cancelled":
                    await jobs.add_cost(conn, job_id=job_id, batch_no=batch_no, cost_usd=result.cost_usd,
                                        failures=result.failures)
                return {"skipped": "batch no longer running"}
            await staging.lock_skill(conn, course_id, skill["id"])
            exact = await staging.exact_matches(conn, course_id, hashes) if hashes else {}
            need_near = [i for i, h in enumerate(hashes) if h not in exact]
            nearest = await staging.nearest_many(conn, course_id, skill["id"], [vectors[i] for i in need_near])
            near_of = dict(zip(need_near, nearest, strict=True))
            rows = _rows(deps, job_id, batch_no, course_id, skill, result, vectors, hashes, exact, near_of,
                         threshold, counts)
            if rows:
                rows[0]["provenance"] = rows[0]["provenance"] | {"calls": calls}  # the batch's calls, once
            await staging.insert_items(conn, rows)
            await staging.record_decisions(conn, [
                {"staging_id": r["id"], "action": "auto_accept", "reason": deps.policy.describe(), "actor": "policy",
                 "after": r["content"]} for r in rows if r["auto_accepted"]])
            status = "done" if items or not result.failures else "failed"
            await jobs.finish_batch(conn, job_id=job_id, batch_no=batch_no, status=status, counts=counts,
                                    cost_usd=result.cost_usd, failures=result.failures)
    log.info("batch staged", extra={"job": str(job_id), "batch": batch_no, **counts})
    return counts


def _rows(deps: FactoryDeps, job_id: UUID, batch_no: int, course_id: str, skill: dict[str, Any],
          result: BatchResult, vectors: np.ndarray, hashes: list[str], exact: dict[str, dict[str, Any]],
          near_of: dict[int, dict[str, Any] | None], threshold: float, counts: dict[str, int]) -> list[dict[str, Any]]:
    """Judge every item against the stores' matches and the batch's earlier items; build the rows."""
    rows: list[dict[str, Any]] = []
    seen_in_batch: dict[str, int] = {}
    kept: list[int] = []
    staged_at = time.time()
    for i, (item, prov, warnings) in enumerate(result.items):
        dup = exact.get(hashes[i])
        if dup is None and hashes[i] in seen_in_batch:
            dup = {"kind": "exact", "match": "batch", "seq": seen_in_batch[hashes[i]], "similarity": 1.0}
        if dup is None:
            near = near_of.get(i)
            if kept:
                within = vectors[kept] @ vectors[i]
                best = int(np.argmax(within))
                if float(within[best]) >= threshold and (near is None or float(within[best]) > near["similarity"]):
                    near = {"kind": "near", "match": "batch", "seq": kept[best], "similarity": float(within[best])}
            if near is not None and near["similarity"] >= threshold:
                dup = near
            similarity = near["similarity"] if near else None
        else:
            similarity = 1.0
        seen_in_batch.setdefault(hashes[i], i)
        risk = item_risk(prov, warnings, similarity)
        auto = dup is None and deps.policy.auto_accept(risk, prov.tier)
        status = "duplicate" if dup else ("accepted" if auto else "pending")
        counts["duplicates" if dup else "staged"] += 1
        if not dup:
            kept.append(i)
        rows.append(_row(job_id, batch_no, i, course_id, skill, item, hashes[i], vectors[i], status,
                         asdict(prov) | {"staged_at": staged_at}, risk, list(warnings), dup, auto))
    for k, (raw, reason) in enumerate(result.invalid):
        rows.append(_row(job_id, batch_no, len(result.items) + k, course_id, skill, raw or {},
                         content_hash(raw) if raw else f"invalid:{uuid.uuid4()}", None, "invalid",
                         {"staged_at": staged_at}, 1.0, [reason], None, False))
    return rows


def _row(job_id: UUID, batch_no: int, seq: int, course_id: str, skill: dict[str, Any], item: dict[str, Any],
         chash: str, vec: Any, status: str, provenance: dict[str, Any], risk: float, warnings: list[str],
         dup: dict[str, Any] | None, auto: bool) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(), "job_id": job_id, "batch_no": batch_no, "seq": seq, "course_id": course_id,
        "skill_id": skill["id"], "level": skill["level"], "type": str(item.get("type", "unknown"))[:32],
        "content": item, "content_hash": chash, "embedding": vec, "status": status,
        "provenance": provenance, "risk": risk, "warnings": warnings, "duplicate_of": dup, "auto_accepted": auto,
    }
