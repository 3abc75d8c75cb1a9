"""Running one batch of a generation job: claim it, call the router (tiers, retries, breakers,
validation), de-duplicate, and stage everything — items, duplicates, invalid output, counts —
in ONE transaction with the batch's completion. A worker killed midway leaves the batch 'running'
with nothing staged; the retry redoes it whole, and (job, batch, seq) keys make a double insert
impossible: zero lost, zero duplicated."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import numpy as np
from psycopg_pool import AsyncConnectionPool

from factory.embeddings import get_embedder, item_text
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
    result = await deps.router.generate_batch(req)
    return await stage_result(deps, job, batch, skill, result)


async def stage_result(deps: FactoryDeps, job: dict[str, Any], batch: dict[str, Any], skill: dict[str, Any],
                       result: BatchResult) -> dict[str, Any]:
    embedder = get_embedder(deps.settings.factory.embedding)
    threshold = deps.settings.factory.near_duplicate_threshold
    course_id, job_id, batch_no = job["course_id"], job["id"], batch["batch_no"]
    items = result.items
    vectors = embedder.embed([item_text(it) for it, _, _ in items]) if items else np.zeros((0, 0))
    hashes = [content_hash(it) for it, _, _ in items]
    rows: list[dict[str, Any]] = []
    counts = {"generated": len(items) + len(result.invalid), "invalid": len(result.invalid), "duplicates": 0,
              "staged": 0}
    async with deps.pool.connection() as conn:
        async with conn.transaction():
            exact = await staging.exact_matches(conn, course_id, hashes) if hashes else {}
            seen_in_batch: dict[str, int] = {}
            kept: list[int] = []
            for i, (item, prov, warnings) in enumerate(items):
                dup = exact.get(hashes[i])
                if dup is None and hashes[i] in seen_in_batch:
                    dup = {"kind": "exact", "match": "batch", "seq": seen_in_batch[hashes[i]], "similarity": 1.0}
                if dup is None:
                    near = await staging.nearest(conn, course_id, skill["id"], vectors[i])
                    within = [float(vectors[i] @ vectors[j]) for j in kept]
                    if within and max(within) >= threshold and (near is None or max(within) > near["similarity"]):
                        near = {"kind": "near", "match": "batch", "seq": kept[int(np.argmax(within))],
                                "similarity": max(within)}
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
                                 prov, risk, list(warnings), dup, auto))
            for k, (raw, reason) in enumerate(result.invalid):
                rows.append(_row(job_id, batch_no, len(items) + k, course_id, skill, raw or {},
                                 content_hash(raw) if raw else f"invalid:{uuid.uuid4()}", None, "invalid",
                                 None, 1.0, [reason], None, False))
            await staging.insert_items(conn, rows)
            for r in rows:
                if r["auto_accepted"]:
                    await staging.record_decision(conn, staging_id=r["id"], question_id=None, action="auto_accept",
                                                  reason=deps.policy.describe(), actor="policy", before=None,
                                                  after=r["content"])
            status = "done" if items or not result.failures else "failed"
            await jobs.finish_batch(conn, job_id=job_id, batch_no=batch_no, status=status, counts=counts,
                                    cost_usd=result.cost_usd, failures=result.failures)
    log.info("batch staged", extra={"job": str(job_id), "batch": batch_no, **counts})
    return counts


def _row(job_id: UUID, batch_no: int, seq: int, course_id: str, skill: dict[str, Any], item: dict[str, Any],
         chash: str, vec: Any, status: str, prov: Any, risk: float, warnings: list[str],
         dup: dict[str, Any] | None, auto: bool) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(), "job_id": job_id, "batch_no": batch_no, "seq": seq, "course_id": course_id,
        "skill_id": skill["id"], "level": skill["level"], "type": str(item.get("type", "unknown"))[:32],
        "content": item, "content_hash": chash, "embedding": vec, "status": status,
        "provenance": prov.__dict__ | {"staged_at": time.time()} if prov else {}, "risk": risk,
        "warnings": warnings, "duplicate_of": dup, "auto_accepted": auto,
    }
