"""The curator's in-memory index of each course's active questions, refreshed periodically.

Per course: its skills (curriculum order, prerequisites) and, per skill, the active questions sorted
by relative difficulty with their lesson JSON pre-encoded — so planning a learner touches no SQL
for candidates. The skills' population states (the sums of their item states, see
curator/populations.py) come for free from the item states loaded here; relative difficulties are
computed with them. A question retired after the last refresh can still be planned; the warm path
drops it at pop time (serving/warm_path.py), so nothing retired reaches a learner. New questions
are planned from the next refresh on (`CuratorSettings.index_refresh_s`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg_pool import AsyncConnectionPool

from curator.learner_model import LearnerModel
from curator.planner import Curriculum, Difficulty, SkillInfo, SkillPool, item_fragment
from curator.single_flight import SingleFlight
from shared.db import courses, questions

log = logging.getLogger(__name__)


@dataclass
class CourseIndex:
    course_id: str
    skills: list[SkillInfo]
    pools: dict[str, SkillPool]
    loaded_at: float
    questions: int
    curriculum: Curriculum
    populations: dict[str, dict[str, Any]]
    """Population state by skill, as of the load."""
    skill_halves: dict[str, tuple[np.ndarray, np.ndarray]]
    """Per skill, its half of a never-practised skill's predicted success on its typical item
    (`LearnerModel.skill_typical_half`): the batch refill asks it for every learner's new skills."""


def build_index(course_id: str, skill_rows: list[dict[str, Any]], bank: list[tuple[Any, ...]],
                difficulty: Difficulty) -> CourseIndex:
    """CPU part of a load (run in a thread): relative difficulties, sorting, pre-encoded items."""
    skills = [SkillInfo(s["id"], int(s["level_rank"]), tuple(s["prerequisites"]), i) for i, s in enumerate(skill_rows)]
    known = {s.id for s in skills}
    rows = [r for r in bank if r[1] in known]
    populations = {sid: LearnerModel.new_population_state() for sid in known}
    for r in rows:
        if r[5]:
            LearnerModel.add_to_population(populations[r[1]], r[5])
    rels = difficulty.rel_many([(r[5] or None, int(r[2])) for r in rows], [populations[r[1]] for r in rows])
    by_skill: dict[str, list[tuple[float, str, str]]] = {s.id: [] for s in skills}
    for r, rel in zip(rows, rels, strict=True):
        qid, sid, _, qtype, content = r[0], r[1], r[2], r[3], r[4]
        by_skill[sid].append((rel, qid, item_fragment(qid, sid, qtype, content)))
    pools = {}
    for sid, entries in by_skill.items():
        entries.sort()
        pools[sid] = SkillPool(rel=[e[0] for e in entries], ids=[e[1] for e in entries], frags=[e[2] for e in entries])
    halves = {s.id: difficulty.model.skill_typical_half(s.level_rank, populations[s.id]) for s in skills}
    return CourseIndex(course_id, skills, pools, time.monotonic(), len(rows), Curriculum(skills), populations,
                       halves)


def _out_of_collector_reach() -> None:
    """Move every object alive now (the index just loaded; the modules, model and clients loaded before
    it) to the collector's permanent generation, so that its full passes scan only what batches
    allocate: scanning the rest cost 5-10% of the curator's CPU. Reference counting still frees what
    was frozen (the index a reload replaces holds no cycles); collecting first leaves no cyclic garbage
    frozen. A pause of tens of milliseconds per load, every `refresh_s`."""
    gc.collect()
    gc.freeze()


class BankIndex:
    """Course indexes, loaded on first use and refreshed in the background once `refresh_s` old."""

    def __init__(self, pool: AsyncConnectionPool, difficulty: Difficulty, refresh_s: float) -> None:
        self.pool = pool
        self.difficulty = difficulty
        self.refresh_s = refresh_s
        self._courses: dict[str, CourseIndex] = {}
        self._unknown: dict[str, float] = {}
        self._loads: SingleFlight[CourseIndex | None] = SingleFlight(self.load, "bank index refresh")

    async def load(self, course_id: str) -> CourseIndex | None:
        """Load now (None for an unknown course or one without skills)."""
        t0 = time.perf_counter()
        async with self.pool.connection() as conn:
            skill_rows = await courses.list_skills(conn, course_id)
            bank = await questions.active_bank(conn, course_id) if skill_rows else []
        if not skill_rows:
            self._unknown[course_id] = time.monotonic()
            return None
        index = await asyncio.to_thread(build_index, course_id, skill_rows, bank, self.difficulty)
        self._courses[course_id] = index
        _out_of_collector_reach()
        log.info("bank index loaded", extra={"course": course_id, "questions": index.questions,
                                             "seconds": round(time.perf_counter() - t0, 3)})
        return index

    async def get(self, course_id: str) -> CourseIndex | None:
        index = self._courses.get(course_id)
        if index is None:
            seen_unknown = self._unknown.get(course_id)
            if seen_unknown is not None and time.monotonic() - seen_unknown < self.refresh_s:
                return None
            return await self._loads.start(course_id)
        if time.monotonic() - index.loaded_at >= self.refresh_s:
            self._loads.start(course_id)  # stale: refresh in the background, serve the current one
        return index

    def invalidate(self, course_id: str | None = None) -> None:
        if course_id is None:
            self._courses.clear()
            self._unknown.clear()
        else:
            self._courses.pop(course_id, None)
            self._unknown.pop(course_id, None)

