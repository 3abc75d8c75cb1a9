"""arq WorkerSettings per worker kind: `lessonloop worker factory|curator`."""

from __future__ import annotations

import asyncio
from typing import Any

from arq import cron
from arq.worker import func

from curator import tasks as curator_tasks
from factory import tasks as factory_tasks
from shared import constants, queues
from shared.redis_client import arq_settings
from shared.runtime import resolve_endpoints
from shared.settings import get_settings


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
    return curator_tasks.worker_settings(_redis_settings())


KINDS = {"factory": factory_worker, "curator": curator_worker}
