"""Refills: read learners' models, choose their next lessons, store them (PostgreSQL first, so a
lesson exists before it can be popped), then replace their Redis playlists.

`refill_many` is the engine, built for many learners per call: one pipelined Redis round trip for
their reset marks (read first: a reset after it makes the playlist write refuse), one pipelined SQL
round trip for all their model states (or the DynamoDB backend's reads), one for what they have seen, candidates from
the in-memory bank index, planning in plain Python (bisect over pre-sorted difficulties), one COPY
of the planned lessons, one pipelined Redis round trip for all playlists, and one DELETE of the
planned lessons the new playlists replaced. `plan` is the single-learner variant the cold path uses
(candidates from SQL, nothing written).
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as json_string  # json.dumps(str), without its call overhead
from typing import Any

import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from curator import planner
from curator.bank_index import BankIndex, CourseIndex
from curator.learner_model import LearnerModel
from curator.playlist_writer import PlaylistWriter
from curator.populations import PopulationCache, Populations
from curator.progress_store import PlanningState, ProgressStore, open_progress_store
from shared import constants
from shared.db import courses, learners, lessons, questions
from shared.settings import Settings

log = logging.getLogger(__name__)
CANDIDATES_PER_SKILL_FACTOR = 3
EMPTY: frozenset[str] = frozenset()


@dataclass
class CuratorDeps:
    settings: Settings
    pool: AsyncConnectionPool
    playlist_redis: aioredis.Redis
    model: LearnerModel
    store: ProgressStore | None = None
    rng: random.Random = field(default_factory=random.Random)
    _skills: dict[str, tuple[float, list[dict[str, Any]]]] = field(default_factory=dict)
    _difficulty: planner.Difficulty | None = None
    _index: BankIndex | None = None
    _writer: PlaylistWriter | None = None
    _populations: PopulationCache | None = None

    def __post_init__(self) -> None:
        if self.store is None:
            self.store = open_progress_store(self.settings, self.pool)

    @property
    def progress(self) -> ProgressStore:
        assert self.store is not None
        return self.store

    @property
    def difficulty(self) -> planner.Difficulty:
        if self._difficulty is None:
            self._difficulty = planner.Difficulty(self.model)
        return self._difficulty

    @property
    def index(self) -> BankIndex:
        if self._index is None:
            self._index = BankIndex(self.pool, self.difficulty, self.settings.curator.index_refresh_s)
        return self._index

    @property
    def populations(self) -> PopulationCache:
        """The skills' population states (the cold path's; the bank index carries its own)."""
        if self._populations is None:
            self._populations = PopulationCache(self.pool, self.settings.curator.population_refresh_s,
                                                self.playlist_redis)
        return self._populations

    @property
    def writer(self) -> PlaylistWriter:
        if self._writer is None:
            self._writer = PlaylistWriter(self.playlist_redis)
        return self._writer

    async def skills(self, course_id: str, conn: Any = None) -> list[dict[str, Any]] | None:
        """The course's skills (None: no such course), cached for a minute once found (the curriculum
        changes rarely); `conn`, if given, is a connection the caller holds."""
        hit = self._skills.get(course_id)
        if hit and time.monotonic() - hit[0] < 60:
            return hit[1]
        if conn is None:
            async with self.pool.connection() as own:
                return await self.skills(course_id, own)
        rows = await courses.list_skills(conn, course_id)
        if not rows and await courses.get_course(conn, course_id) is None:
            return None
        self._skills[course_id] = (time.monotonic(), rows)
        return rows


def _target(deps: CuratorDeps) -> tuple[float, float]:
    return deps.settings.curator.target_low, deps.settings.curator.target_high


def _choose(deps: CuratorDeps, skills: planner.Curriculum | list[planner.SkillInfo], state: PlanningState | None,
            now: float, populations: Populations) -> planner.Choice:
    briefs = state.skills if state else {}
    size = deps.settings.serving.lesson_size

    def new_typical(skill: planner.SkillInfo) -> float:  # the learner on a skill they never practised
        return deps.difficulty.new_typical(state.learner if state else None, skill.level_rank, now,
                                           populations.get(skill.id))

    return planner.choose_skills(skills, briefs, now, want=max(3, size),
                                 forget_per_log_day=deps.model.hyper["forget_per_log_day"], new_typical=new_typical)


def _lesson_ids(n: int) -> list[str]:
    """n random (version 4) UUIDs as text, from one read of the OS's random source."""
    h = os.urandom(16 * n).hex()
    return [f"{h[k:k + 8]}-{h[k + 8:k + 12]}-4{h[k + 13:k + 16]}-{'89ab'[int(h[k + 16], 16) & 3]}"
            f"{h[k + 17:k + 20]}-{h[k + 20:k + 32]}" for k in range(0, 32 * n, 32)]


