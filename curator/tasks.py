"""The curator worker's arq tasks (queue `refill_check`, consumed only by curator workers, so refills
never compete with user-facing work for a worker):

* ``refill(learner, course)`` — one trigger (lesson complete, cold-path miss, buffer low). Triggers
  are coalesced before they get here (stable job id + defer, `shared.queues.enqueue_refill`), and
  the ones arriving together are planned as one batch (`Batcher`).
* ``refill_batch([[learner, course], ...])`` — many learners per job (bulk refreshes).

Malformed or unknown-course triggers are dropped with a logged reason and a metric — never a crash
loop.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
from typing import Any

from arq.worker import func

from curator.learner_model import LearnerModel
from curator.refill import CuratorDeps, refill_many
from shared import constants, metrics, queues
from shared.ids import COURSE_ID
from shared.runtime import resolve_endpoints
from shared.services import Services
from shared.settings import get_settings

log = logging.getLogger(__name__)
_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
BATCH_TASK = "refill_batch"
MAX_JOBS = 256
"""Jobs one curator worker runs at once: single triggers wait together in the Batcher."""
GC_YOUNG_THRESHOLD = 20_000
"""Allocations between the collector's young passes (CPython's default: 700). A batch keeps tens of
thousands of small containers (model states, picks) alive until it ends: at 700 the collector ran
dozens of passes per batch that found no garbage and pushed all of it into full passes (~8% of the
curator's CPU); at 20,000 it runs a few."""


def tune_gc() -> None:
    """The curator process's collector settings (the worker's; `loadtests.curator_bench` measures with
    them too). The bank index moves itself out of the collector's reach on each load (bank_index.py)."""
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


class Batcher:
    """Collects single refills for `window_s` (or up to `max_batch`) and plans them in one call."""

    def __init__(self, deps: CuratorDeps, *, max_batch: int, window_s: float) -> None:
        self.deps = deps
        self.max_batch = max_batch
        self.window_s = window_s
        self._pending: list[tuple[tuple[str, str], asyncio.Future[int]]] = []
        self._timer: asyncio.TimerHandle | None = None

    async def submit(self, learner_id: str, course_id: str) -> int:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append(((learner_id, course_id), fut))
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.window_s, self._flush)
        return await fut

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.ensure_future(self._run(batch))
            task.add_done_callback(lambda t: None)

    async def _run(self, batch: list[tuple[tuple[str, str], asyncio.Future[int]]]) -> None:
        try:
            written = await refill_many(self.deps, [pair for pair, _ in batch])
        except Exception as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for pair, fut in batch:
            if not fut.done():
                fut.set_result(written.get(pair, 0))


async def startup(ctx: dict[str, Any]) -> None:
    tune_gc()
    settings = get_settings()
    services = await Services.open(settings, resolve_endpoints(settings)[0],
                                   pool_timeout=settings.database.worker_connect_timeout)
    ctx["services"] = services
    deps = CuratorDeps(settings=settings, pool=services.pool, playlist_redis=services.redis,
                       model=LearnerModel.load(settings.curator.model_params))
    ctx["deps"] = deps
    ctx["batcher"] = Batcher(deps, max_batch=settings.curator.batch_max,
                             window_s=settings.curator.batch_window_ms / 1000)


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["deps"].progress.close()
    await ctx["services"].close()


def _drop(reason: str, learner_id: Any, course_id: Any) -> None:
    metrics.DROPPED_TRIGGERS.labels(reason).inc()
    log.warning("refill trigger dropped: %s", reason.replace("_", " "),
                extra={"reason": reason, "learner": repr(learner_id)[:64], "course": repr(course_id)[:64]})


async def _valid(deps: CuratorDeps, learner_id: Any, course_id: Any) -> bool:
    if not isinstance(learner_id, str) or not _ID.fullmatch(learner_id) or not isinstance(course_id, str) \
            or not COURSE_ID.fullmatch(course_id):
        _drop("malformed", learner_id, course_id)
        return False
    if not await deps.skills(course_id):
        _drop("unknown_course", learner_id, course_id)
        return False
    return True


async def refill(ctx: dict[str, Any], learner_id: Any = None, course_id: Any = None, *extra: Any) -> int:
    deps: CuratorDeps = ctx["deps"]
    if extra:
        _drop("malformed", learner_id, course_id)
        return 0
    if not await _valid(deps, learner_id, course_id):
        return 0
    return await ctx["batcher"].submit(learner_id, course_id)  # type: ignore[no-any-return]


async def refill_batch(ctx: dict[str, Any], pairs: Any = None) -> int:
    """Plan many learners in one job; returns the number of lessons written."""
    deps: CuratorDeps = ctx["deps"]
    if not isinstance(pairs, list):
        _drop("malformed", pairs, None)
        return 0
    good: list[tuple[str, str]] = []
    for p in pairs:
        if not isinstance(p, list | tuple) or len(p) != 2:
            _drop("malformed", p, None)
        elif await _valid(deps, p[0], p[1]):
            good.append((p[0], p[1]))
    total = 0
    size = deps.settings.curator.batch_max
    for i in range(0, len(good), size):
        total += sum((await refill_many(deps, good[i:i + size])).values())
    return total


def functions() -> list[Any]:
    """The curator worker's arq functions (for `lessonloop.workers.curator_worker`)."""
    return [func(refill, name=queues.REFILL_TASK, keep_result=0, timeout=30, max_tries=3),
            func(refill_batch, name=BATCH_TASK, keep_result=0, timeout=120, max_tries=3)]


def worker_settings(redis_settings: Any) -> dict[str, Any]:
    """A complete curator WorkerSettings (the shape `lessonloop.workers` returns)."""
    return {"functions": functions(), "queue_name": constants.REFILL_QUEUE, "on_startup": startup,
            "on_shutdown": shutdown, "max_jobs": MAX_JOBS, "redis_settings": redis_settings,
            "handle_signals": True, "health_check_interval": 10, "poll_delay": 0.05}
