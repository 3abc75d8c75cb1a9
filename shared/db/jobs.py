"""Generation jobs and their batches."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

INSERT_JOB = """
INSERT INTO generation_jobs (id, course_id, spec, requested, batches_total, created_by)
VALUES (%(id)s, %(course_id)s, %(spec)s, %(requested)s, %(batches_total)s, %(created_by)s)
"""
INSERT_BATCH = """
INSERT INTO generation_batches (job_id, batch_no, skill_id, count) VALUES (%s, %s, %s, %s)
"""
JOB_COLUMNS = """id, course_id, spec, status, requested, generated, invalid, duplicates, staged,
    cost_usd, batches_total, batches_done, created_by, created_at, started_at, finished_at, error"""
GET_JOB = f"SELECT {JOB_COLUMNS} FROM generation_jobs WHERE id = %s"
LIST_JOBS = f"SELECT {JOB_COLUMNS} FROM generation_jobs ORDER BY created_at DESC LIMIT %s"
# Locks the batch row: a second worker given the same batch (arq retry after a lost worker) waits,
# then sees it done and skips it.
CLAIM_BATCH = """
UPDATE generation_batches SET status = 'running', attempts = attempts + 1, updated_at = now()
WHERE job_id = %s AND batch_no = %s AND status IN ('pending', 'running')
RETURNING job_id, batch_no, skill_id, count, attempts
"""
MARK_JOB_RUNNING = """
UPDATE generation_jobs SET status = 'running', started_at = coalesce(started_at, now())
WHERE id = %s AND status = 'queued'
"""
FINISH_BATCH = """
UPDATE generation_batches SET status = %(status)s, generated = %(generated)s, invalid = %(invalid)s,
    duplicates = %(duplicates)s, staged = %(staged)s, cost_usd = %(cost_usd)s, failures = %(failures)s,
    updated_at = now()
WHERE job_id = %(job_id)s AND batch_no = %(batch_no)s AND status = 'running'
"""
ADD_TO_JOB = """
UPDATE generation_jobs SET generated = generated + %(generated)s, invalid = invalid + %(invalid)s,
    duplicates = duplicates + %(duplicates)s, staged = staged + %(staged)s,
    cost_usd = cost_usd + %(cost_usd)s, batches_done = batches_done + 1
WHERE id = %(job_id)s
RETURNING batches_done, batches_total, requested, staged, status
"""
BATCH_OUTCOMES = """
SELECT count(*) FILTER (WHERE status = 'failed') AS failed, count(*) AS total
FROM generation_batches WHERE job_id = %s
"""
FINISH_JOB = """
UPDATE generation_jobs SET status = %s, finished_at = now(), error = %s
WHERE id = %s AND status IN ('queued', 'running')
"""
CANCEL_JOB = """
UPDATE generation_jobs SET status = 'cancelled', finished_at = now()
WHERE id = %s AND status IN ('queued', 'running') RETURNING id
"""
CANCEL_BATCHES = """
UPDATE generation_batches SET status = 'cancelled', updated_at = now()
WHERE job_id = %s AND status IN ('pending', 'running')
"""
UNFINISHED_BATCHES = """
SELECT b.job_id, b.batch_no FROM generation_batches b JOIN generation_jobs j ON j.id = b.job_id
WHERE b.status IN ('pending', 'running') AND j.status IN ('queued', 'running')
ORDER BY j.created_at, b.batch_no
"""
LIST_BATCHES = """
SELECT batch_no, skill_id, count, status, attempts, generated, invalid, duplicates, staged, cost_usd, failures
FROM generation_batches WHERE job_id = %s ORDER BY batch_no
"""


async def create_job(
    conn: AsyncConnection[Any], *, job_id: UUID, course_id: str, spec: dict[str, Any],
    batches: list[tuple[str, int]], created_by: str,
) -> None:
    await conn.execute(INSERT_JOB, {
        "id": job_id, "course_id": course_id, "spec": Jsonb(spec), "requested": spec["count"],
        "batches_total": len(batches), "created_by": created_by,
    })
    async with conn.cursor() as cur:
        await cur.executemany(INSERT_BATCH, [(job_id, i, skill, n) for i, (skill, n) in enumerate(batches)])


async def get_job(conn: AsyncConnection[Any], job_id: UUID) -> dict[str, Any] | None:
    return await (await conn.execute(GET_JOB, (job_id,))).fetchone()


async def list_jobs(conn: AsyncConnection[Any], limit: int = 50) -> list[dict[str, Any]]:
    return await (await conn.execute(LIST_JOBS, (limit,))).fetchall()


async def list_batches(conn: AsyncConnection[Any], job_id: UUID) -> list[dict[str, Any]]:
    return await (await conn.execute(LIST_BATCHES, (job_id,))).fetchall()


async def claim_batch(conn: AsyncConnection[Any], job_id: UUID, batch_no: int) -> dict[str, Any] | None:
    row = await (await conn.execute(CLAIM_BATCH, (job_id, batch_no))).fetchone()
    if row:
        await conn.execute(MARK_JOB_RUNNING, (job_id,))
    return row


async def finish_batch(conn: AsyncConnection[Any], *, job_id: UUID, batch_no: int, status: str,
                       counts: dict[str, int], cost_usd: float, failures: list[dict[str, Any]]) -> None:
    """Record a batch's outcome and add it to the job; closes the job after its last batch."""
    params = {"job_id": job_id, "batch_no": batch_no, "status": status, "cost_usd": cost_usd,
              "failures": Jsonb(failures), **counts}
    cur = await conn.execute(FINISH_BATCH, params)
    if cur.rowcount != 1:
        return  # already finished by another worker
    job = await (await conn.execute(ADD_TO_JOB, params)).fetchone()
    if job and job["batches_done"] >= job["batches_total"] and job["status"] == "running":
        outcome = await (await conn.execute(BATCH_OUTCOMES, (job_id,))).fetchone()
        assert outcome is not None
        if outcome["failed"] == 0:
            final = "succeeded"
        else:
            final = "failed" if outcome["failed"] == outcome["total"] else "partial"
        await conn.execute(FINISH_JOB, (final, None, job_id))


async def cancel_job(conn: AsyncConnection[Any], job_id: UUID) -> bool:
    row = await (await conn.execute(CANCEL_JOB, (job_id,))).fetchone()
    if row:
        await conn.execute(CANCEL_BATCHES, (job_id,))
    return row is not None


async def unfinished_batches(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
    return await (await conn.execute(UNFINISHED_BATCHES)).fetchall()
