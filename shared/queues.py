"""Enqueueing work for the workers (arq on the queue Redis). Function names are the workers' task names."""

from __future__ import annotations

from uuid import UUID

from arq.connections import ArqRedis

from shared import constants

REFILL_TASK = "refill"
BATCH_TASK = "run_batch"
INGEST_TASK = "ingest"


def batch_job_id(job_id: UUID | str, batch_no: int) -> str:
    return f"batch:{job_id}:{batch_no}"


async def enqueue_refill(arq: ArqRedis, learner_id: str, course_id: str, *, coalesce_ms: int) -> bool:
    """Queue a refill; triggers within `coalesce_ms` of a queued one are dropped (same job id)."""
    job = await arq.enqueue_job(REFILL_TASK, learner_id, course_id,
                                _job_id=constants.refill_job_id(learner_id, course_id),
                                _queue_name=constants.REFILL_QUEUE, _defer_by=coalesce_ms / 1000)
    return job is not None


async def enqueue_batches(arq: ArqRedis, job_id: UUID | str, batch_nos: list[int]) -> None:
    for n in batch_nos:
        await arq.enqueue_job(BATCH_TASK, str(job_id), n, _job_id=batch_job_id(job_id, n),
                              _queue_name=constants.GENERATION_QUEUE)
