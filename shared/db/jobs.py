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
# Taken first in the staging transaction: only the run that still finds its batch 'running' may
# stage it. A second run of the same batch (a worker presumed dead that was only slow) waits here,
# then finds it done and stages nothing.
LOCK_RUNNING_BATCH = """
SELECT attempts FROM generation_batches
WHERE job_id = %s AND batch_no = %s AND status = 'running' FOR UPDATE
"""
# The lease of a running batch: its worker touches it while the batch runs; one left untouched for
# longer than the lease has lost its worker.
HEARTBEAT = """
UPDATE generation_batches SET updated_at = now()
WHERE job_id = %s AND batch_no = %s AND status = 'running'
"""
STALE_BATCHES = """
SELECT b.job_id, b.batch_no, b.attempts, b.updated_at FROM generation_batches b
JOIN generation_jobs j ON j.id = b.job_id
WHERE b.status = 'running' AND b.updated_at < now() - make_interval(secs => %s)
  AND j.status IN ('queued', 'running')
ORDER BY j.created_at, b.batch_no
"""
ADD_BATCH_COST = """
UPDATE generation_batches SET cost_usd = cost_usd + %(cost_usd)s, failures = failures || %(failures)s,
    updated_at = now()
WHERE job_id = %(job_id)s AND batch_no = %(batch_no)s
"""
ADD_JOB_COST = "UPDATE generation_jobs SET cost_usd = cost_usd + %(cost_usd)s WHERE id = %(job_id)s"
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
JOB_ACTIVE = "SELECT 1 FROM generation_jobs WHERE id = %s AND status IN ('queued', 'running')"
CANCEL_JOB = """
UPDATE generation_jobs SET status = 'cancelled', finished_at = now()
WHERE id = %s AND status IN ('queued', 'running') RETURNING id
"""
CANCEL_BATCHES = """
UPDATE generation_batches SET status = 'cancelled', updated_at = now()
WHERE job_id = %s AND status IN ('pending', 'running')
"""
UNFINISHED_BATCHES = """
SELECT b.job_id, b.batch_no, b.status FROM generation_batches b JOIN generation_jobs j ON j.id = b.job_id
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


async def lock_running_batch(conn: AsyncConnection[Any], job_id: UUID, batch_no: int) -> bool:
    """Lock the batch row for the caller's transaction; False when it is no longer running."""
    return await (await conn.execute(LOCK_RUNNING_BATCH, (job_id, batch_no))).fetchone() is not None


async def heartbeat(conn: AsyncConnection[Any], job_id: UUID, batch_no: int) -> bool:
    """Renew a running batch's lease; False when the batch is no longer running (cancelled, done)."""
    return (await conn.execute(HEARTBEAT, (job_id, batch_no))).rowcount == 1


async def stale_batches(conn: AsyncConnection[Any], lease_s: float) -> list[dict[str, Any]]:
    """Running batches of active jobs whose lease ran out: their worker died."""
    return await (await conn.execute(STALE_BATCHES, (lease_s,))).fetchall()


async def add_cost(conn: AsyncConnection[Any], *, job_id: UUID, batch_no: int, cost_usd: float,
                   failures: list[dict[str, Any]]) -> None:
    """Charge a batch that was stopped (cancelled) after spending: the money is spent all the same."""
    params = {"job_id": job_id, "batch_no": batch_no, "cost_usd": cost_usd, "failures": Jsonb(failures)}
    await conn.execute(ADD_BATCH_COST, params)
    await conn.execute(ADD_JOB_COST, params)


async def cancel_job(conn: AsyncConnection[Any], job_id: UUID) -> bool:
    """Cancel the job and its unfinished batches; False when it had already finished.

    Batch rows are locked before the job row, the order the staging transaction takes them in, so
    a cancel racing the last batches of a job cannot deadlock with them."""
    if await (await conn.execute(JOB_ACTIVE, (job_id,))).fetchone() is None:
        return False
    await conn.execute(CANCEL_BATCHES, (job_id,))
    return await (await conn.execute(CANCEL_JOB, (job_id,))).fetchone() is not None


async def unfinished_batches(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
    return await (await conn.execute(UNFINISHED_BATCHES)).fetchall()
