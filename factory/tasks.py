"""The factory worker's arq tasks: one generation batch per job; the ingestion (cron + on demand).
On start the worker re-enqueues every unfinished batch: a job resumes where it left off after a
worker died (batch job ids are stable, so a batch still queued is not queued twice)."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from factory.batches import FactoryDeps
from factory.batches import run_batch as _run_batch
from factory.risk import ReviewPolicy
from factory.router import Router
from review_portal.ingestion import ingest as _ingest
from shared import queues
from shared.db import jobs
from shared.redis_client import async_client, sync_client
from shared.runtime import resolve_endpoints
from shared.services import Services
from shared.settings import get_settings

log = logging.getLogger(__name__)


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    endpoints = resolve_endpoints(settings)[0]
    services = await Services.open(settings, endpoints)
    ctx["breaker_redis"] = sync_client(endpoints.queue_redis_url, settings.redis)
    ctx["budget_redis"] = async_client(endpoints.queue_redis_url, settings.redis)
    router = Router(settings.factory, ctx["breaker_redis"], ctx["budget_redis"])
    ctx["services"] = services
    ctx["deps"] = FactoryDeps(settings=settings, pool=services.pool, router=router,
                              policy=ReviewPolicy.from_settings(settings.factory))
    async with services.pool.connection() as conn:
        pending = await jobs.unfinished_batches(conn)
    for b in pending:
        await queues.enqueue_batches(services.arq, b["job_id"], [b["batch_no"]])
    if pending:
        log.info("resuming unfinished batches", extra={"batches": len(pending)})


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["deps"].router.aclose()
    await ctx["budget_redis"].aclose()
    ctx["breaker_redis"].close()
    await ctx["services"].close()


async def run_batch(ctx: dict[str, Any], job_id: str, batch_no: int) -> dict[str, Any]:
    return await _run_batch(ctx["deps"], UUID(job_id), batch_no)


async def ingest(ctx: dict[str, Any]) -> dict[str, Any]:
    deps: FactoryDeps = ctx["deps"]
    return await _ingest(deps.pool, embedding_model=deps.settings.factory.embedding)
