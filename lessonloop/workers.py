"""The worker processes, `lessonloop worker factory|curator`: arq WorkerSettings per worker kind, and
`run()`, which runs one with its Prometheus endpoint and starts it again in-process when a store
drops out from under it.

arq lets a Redis connection error escape its poll loop, and a factory worker's start-up fails while
PostgreSQL is down; either ends `Worker.run()`. `run()` then releases what the failed run held (arq's
`close()` stops at the Redis call that deletes its health-check key, before `on_shutdown`, so the
kind's PostgreSQL pool and Redis clients would stay open: a restart leaked three connections), waits
and starts a new arq `Worker` in the same process: 1 s after a worker that had started, doubling up to
`WorkerSettings.restart_max_pause_s` while it keeps failing to start. Each restart counts in
`lessonloop_worker_restarts_total{kind}`.

Each kind's task module is imported only by its own worker: the factory's (with the LLM SDKs) took
~3 s of a curator worker's start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import redis
from arq import cron
from arq.worker import Worker, create_worker, func
from psycopg_pool import PoolTimeout

from shared import constants, metrics, metrics_endpoint, queues
from shared.redis_client import arq_settings
from shared.runtime import resolve_endpoints
from shared.settings import get_settings

log = logging.getLogger("lessonloop.worker")

STORE_ERRORS = (redis.ConnectionError, redis.TimeoutError, psycopg.OperationalError, PoolTimeout, OSError)
"""What ends a worker's run when a store is away (the worker then starts again in-process)."""
_STARTED, _READY = "lessonloop.started", "lessonloop.ready"
"""ctx keys: on_startup began (so on_shutdown is owed) / completed (the worker was running)."""


def install_event_loop() -> None:
    """Workers run on uvloop where it is installed (uvicorn[standard] brings it; not on Windows): a
    curator batch moves megabytes through its PostgreSQL and Redis sockets, and each wake-up of
    asyncio's pure-Python loop costs CPU — uvloop took ~5% off the curator's CPU per learner
    (docs/curator.md)."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _redis_settings() -> Any:
    settings = get_settings()
    return arq_settings(resolve_endpoints(settings)[0].queue_redis_url, settings.redis)


def factory_worker() -> dict[str, Any]:
    from factory import tasks as factory_tasks

    settings = get_settings()
    hour, minute = (int(x) for x in settings.factory.ingest_at.split(":"))
    return {
        "functions": [func(factory_tasks.run_batch, name=queues.BATCH_TASK, keep_result=3600,
                           timeout=settings.factory.batch_timeout_s, max_tries=factory_tasks.MAX_BATCH_TRIES),
                      func(factory_tasks.ingest, name=queues.INGEST_TASK, keep_result=0)],
        "cron_jobs": [cron(factory_tasks.ingest, name="nightly-ingest", hour={hour}, minute={minute},
                           unique=True, run_at_startup=False)],
        "queue_name": constants.GENERATION_QUEUE,
        "on_startup": factory_tasks.startup,
        "on_shutdown": factory_tasks.shutdown,
        "max_jobs": settings.factory.concurrency,
        "redis_settings": _redis_settings(),
        "handle_signals": True,
        "health_check_interval": 10,
        # A slot freed by a finished batch takes the next one within 50 ms (arq's default, 0.5 s,
        # idles every slot for ~0.25 s a batch: a sixth of the throughput at 1.5 s per call).
        "poll_delay": 0.05,
    }


def curator_worker() -> dict[str, Any]:
    from curator import tasks as curator_tasks

    return curator_tasks.worker_settings(_redis_settings())


KINDS = {"factory": factory_worker, "curator": curator_worker}


def paired(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` whose `on_shutdown` runs once for each `on_startup` that began, whoever calls it:
    arq's `close()` when it gets that far, else `release()`."""
    startup: Callable[[dict[str, Any]], Awaitable[None]] = settings["on_startup"]
    shutdown: Callable[[dict[str, Any]], Awaitable[None]] = settings["on_shutdown"]

    async def on_startup(ctx: dict[str, Any]) -> None:
        ctx[_STARTED] = True  # a start-up that fails halfway has opened things too
        await startup(ctx)
        ctx[_READY] = True

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        if ctx.pop(_STARTED, False):
            await shutdown(ctx)

    return {**settings, "on_startup": on_startup, "on_shutdown": on_shutdown}


async def release(worker: Worker) -> None:
    """What a run that ended with a store away left open: the kind's clients and pools (its
    `on_shutdown`, if arq's `close()` did not reach it) and arq's own Redis pool."""
    with contextlib.suppress(Exception):
        await worker.on_shutdown(worker.ctx)  # type: ignore[misc]
    if worker.pool is not None:
        with contextlib.suppress(Exception):
            await worker.pool.close(close_connection_pool=True)


def run(kind: str) -> int:
    """Run a worker of `kind` until a signal stops it (returns 0), starting it again in-process
    whenever a store drops out from under it."""
    settings = get_settings()
    endpoint = metrics_endpoint.serve(
        {"factory": settings.worker.factory_metrics_port, "curator": settings.worker.curator_metrics_port}[kind],
        settings.worker)
    if endpoint is not None:
        log.info("worker %s metrics at http://%s:%d/metrics", kind, settings.worker.metrics_host,
                 endpoint.server_port, extra={"kind": kind, "port": endpoint.server_port})
    restarts = metrics.WORKER_RESTARTS.labels(kind)
    pause = 0.0
    while True:
        worker = create_worker(paired(KINDS[kind]()))  # type: ignore[arg-type]
        try:
            worker.run()
            return 0  # a signal asked it to stop
        except STORE_ERRORS as exc:
            worker.loop.run_until_complete(release(worker))
            restarts.inc()
            pause = 1.0 if worker.ctx.get(_READY) or not pause else min(pause * 2, settings.worker.restart_max_pause_s)
            log.warning("worker %s lost a store (%s: %s); starting again in %.0fs", kind, type(exc).__name__,
                        str(exc)[:200], pause, extra={"kind": kind})
            time.sleep(pause)
