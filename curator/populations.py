"""The skills' population states, cached in process per course: how everyone does on each skill.

A population state is the sum of the skill's active item states (`LearnerModel.population`), so it
needs no table of its own: a course's populations are computed by one SQL query over
`questions.item_state` (`shared.db.questions.population_sums`). That aggregate reads the whole bank
(1.5 s of PostgreSQL per 100,000 questions), so it is not run by every process: the result is
shared through Redis (`constants.populations_key`, with the time it was computed), and a process
loading a course takes the shared copy while it is younger than `refresh_s`. Once it is older, the
one process that wins a lock (`populations_lock_key`) recomputes and shares it; the others keep the
stale copy meanwhile. Without Redis, or with nothing shared yet, a process computes for itself.

Each process reloads in the background once its copy is `refresh_s` old, and keeps it current in
between with the answers it records itself (`apply`: the answered item's old state out, its new
state in — exact, and in any order). The answer path, the profile and the cold path read them from
here; the bank index builds its own from the item states it loads anyway.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from curator.learner_model import POPULATION_LIST_KEYS, LearnerModel
from curator.single_flight import SingleFlight
from shared import constants
from shared.db import questions

log = logging.getLogger(__name__)

Populations = dict[str, dict[str, Any]]
"""Population state by skill id (one course)."""


def from_sums(rows: list[tuple[str, str, int, float]]) -> Populations:
    """Population states from `questions.population_sums` rows (counts back to int)."""
    out: Populations = {}
    for skill, key, i, v in rows:
        pop = out.get(skill)
        if pop is None:
            pop = out[skill] = LearnerModel.new_population_state()
        if key == "bn":
            pop["bn"] = float(v)
        elif key in ("n", "nc"):
            pop[key] = round(v)
        elif key in POPULATION_LIST_KEYS and 0 <= i < len(pop[key]):
            pop[key][i] = round(v)
    return out


class PopulationCache:
    """Per-course population states, loaded on first use, reloaded in the background when stale."""

    def __init__(self, pool: AsyncConnectionPool, refresh_s: float, redis: aioredis.Redis | None = None) -> None:
        self.pool = pool
        self.refresh_s = refresh_s
        self.redis = redis
        """Where the computed populations are shared between processes (None: not shared)."""
        self._courses: dict[str, tuple[float, Populations]] = {}
        self._loads: SingleFlight[Populations] = SingleFlight(self.load, "population reload")

    async def load(self, course_id: str) -> Populations:
        """The course's populations from the shared copy if fresh, else computed (and shared); cached."""
        shared, age = await self._shared(course_id)
        if shared is None or (age >= self.refresh_s and await self._lock(course_id)):
            shared = await self.compute(course_id)
            await self._share(course_id, shared)
        self._courses[course_id] = (time.monotonic(), shared)
        return shared

    async def compute(self, course_id: str) -> Populations:
        """The course's populations from PostgreSQL now (one aggregate over its item states)."""
        async with self.pool.connection() as conn:
            rows = await questions.population_sums(conn, course_id, list(POPULATION_LIST_KEYS))
        return from_sums(rows)

    async def _shared(self, course_id: str) -> tuple[Populations | None, float]:
        """(the shared copy, its age in seconds), or (None, inf) if there is none or Redis is away."""
        if self.redis is None:
            return None, float("inf")
        try:
            raw = await self.redis.get(constants.populations_key(course_id))
        except Exception as exc:  # Redis down: compute here instead
            log.info("shared populations unavailable: %r", exc)
            return None, float("inf")
        if raw is None:
            return None, float("inf")
        doc = json.loads(raw)
        return doc["skills"], time.time() - float(doc["at"])

    async def _lock(self, course_id: str) -> bool:
        """True if this process is the one to recompute a stale shared copy."""
        assert self.redis is not None
        try:
            return bool(await self.redis.set(constants.populations_lock_key(course_id), "1", nx=True,
                                             ex=constants.POPULATIONS_LOCK_TTL_S))
        except Exception:
            return True

    async def _share(self, course_id: str, pops: Populations) -> None:
        if self.redis is None:
            return
        doc = json.dumps({"at": time.time(), "skills": pops}, separators=(",", ":"))
        try:
            # kept a while past stale: readers use a stale copy while one process recomputes it
            await self.redis.set(constants.populations_key(course_id), doc, ex=int(self.refresh_s * 10) + 60)
            await self.redis.delete(constants.populations_lock_key(course_id))
        except Exception as exc:
            log.info("populations not shared: %r", exc)

    async def course(self, course_id: str) -> Populations:
        """The course's populations by skill (a skill nobody has answered may be missing)."""
        hit = self._courses.get(course_id)
        if hit is None:
            return await self._loads.start(course_id)
        if time.monotonic() - hit[0] >= self.refresh_s:
            self._loads.start(course_id)  # stale: reload in the background, serve the current one
        return hit[1]

    def cached(self, course_id: str) -> Populations | None:
        """The course's populations as cached now (None: not loaded), without loading."""
        hit = self._courses.get(course_id)
        return hit[1] if hit else None

    async def skill(self, course_id: str, skill_id: str) -> dict[str, Any]:
        """One skill's population (the live cached dict: copy it before handing it to `update`)."""
        pops = await self.course(course_id)
        pop = pops.get(skill_id)
        if pop is None:
            pop = pops[skill_id] = LearnerModel.new_population_state()
        return pop

    def apply(self, course_id: str, skill_id: str, before: dict[str, Any] | None, after: dict[str, Any]) -> None:
        """Follow one recorded answer: the item's state went from `before` (None: new) to `after`."""
        hit = self._courses.get(course_id)
        if hit is None:
            return  # not loaded here: the first load reads the answer from PostgreSQL
        pop = hit[1].get(skill_id)
        if pop is None:
            pop = hit[1][skill_id] = LearnerModel.new_population_state()
        if before:
            LearnerModel.add_to_population(pop, before, -1)
        LearnerModel.add_to_population(pop, after)
