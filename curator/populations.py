"""The skills' population states, cached in process per course: how everyone does on each skill.

A population state is the sum of the skill's active item states (`LearnerModel.population`), so it
needs no table of its own: a course's populations are loaded by one SQL query over
`questions.item_state` (`shared.db.questions.population_sums`), reloaded in the background once
`refresh_s` old, and kept current in between by the answers this process records (`apply`: the
answered item's old state out, its new state in — exact, and in any order). Answers recorded by
other processes arrive with the next reload. The answer path, the profile and the cold path read
them from here; the bank index builds its own from the item states it loads anyway.
"""

from __future__ import annotations

import time
from typing import Any

from psycopg_pool import AsyncConnectionPool

from curator.learner_model import POPULATION_LIST_KEYS, LearnerModel
from curator.single_flight import SingleFlight
from shared.db import questions

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

    def __init__(self, pool: AsyncConnectionPool, refresh_s: float) -> None:
        self.pool = pool
        self.refresh_s = refresh_s
        self._courses: dict[str, tuple[float, Populations]] = {}
        self._loads: SingleFlight[Populations] = SingleFlight(self.load, "population reload")

    async def load(self, course_id: str) -> Populations:
        """Read the course's populations now (one query) and cache them."""
        async with self.pool.connection() as conn:
            rows = await questions.population_sums(conn, course_id, list(POPULATION_LIST_KEYS))
        pops = from_sums(rows)
        self._courses[course_id] = (time.monotonic(), pops)
        return pops

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

    def invalidate(self, course_id: str | None = None) -> None:
        if course_id is None:
            self._courses.clear()
        else:
            self._courses.pop(course_id, None)

