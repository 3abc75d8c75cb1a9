"""The factory worker's arq tasks: one generation batch per job; the ingestion (cron + on demand).

A job resumes where it left off when a worker dies. Every batch's state is in PostgreSQL: 'done'
batches stay done, a batch left 'running' by a dead worker has nothing staged (see
:mod:`factory.batches`) and stops renewing its lease. Each worker runs a recovery loop (at start,
then every half lease): it re-enqueues 'pending' batches missing from the queue (at start) and hands
every batch whose lease ran out back to arq. arq itself would only re-run a job whose worker vanished
once its in-progress marker expires (the longest task timeout + 10 s, minutes); the loop clears that
marker for the stale batch, so the queued job runs again at once. The batch's arq job id is stable,
so a batch is never queued twice, and a second run that races a slow first one stages nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from uuid import UUID

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, result_key_prefix

from factory.batches import FactoryDeps
from factory.batches import run_batch as _run_batch
from factory.risk import ReviewPolicy
from factory.router import Router
from review_portal.ingestion import ingest as _ingest
from shared import constants, queues
from shared.db import jobs
from shared.redis_client import async_client, sync_client
from shared.runtime import resolve_endpoints
from shared.services import Services
from shared.settings import get_settings

log = logging.getLogger(__name__)

MAX_BATCH_TRIES = 5
"""Runs of one batch (arq max_tries, and the recovery's limit): a batch that keeps killing its
worker is failed, with the reason, instead of being re-run forever."""


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    endpoints = resolve_endpoints(settings)[0]
    services = await Services.open(settings, endpoints, pool_timeout=settings.database.worker_connect_timeout)
    ctx["breaker_redis"] = sync_client(endpoints.queue_redis_url, settings.redis)
    ctx["budget_redis"] = async_client(endpoints.queue_redis_url, settings.redis)
    router = Router(settings.factory, ctx["breaker_redis"], ctx["budget_redis"])
    ctx["services"] = services
    ctx["deps"] = FactoryDeps(settings=settings, pool=services.pool, router=router,
                              policy=ReviewPolicy.from_settings(settings.factory), redis=ctx["budget_redis"])
    async with services.pool.connection() as conn:
        pending = await jobs.unfinished_batches(conn)
    for b in pending:
        if b["status"] == "pending":
            # never claimed: a worker that died right after arq handed it the job leaves an in-progress
            # marker that would hold the batch for minutes; clear it (a double run stages once anyway)
            await requeue(services.arq, b["job_id"], b["batch_no"])
        else:  # claimed: its lease tells whether its worker lives (the recovery loop below)
            await queues.enqueue_batches(services.arq, b["job_id"], [b["batch_no"]])
    if pending:
        log.info("resuming unfinished batches", extra={"batches": len(pending)})
    ctx["recovery"] = asyncio.create_task(_recovery_loop(ctx["deps"], services.arq))


async def shutdown(ctx: dict[str, Any]) -> None:
    task = ctx.get("recovery")
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await ctx["deps"].router.aclose()
    await ctx["budget_redis"].aclose()
    ctx["breaker_redis"].close()
    await ctx["services"].close()


async def recover_stale(deps: FactoryDeps, arq: ArqRedis) -> int:
    """Hand every batch whose lease ran out (its worker died) back to arq; returns how many."""
    async with deps.pool.connection() as conn:
        stale = await jobs.stale_batches(conn, deps.settings.factory.batch_lease_s)
    for b in stale:
        if b["attempts"] >= MAX_BATCH_TRIES:
            async with deps.pool.connection() as conn, conn.transaction():
                await jobs.finish_batch(
                    conn, job_id=b["job_id"], batch_no=b["batch_no"], status="failed",
                    counts={"generated": 0, "invalid": 0, "duplicates": 0, "staged": 0}, cost_usd=0.0,
                    failures=[{"kind": "worker_lost", "message": f"the batch's worker died {b['attempts']} times",
                               "at": b["updated_at"].isoformat()}])
        else:
            await requeue(arq, b["job_id"], b["batch_no"])
    if stale:
        log.warning("re-running batches whose worker died", extra={
            "batches": [f"{b['job_id']}:{b['batch_no']}" for b in stale]})
    return len(stale)


async def requeue(arq: ArqRedis, job_id: UUID | str, batch_no: int) -> None:
    """Make arq run the batch's job again now: clear its in-progress marker (left by a dead worker)
    and its result (a run that ended without finishing the batch), and enqueue it if it is gone."""
    arq_id = queues.batch_job_id(job_id, batch_no)
    await arq.delete(in_progress_key_prefix + arq_id, result_key_prefix + arq_id)
    # arq keeps a job in its queue until it finishes: a job still there needs no enqueue (and
    # enqueue_job would refuse it: the id is taken).
    if await arq.zscore(constants.GENERATION_QUEUE, arq_id) is None:
        await queues.enqueue_batches(arq, job_id, [batch_no])


async def _recovery_loop(deps: FactoryDeps, arq: ArqRedis) -> None:
    every = max(0.2, deps.settings.factory.batch_lease_s / 2)
    while True:
        try:
            await recover_stale(deps, arq)
        except Exception:  # the loop must outlive a database or Redis hiccup
            log.warning("batch recovery failed; retrying", exc_info=True)
        await asyncio.sleep(every)


async def run_batch(ctx: dict[str, Any], job_id: str, batch_no: int) -> dict[str, Any]:
    return await _run_batch(ctx["deps"], UUID(job_id), batch_no)


async def ingest(ctx: dict[str, Any]) -> dict[str, Any]:
    deps: FactoryDeps = ctx["deps"]
    return await _ingest(deps.pool, embedding_model=deps.settings.factory.embedding)