async def plan(deps: CuratorDeps, conn: Any, populations: Populations, learner_id: str, course_id: str, *,
               lessons_wanted: int, source: str) -> list[dict[str, Any]]:
    """Compute up to `lessons_wanted` lessons for one learner from SQL candidates (reads only, on `conn`,
    a PostgreSQL connection the caller holds), with the course's skill populations."""
    rows = await deps.skills(course_id, conn)
    if not rows:
        return []
    skills = [planner.SkillInfo(s["id"], int(s["level_rank"]), tuple(s["prerequisites"]), i)
              for i, s in enumerate(rows)]
    level = {s.id: s.level_rank for s in skills}
    now = time.time()
    # No seen list: the candidates query skips seen questions itself
    states = await deps.progress.planning_states([(learner_id, course_id)], conn=conn, seen=False)
    state = states.get((learner_id, course_id))
    chosen, width = _choose(deps, skills, state, now, populations)
    size = deps.settings.serving.lesson_size
    candidates = await questions.cold_candidates(
        conn, learner=learner_id, course=course_id, skills=[sid for sid, _ in chosen],
        per_skill=size * lessons_wanted * CANDIDATES_PER_SKILL_FACTOR // max(1, len(chosen)) + size)
    rels = deps.difficulty.rel_many([(json.loads(c[4]) if c[4] else None, level[c[1]]) for c in candidates],
                                    [populations.get(c[1]) for c in candidates])
    by_skill: dict[str, list[tuple[float, tuple[str, str, str, str, str | None]]]] = defaultdict(list)
    for rel, c in zip(rels, candidates, strict=True):
        by_skill[c[1]].append((rel, c))
    pools = {}
    for sid, entries in by_skill.items():
        entries.sort(key=lambda t: t[0])
        pools[sid] = planner.SkillPool(rel=[e[0] for e in entries], ids=[e[1][0] for e in entries],
                                       rows=[e[1] for e in entries])
    picked = planner.pick_lessons(pools, chosen, seen=EMPTY, lessons=lessons_wanted, size=size,
                                  target=_target(deps), rng=deps.rng, width=width)
    return [planner.lesson_payload(learner_id, course_id, [_question(pools[p.skill].rows[p.at]) for p in lesson],
                                   source=source) for lesson in picked]


def _question(row: tuple[str, str, str, str, str | None]) -> dict[str, Any]:
    """A picked cold candidate as lesson_payload reads it (its content decoded only now)."""
    return {"id": row[0], "skill_id": row[1], "type": row[2], "content": json.loads(row[3])}


FIXED_ITEMS_PER_SKILL = 8
"""The fixed-order baseline practises each skill this many items before moving to the next."""


def _baseline_picks(policy: str, index: CourseIndex, state: PlanningState | None, seen: frozenset[str] | set[str],
                    lessons_wanted: int, size: int, rng: random.Random) -> list[list[planner.Pick]]:
    """The simulation's baselines: 'random' unseen questions of the course, or 'fixed' curriculum order
    (FIXED_ITEMS_PER_SKILL random unseen items of each skill in turn, then round again)."""
    total = lessons_wanted * size
    used: set[tuple[str, int]] = set()
    out: list[planner.Pick] = []

    def draw(sid: str) -> None:
        ids = index.pools[sid].ids
        for _ in range(32):
            i = rng.randrange(len(ids))
            if (sid, i) not in used and ids[i] not in seen:
                used.add((sid, i))
                out.append(planner.Pick(sid, i, 0.0))
                return

    with_questions = [s.id for s in index.skills if index.pools[s.id].ids]
    if not with_questions:
        return []
    if policy == "random":
        for _ in range(total):
            draw(rng.choice(with_questions))
    else:
        done = sum(b.attempts for b in state.skills.values()) if state else 0
        for pos in range(done, done + total):
            draw(with_questions[(pos // FIXED_ITEMS_PER_SKILL) % len(with_questions)])
    return [out[i:i + size] for i in range(0, len(out), size)]


class _NewSkillTypical:
    """`choose_skills`' new_typical for one learner in a batch: `Difficulty.new_typical`'s figures (to
    rounding), with the learner's half of the model's input computed once (not once per new skill) and
    each skill's half once per bank index load (`CourseIndex.skill_halves`)."""

    __slots__ = ("half", "index", "model", "reference", "state")

    def __init__(self, model: LearnerModel, index: CourseIndex, state: PlanningState | None,
                 reference: tuple[int, Any]) -> None:
        self.model, self.index, self.state, self.reference = model, index, state, reference
        self.half: tuple[int, Any] | None = None

    def __call__(self, skill: planner.SkillInfo) -> float:
        if self.half is None:  # decoding the learner's state waits until a new skill needs it
            learner = self.state.learner if self.state else None
            self.half = self.model.learner_typical_half(learner) if learner else self.reference
        return self.model.new_skill_typical_logit(self.half, self.index.skill_halves[skill.id])


def _plan_batch(deps: CuratorDeps, indexes: dict[str, CourseIndex | None], pairs: list[tuple[str, str]],
                states: dict[tuple[str, str], PlanningState], now: float
                ) -> tuple[list[tuple[str, str, str, str, str]], list[tuple[str, str, list[bytes | str]]],
                           dict[tuple[str, str], list[str]]]:
    """The CPU part of `refill_many`: each learner's lessons as COPY rows and playlist elements, and
    the new lesson ids per pair (the RNG is drawn from in `pairs` order)."""
    cfg = deps.settings
    size, depth = cfg.serving.lesson_size, cfg.serving.playlist_depth
    target = _target(deps)
    policy = cfg.curator.policy
    forget = deps.model.hyper["forget_per_log_day"]
    reference = deps.model.learner_typical_half(deps.model.new_learner_state())  # learners with no state yet
    rows: list[tuple[str, str, str, str, str]] = []
    writes: list[tuple[str, str, list[bytes | str]]] = []
    new_ids: dict[tuple[str, str], list[str]] = {}
    fresh_ids = iter(_lesson_ids(len(pairs) * depth))  # one read of the OS's random source per batch
    course_jsons = {c: json_string(c) for c in indexes}
    for pair in pairs:
        learner_id, course_id = pair
        index = indexes[course_id]
        assert index is not None
        state = states.get(pair)
        learner_seen = state.seen if state is not None and state.seen is not None else EMPTY
        if policy == "adaptive":
            chosen, width = planner.choose_skills(
                index.curriculum, state.skills if state else {}, now, want=max(3, size), forget_per_log_day=forget,
                new_typical=_NewSkillTypical(deps.model, index, state, reference))
            picked = planner.pick_lessons(index.pools, chosen, seen=learner_seen, lessons=depth, size=size,
                                          target=target, rng=deps.rng, width=width)
        else:
            picked = _baseline_picks(policy, index, state, learner_seen, depth, size, deps.rng)
        learner_json, course_json = json_string(learner_id), course_jsons[course_id]
        elements: list[bytes | str] = []
        ids = [next(fresh_ids) for _ in picked]
        for lid, picks in zip(ids, picked, strict=True):
            items_json, element = planner.encode_lesson(lid, learner_json, course_json, "warm", picks, index.pools)
            rows.append((lid, learner_id, course_id, "warm", items_json))
            elements.append(element)
        writes.append((learner_id, course_id, elements))
        new_ids[pair] = ids
    return rows, writes, new_ids


async def refill_many(deps: CuratorDeps, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Recompute and store the playlists of many (learner, course) pairs; returns lessons written per
    pair (0 for an unknown course, a course without questions, a learner just erased, or one who reset
    the course after this refill read their model)."""
    pairs = list(dict.fromkeys(pairs))
    indexes: dict[str, CourseIndex | None] = {}
    for course in {c for _, c in pairs}:
        indexes[course] = await deps.index.get(course)
    pairs = [p for p in pairs if indexes[p[1]] is not None]
    result: dict[tuple[str, str], int] = dict.fromkeys(pairs, 0)
    if not pairs:
        return result
    marks = await deps.writer.marks(pairs)  # before the models: a reset after this refuses the write
    async with deps.pool.connection() as conn:
        states = await deps.progress.planning_states(pairs, conn=conn)
        if any(s.seen is None for s in states.values()) or len(states) < len(pairs):
            seen_rows = await learners.seen_many(conn, pairs)
            seen: dict[tuple[str, str], set[str]] = defaultdict(set)
            for lid, cid, qid in seen_rows:
                seen[(lid, cid)].add(qid)
            for pair, st in states.items():
                st.seen = seen.get(pair, set())
            missing = {p: PlanningState(None, seen=seen[p]) for p in pairs if p not in states and p in seen}
            states.update(missing)
        await conn.commit()  # end the read transaction; the writes below are their own

        rows, writes, new_ids = _plan_batch(deps, indexes, pairs, states, time.time())
        if rows:  # PostgreSQL first: a lesson exists before it can be popped
            await lessons.copy_planned(conn, rows)
            await conn.commit()
        mark_of = dict(zip(pairs, marks, strict=True))
        replies = await deps.writer.replace_many(writes, ttl_s=constants.PLAYLIST_TTL_S,
                                                 marks=[mark_of[(w[0], w[1])] for w in writes])
        stale: list[str] = []
        for (learner_id, course_id, _), (written, old_ids) in zip(writes, replies, strict=True):
            pair = (learner_id, course_id)
            if written:
                stale.extend(old_ids)
                result[pair] = len(new_ids[pair])
            else:  # erased or reset meanwhile: the rows just stored must go too
                stale.extend(new_ids[pair])
        if stale:  # the lessons the new playlists replaced were never popped: never served
            await lessons.delete_planned(conn, stale)
            await conn.commit()
    return result


async def refill(deps: CuratorDeps, learner_id: str, course_id: str) -> int:
    """Recompute and store one learner's playlist; returns the number of lessons written."""
    written = (await refill_many(deps, [(learner_id, course_id)])).get((learner_id, course_id), 0)
    log.info("refill", extra={"learner": learner_id, "course": course_id, "lessons": written})
    return written
