"""At most one load per key in flight: the curator's per-course caches (the bank index, the skill
populations) load on first use and reload in the background when stale, and concurrent callers share
the one load instead of each starting their own."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class SingleFlight(Generic[T]):
    def __init__(self, load: Callable[[str], Coroutine[object, object, T]], what: str) -> None:
        self._load = load
        self._what = what
        self._tasks: dict[str, asyncio.Task[T]] = {}

    def start(self, key: str) -> asyncio.Task[T]:
        """The load of `key` in flight, or a new one; await it, or leave it to finish in the background
        (a failure nobody awaits is logged)."""
        task = self._tasks.get(key)
        if task is None or task.done():
            task = asyncio.create_task(self._load(key))
            task.add_done_callback(self._log_failure)
            self._tasks[key] = task
        return task

    def _log_failure(self, task: asyncio.Task[T]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s failed: %r", self._what, task.exception())
