"""A refill: read the learner's model, choose their next lessons, store them (PostgreSQL first, so a
lesson exists before it can be popped), then replace their Redis playlist."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from curator import planner
from curator.learner_model import LearnerModel
from curator.playlist_writer import replace_playlist
from shared.db import courses, learners, lessons, questions
from shared.settings import Settings

log = logging.getLogger(__name__)
CANDIDATES_PER_SKILL_FACTOR = 3


@dataclass
class CuratorDeps:
    settings: Settings
    pool: AsyncConnectionPool
    playlist_redis: aioredis.Redis
    model: LearnerModel
    _skills: dict[str, tuple[float, list[dict[str, Any]]]] | None = None

    async def skills(self, course_id: str) -> list[dict[str, Any]]:
        """The course's skills, cached for a minute (the curriculum changes rarely)."""
        if self._skills is None:
            self._skills = {}
        hit = self._skills.get(course_id)
        if hit and time.monotonic() - hit[0] < 60:
            return hit[1]
        async with self.pool.connection() as conn:
            rows = await courses.list_skills(conn, course_id)
        self._skills[course_id] = (time.monotonic(), rows)
        return rows


async def plan(deps: CuratorDeps, learner_id: str, course_id: str, *, lessons_wanted: int,
               source: str) -> list[dict[str, Any]]:
    """Compute up to `lessons_wanted` lessons for one learner (reads only)."""
    cfg = deps.settings
    skills = await deps.skills(course_id)
    if not skills:
        return []
    now = time.time()
    async with deps.pool.connection() as conn:
        learner = await learners.course_state(conn, learner_id, course_id) or deps.model.new_learner_state()
        rows = await learners.skill_states(conn, learner_id, course_id)
        views = planner.skill_views(deps.model, skills, learner, rows, now)
        size = cfg.serving.lesson_size
        chosen = planner.choose_skills(views, want=max(3, size))
        candidates = await questions.cold_candidates(
            conn, learner=learner_id, course=course_id, skills=chosen,
            per_skill=size * lessons_wanted * CANDIDATES_PER_SKILL_FACTOR // max(1, len(chosen)) + size)
    return planner.build_lessons(
        model=deps.model, learner_id=learner_id, course_id=course_id, learner=learner, views=views,
        skills=chosen, candidates=candidates, lessons=lessons_wanted, size=size,
        target=(cfg.curator.target_low, cfg.curator.target_high), now=now, source=source)


async def refill(deps: CuratorDeps, learner_id: str, course_id: str) -> int:
    """Recompute and store the learner's playlist; returns the number of lessons written."""
    planned = await plan(deps, learner_id, course_id, lessons_wanted=deps.settings.serving.playlist_depth,
                         source="warm")
    if planned:
        async with deps.pool.connection() as conn:
            await lessons.insert_lessons(conn, planned, status="planned", mark_seen=False)
    await replace_playlist(deps.playlist_redis, learner_id, course_id, planned)
    log.info("refill", extra={"learner": learner_id, "course": course_id, "lessons": len(planned)})
    return len(planned)
