"""Lesson start: the warm path (one Redis pop of a precomputed lesson), else a fast cold SQL lesson
and a refill trigger."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from curator.learner_model import LearnerModel
from curator.refill import CuratorDeps, plan
from serving.warm_path import WarmPath
from shared import metrics, playlists, queues
from shared.db import courses, lessons
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
    async def start(self, learner_id: str, course_id: str) -> tuple[bytes | dict[str, Any], str]:
        """The next lesson: the popped JSON as-is when warm (no decode), or a fresh cold one."""
        popped = await self.warm.pop(learner_id, course_id)
        if popped is not None:
            body, retired, remaining = popped
            if remaining < self.services.settings.serving.refill_below:
                await trigger_refill(self.services, learner_id, course_id, "low_buffer")
            if not retired:
                metrics.WARM_LESSONS.inc()
                return body, "warm"
            metrics.RETIRED_DROPPED.inc(len(retired))
            lesson = playlists.drop_items(body, set(retired))
            if lesson["items"]:
                metrics.WARM_LESSONS.inc()
                return lesson, "warm"
        metrics.WARM_MISSES.inc()
        return await self.cold(learner_id, course_id), "cold"

    async def cold(self, learner_id: str, course_id: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        async with self.services.pool.connection() as conn:
            if await courses.get_course(conn, course_id) is None:
                raise NotFound(f"course '{course_id}' not found", field="course")
        planned = await plan(self.curator, learner_id, course_id, lessons_wanted=1, source="cold")
        if not planned:
            raise Conflict(f"no questions are available for course '{course_id}' yet")
        lesson = planned[0]
        async with self.services.pool.connection() as conn:
            await lessons.insert_lessons(conn, [lesson], status="served", mark_seen=True)
        metrics.COLD_SECONDS.observe(time.perf_counter() - t0)
        metrics.COLD_LESSONS.inc()
        await trigger_refill(self.services, learner_id, course_id, "cold_miss")
        return lesson

def lesson_json(lesson: bytes | dict[str, Any]) -> bytes:
    return lesson if isinstance(lesson, bytes) else json.dumps(lesson, separators=(",", ":")).encode()
