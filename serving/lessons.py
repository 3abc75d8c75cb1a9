"""Lesson start: the warm path (one Redis pop of a precomputed lesson), else a fast cold SQL lesson
and a refill trigger."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

from curator.learner_model import LearnerModel
from curator.refill import CuratorDeps, plan
from serving.raw_response import RawJSON
from serving.warm_path import WarmPath
from shared import metrics, playlists, queues
from shared.db import lessons
from shared.db.pool import autocommit_connection
from shared.errors import Conflict, NotFound
from shared.services import Services

log = logging.getLogger(__name__)


async def trigger_refill(services: Services, learner_id: str, course_id: str, reason: str) -> None:
    """Queue a refill; the queue Redis being down must not fail the learner's request."""
    try:
        await queues.enqueue_refill(services.arq, learner_id, course_id,
                                    coalesce_ms=services.settings.curator.refill_coalesce_ms)
        metrics.REFILLS.labels(reason).inc()
    except Exception as exc:
        log.warning("refill trigger lost (%s): %s", reason, type(exc).__name__)


class Started(NamedTuple):
    lesson: bytes | dict[str, Any]
    """The popped JSON as-is (warm, nothing dropped), or the lesson to encode."""
    source: str
    """'warm' or 'cold'."""
    refill: str | None
    """Why a refill is due (queued once the lesson is sent), or None."""


@dataclass
class LessonStarter:
    services: Services
    warm: WarmPath
    curator: CuratorDeps

    @classmethod
    def create(cls, services: Services, model: LearnerModel) -> LessonStarter:
        curator = CuratorDeps(settings=services.settings, pool=services.pool, playlist_redis=services.redis,
                              model=model)
        warm = WarmPath(services.endpoints.redis_url, cluster=services.settings.redis.cluster)
        return cls(services=services, warm=warm, curator=curator)

    # --- start -----------------------------------------------------------------------------------
    async def start(self, learner_id: str, course_id: str, *, warm_missed: bool = False) -> Started:
        """The next lesson: warm if the playlist has one (unless the warm lane already found it
        empty: `warm_missed`), else a fresh cold one."""
        started = None if warm_missed else await self.warm_start(learner_id, course_id)
        if started is not None:
            return started
        metrics.WARM_MISSES.inc()
        return Started(await self.cold(learner_id, course_id), "cold", "cold_miss")

    async def warm_start(self, learner_id: str, course_id: str) -> Started | None:
        """The popped lesson — its JSON as-is when nothing in it was retired (no decode) — or None
        when the playlist is empty, Redis is unavailable, or every item was retired."""
        popped = await self.warm.pop(learner_id, course_id)
        if popped is None:
            return None
        body, retired, remaining = popped
        refill = "low_buffer" if remaining < self.services.settings.serving.refill_below else None
        if not retired:
            metrics.WARM_LESSONS.inc()
            return Started(body, "warm", refill)
        metrics.RETIRED_DROPPED.inc(len(retired))
        lesson = playlists.drop_items(body, set(retired))
        if not lesson["items"]:
            return None
        metrics.WARM_LESSONS.inc()
        return Started(lesson, "warm", refill)

    async def refill(self, learner_id: str, course_id: str, reason: str) -> None:
        await trigger_refill(self.services, learner_id, course_id, reason)

    def response(self, learner_id: str, course_id: str, started: Started, timed_from: float) -> RawJSON:
        """The lesson as it goes out (Server-Timing from `timed_from`), the refill queued after it."""
        after = None if started.refill is None else partial(self.refill, learner_id, course_id, started.refill)
        return RawJSON(lesson_json(started.lesson), [(b"x-lesson-source", started.source.encode())],
                       timed_from=timed_from, after=after)

    async def cold(self, learner_id: str, course_id: str) -> dict[str, Any]:
        """Plan one lesson from SQL candidates and store it as served, on one pooled connection (each
        checkout costs a liveness round trip) in autocommit mode."""
        t0 = time.perf_counter()
        if await self.curator.skills(course_id) is None:
            raise NotFound(f"course '{course_id}' not found", field="course")
        # before taking a connection: a first load takes one of its own (20 requests each holding one
        # while waiting for it would drain the pool)
        populations = await self.curator.populations.course(course_id)
        async with autocommit_connection(self.services.pool) as conn:  # reads, then one atomic insert
            planned = await plan(self.curator, conn, populations, learner_id, course_id, lessons_wanted=1,
                                 source="cold")
            if not planned:
                raise Conflict(f"no questions are available for course '{course_id}' yet")
            lesson = planned[0]
            await lessons.insert_served(conn, lesson)
        metrics.COLD_SECONDS.observe(time.perf_counter() - t0)
        metrics.COLD_LESSONS.inc()
        return lesson


def lesson_json(lesson: bytes | dict[str, Any]) -> bytes:
    return lesson if isinstance(lesson, bytes) else json.dumps(lesson, separators=(",", ":")).encode()
