"""Choosing a learner's next lessons from their model: pure functions, no I/O, fast enough to plan
thousands of learners a second on one core.

1. Skills (`choose_skills`): due reviews first, then weak skills whose prerequisites are mastered,
   then the next new skills on the frontier (prerequisites mastered, in curriculum order); mastered
   skills that are not due only as reserves.
2. Items (`pick_lessons`): for each chosen skill, unseen questions whose predicted success falls in
   the target band (70–85% by default), drawn at random inside the band; when the band runs dry, the
   nearest questions outside it.
3. Lessons: N items each, skills interleaved (round robin), the easiest item first as a warm-up, no
   question twice in a lesson or across the learner's queued lessons.

Predicted success is the learner model's (`LearnerModel.predict`), read cheaply around a typical
item of the skill: ``P(correct on q) = sigmoid(z_typical - rel_q)``. ``z_typical`` is the full model's
logit on the skill's typical item now: as the answer path stores it with each answer
(`LearnerModel.typical_logit`) minus the model's forgetting term for the time since, or for a
never-practised skill `LearnerModel.new_skill_typical_logit`. ``rel_q`` is how much harder (in logits)
question q is than the typical item for a reference (new) learner (`Difficulty.rel_many`, once per
question at bank index load). Each skill's questions are kept sorted by ``rel_q``, so the band is two
bisections. docs/curator.md has the measured error of this readout against the full model
(`python -m curator.planner_audit`).
"""

from __future__ import annotations

import json
import math
import random
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from curator.learner_model import LearnerModel
from curator.progress_store import SkillBrief

MASTERED = 0.80
"""Mastery at or above which a skill counts as mastered (its dependants open up)..."""
MASTERED_MIN_ATTEMPTS = 2
"""...once the learner has answered at least this many of its questions (one lucky guess is not mastery),"""
MASTERED_STREAK = 6
"""or answered this many in a row right (ASSISTments' skill builders stop at three): the model weighs early errors
for a long time, the streak shows a learner who has since learned (docs/curator.md: why six)."""
NEW_SKILLS_PER_LESSON = 2
"""At most this many never-practised skills are introduced per refill."""
RESERVE_SKILLS = 4
"""Skills ranked after the chosen ones, used only when a chosen skill has no unseen question left."""
SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class SkillInfo:
    id: str
    level_rank: int
    prerequisites: tuple[str, ...]
    position: int


@dataclass
class SkillPool:
    """Candidate questions of one skill, sorted by relative difficulty (easiest first)."""

    rel: list[float] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    frags: list[str] = field(default_factory=list)
    """Pre-encoded item JSON without the leading '{' and without item_id (see `item_fragment`)."""
    rows: list[Any] = field(default_factory=list)
    """Candidate rows, when the pool comes from SQL (the cold path) instead of the index."""


class Pick(NamedTuple):
    skill: str
    at: int
    """Position in the skill's pool."""
    p: float


def _logit(p: float) -> float:
    if p < 1e-4:
        p = 1e-4
    elif p > 0.9999:
        p = 0.9999
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def mastery_now(brief: SkillBrief, now: float, forget_per_log_day: float) -> float:
    """Mastery as stored with the last answer, decayed by the model's forgetting term since then."""
    if brief.last_ts is None or now <= brief.last_ts or forget_per_log_day == 0:
        return brief.mastery
    return _sigmoid(_logit(brief.mastery) - forget_per_log_day * math.log1p((now - brief.last_ts) / SECONDS_PER_DAY))


def typical_logit_now(brief: SkillBrief, now: float, forget_per_log_day: float) -> float:
    """The logit of the full model's predicted success on the skill's typical item now: as stored with the
    last answer (`SkillBrief.typical_logit`), minus the model's forgetting term since then. A record
    stored before that figure existed reads logit(mastery now) instead."""
    z = _logit(brief.mastery) if brief.typical_logit is None else brief.typical_logit
    last = brief.last_ts
    if last is None or now <= last or not forget_per_log_day:
        return z
    return z - forget_per_log_day * math.log1p((now - last) / SECONDS_PER_DAY)


class Curriculum:
    """A course's skills with the lookups `choose_skills` needs (built once per bank index load)."""

    def __init__(self, skills: list[SkillInfo]) -> None:
        self.skills = skills
        self.by_id = {s.id: s for s in skills}
        self.roots = [s for s in skills if not s.prerequisites]
        self.dependants: dict[str, list[SkillInfo]] = {s.id: [] for s in skills}
        for s in skills:
            for pre in s.prerequisites:
                if pre in self.dependants:
                    self.dependants[pre].append(s)


class Choice(NamedTuple):
    """Skills to practise, most urgent first, each with the logit of the learner's predicted success on a
    typical item of the skill now (what `pick_lessons` aims from): the first `width` are the lessons'
    skills (interleaved); the rest are reserves, drawn only when those run out of unseen questions."""

    skills: list[tuple[str, float]]
    width: int


def choose_skills(curriculum: Curriculum | list[SkillInfo], briefs: dict[str, SkillBrief], now: float, *,
                  want: int, forget_per_log_day: float,
                  new_typical: Callable[[SkillInfo], float]) -> Choice:
    """(skill id, logit of the predicted success on a typical item now: `typical_logit_now`, `new_typical`
    for a skill never practised) to practise next, chosen by mastery now. The lessons' skills are due
    reviews, then weak skills whose prerequisites are mastered, then new skills on the frontier (never
    practised, prerequisites all mastered, in curriculum order): at least one new skill while the
    frontier has one, more while fewer than `want` skills are in play, never more than
    NEW_SKILLS_PER_LESSON. Mastered skills that are not due are reserves (weakest first): practising
    what a learner already knows teaches nothing, so they fill a lesson only when nothing else can, or
    when every skill is mastered."""
    cur = curriculum if isinstance(curriculum, Curriculum) else Curriculum(curriculum)
    by_id = cur.by_id
    mastery: dict[str, float] = {}
    typical: dict[str, float] = {}
    log1p, exp, f = math.log1p, math.exp, forget_per_log_day
    mastered: set[str] = set()
    for sid, b in briefs.items():
        if b.attempts and sid in by_id:
            m, last, z = b.mastery, b.last_ts, b.typical_logit
            if last is not None and now > last and f:  # mastery_now and typical_logit_now, inlined: the hot loop
                forget, lm = f * log1p((now - last) / SECONDS_PER_DAY), _logit(m)
                m = 1.0 / (1.0 + exp(forget - lm))
                z = (lm if z is None else z) - forget
            elif z is None:  # stored before typical logits were
                z = _logit(m)
            mastery[sid] = m
            typical[sid] = z
            if b.streak >= MASTERED_STREAK or (m >= MASTERED and b.attempts >= MASTERED_MIN_ATTEMPTS):
                mastered.add(sid)
    all_mastered = mastered.issuperset

    due: list[tuple[float, str]] = []
    weak: list[tuple[float, str]] = []
    rest: list[tuple[float, str]] = []
    for sid, m in mastery.items():
        due_ts = briefs[sid].due_ts
        if due_ts is not None and due_ts <= now:
            due.append((m, sid))
        elif sid not in mastered and all_mastered(by_id[sid].prerequisites):
            weak.append((m, sid))
        else:
            rest.append((m, sid))
    # the frontier can only hold roots and dependants of mastered skills; it is ready when every
    # prerequisite is mastered
    frontier = [s for s in cur.roots if s.id not in mastery]
    for sid in mastered:
        frontier.extend(d for d in cur.dependants[sid] if d.id not in mastery and all_mastered(d.prerequisites))
    room = min(NEW_SKILLS_PER_LESSON, max(1, want - len(due) - len(weak)))
    new: list[tuple[str, float]] = []
    if frontier:
        firsts = sorted({s.position: s for s in frontier}.items())[:room]
        new = [(s.id, new_typical(s)) for _, s in firsts]
    due.sort()
    weak.sort()
    rest.sort()
    width = min(want, len(due) + len(weak) + len(new))
    keep = max(width, 1) + RESERVE_SKILLS
    practised = [sid for _, sid in due] + [sid for _, sid in weak]
    n_first = min(keep, len(practised))
    practised = practised[:n_first] + [sid for _, sid in rest[:max(0, keep - n_first - len(new))]]
    chosen = [(sid, typical[sid]) for sid in practised]
    chosen[n_first:n_first] = new[:keep - n_first]
    if not chosen:  # nothing practised and nothing ready: the curriculum's first skills
        chosen = [(s.id, new_typical(s)) for s in cur.skills[:want]]
    return Choice(chosen, width or min(want, len(chosen)))


def _outward(rel: list[float], lo: int, hi: int, low_edge: float, high_edge: float) -> Iterator[int]:
    """Indices of the band in order, then outside it nearest first (in logits), below and above."""
    yield from range(lo, hi)
    i, j, n = lo - 1, hi, len(rel)
    while i >= 0 or j < n:
        if j >= n or (i >= 0 and low_edge - rel[i] <= rel[j] - high_edge):
            yield i
            i -= 1
        else:
            yield j
            j += 1


class _Drawer:
    """Draws unseen, unused questions of one skill: at random inside the band (`pick_lessons` does that
    inline, it is the hot path), then by distance (`nearest`)."""

    __slots__ = ("band", "ids", "lm", "lo", "rel", "rest", "sid", "spec")

    def __init__(self, sid: str, pool: SkillPool, typical: float, target_logits: tuple[float, float]) -> None:
        self.sid, self.ids, self.rel = sid, pool.ids, pool.rel
        self.lm = typical
        low_edge, high_edge = self.lm - target_logits[1], self.lm - target_logits[0]
        self.lo = bisect_left(pool.rel, low_edge)
        self.band = bisect_right(pool.rel, high_edge) - self.lo
        self.spec = (low_edge, high_edge)
        self.rest: Iterator[int] | None = None

    def nearest(self, used: set[str], seen: set[str] | frozenset[str]) -> int:
        """The next unused, unseen question outward from the band (-1: none left); from now on the
        skill draws only this way."""
        if self.rest is None:
            self.rest = _outward(self.rel, self.lo, self.lo + self.band, *self.spec)
        ids = self.ids
        for i in self.rest:
            q = ids[i]
            if q not in used and q not in seen:
                return i
        return -1


RANDOM_TRIES = range(6)
"""Random draws inside the band before a skill falls back to the nearest questions outside it."""


def pick_lessons(pools: dict[str, SkillPool], chosen: list[tuple[str, float]], *, seen: set[str] | frozenset[str],
                 lessons: int, size: int, target: tuple[float, float], rng: random.Random,
                 width: int | None = None) -> list[list[Pick]]:
    """Up to `lessons` lessons of up to `size` picks; no question twice; easiest first in each lesson.
    `chosen` is `Choice.skills`: (skill, logit of the predicted success on its typical item now), so a
    question's predicted success is sigmoid(that - rel_q). The first `width` skills of `chosen` are
    interleaved (round robin, from the first skill again in each lesson); a skill that runs out of
    unseen questions is replaced, from the next round on, by the next one in `chosen`."""
    tl = (_logit(target[0]), _logit(target[1]))
    ranked = [(sid, m) for sid, m in chosen if sid in pools and pools[sid].ids]
    if not ranked:
        return []
    width = len(ranked) if width is None else max(1, width)
    drawers = [_Drawer(sid, pools[sid], m, tl) for sid, m in ranked[:width]]
    reserves = ranked[width:]
    rnd, exp = rng.random, math.exp
    new_pick = tuple.__new__  # Pick(...) without its Python-level __new__: this is the innermost loop
    used: set[str] = set()
    out: list[list[Pick]] = []
    for _ in range(lessons):
        picked: list[Pick] = []
        n = 0
        while n < size and drawers:
            k, end = 0, len(drawers)  # one round: the drawers present when it began
            while k < end:
                d = drawers[k]
                i = -1
                if d.rest is None and d.band:
                    ids, lo, band = d.ids, d.lo, d.band
                    for _ in RANDOM_TRIES:
                        j = lo + int(rnd() * band)
                        q = ids[j]
                        if q not in used and q not in seen:
                            i = j
                            break
                if i < 0:
                    i = d.nearest(used, seen)
                    if i < 0:
                        del drawers[k]
                        end -= 1
                        if reserves:
                            sid_r, m_r = reserves.pop(0)
                            drawers.append(_Drawer(sid_r, pools[sid_r], m_r, tl))
                        continue
                used.add(d.ids[i])
                x = d.lm - d.rel[i]  # predicted success: _sigmoid(x), inlined
                if x >= 0:
                    p = 1.0 / (1.0 + exp(-x))
                else:
                    z = exp(x)
                    p = z / (1.0 + z)
                picked.append(new_pick(Pick, (d.sid, i, p)))
                n += 1
                if n == size:
                    break
                k += 1
        if not picked:
            break
        warm, best = 0, picked[0].p  # warm-up: the likeliest right first
        for k in range(1, n):
            if picked[k].p > best:
                warm, best = k, picked[k].p
        if warm:
            picked.insert(0, picked.pop(warm))
        out.append(picked)
    return out


# --- encoding ---------------------------------------------------------------------------------
def item_fragment(question_id: str, skill: str, qtype: str, content: dict[str, Any]) -> str:
    """The item's JSON object minus its opening brace and item_id: lessons are assembled by joining."""
    item: dict[str, Any] = {"question_id": question_id, "skill": skill, "type": qtype, "prompt": content["prompt"]}
    if content.get("choices"):
        item["choices"] = content["choices"]
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)[1:]


_ITEM_HEADS = [f'{{"item_id":"{k}",' for k in range(1, 33)]


def encode_lesson(lesson_id: str, learner_json: str, course_json: str, source: str, picks: list[Pick],
                  pools: dict[str, SkillPool]) -> tuple[str, str]:
    """(items JSON, playlist element) of a lesson, by string assembly (same shape as `lesson_payload`)."""
    parts, ids = [], []
    for k, (sid, i, _) in enumerate(picks):
        pool = pools[sid]
        parts.append((_ITEM_HEADS[k] if k < len(_ITEM_HEADS) else f'{{"item_id":"{k + 1}",') + pool.frags[i])
        ids.append(pool.ids[i])
    items, header = ",".join(parts), ",".join(ids)
    body = (f'{{"lesson_id":"{lesson_id}","learner_id":{learner_json},"course":{course_json},'
            f'"source":"{source}","items":[{items}]}}')
    return f"[{items}]", f"{header}|{body}"


def lesson_payload(learner_id: str, course_id: str, questions: list[dict[str, Any]], *, source: str) -> dict[str, Any]:
    """The lesson as the API returns it: question content without the answer key."""
    items = []
    for i, q in enumerate(questions, start=1):
        c = q["content"]
        item = {"item_id": str(i), "question_id": str(q["id"]), "skill": q["skill_id"], "type": q["type"],
                "prompt": c["prompt"]}
        if c.get("choices"):
            item["choices"] = c["choices"]
        items.append(item)
    return {"lesson_id": str(uuid.uuid4()), "learner_id": learner_id, "course": course_id, "source": source,
            "items": items}


# --- relative difficulty (the bank index and the cold path) --------------------------------------
class Difficulty:
    """rel_q for questions: logit(P typical item) - logit(P item q) for a reference (new) learner.

    ``population`` is the skill's population state (None: nobody has answered the skill yet); the
    typical item is the population's (`LearnerModel.typical_item`)."""

    def __init__(self, model: LearnerModel) -> None:
        self.model = model
        self._learner = model.new_learner_state()
        self._typical: dict[int, float] = {}
        self._new_typical: dict[int, float] = {}

    def _skill(self, level: int) -> dict[str, Any]:
        return self.model.new_skill_state(level)

    def typical_logit(self, level: int, population: dict[str, Any] | None = None) -> float:
        if population and population["n"]:
            sk = self._skill(level)
            return _logit(self.model.predict(self._learner, sk, self.model.typical_item(sk, population), 0.0,
                                             population))
        if level not in self._typical:
            sk = self._skill(level)
            self._typical[level] = _logit(self.model.predict(self._learner, sk, self.model.typical_item(sk), 0.0))
        return self._typical[level]

    def item_logit(self, item_state: dict[str, Any] | None, level: int,
                   population: dict[str, Any] | None = None) -> float:
        """logit(P item q) for the reference learner; rel_q = typical_logit - item_logit."""
        item = item_state or self.model.new_item_state(level)
        return _logit(self.model.predict(self._learner, self._skill(level), item, 0.0, population))

    def rel(self, item_state: dict[str, Any] | None, level: int, population: dict[str, Any] | None = None) -> float:
        return self.typical_logit(level, population) - self.item_logit(item_state, level, population)

    def rel_many(self, items: list[tuple[dict[str, Any] | None, int]],
                 populations: list[dict[str, Any] | None] | None = None) -> list[float]:
        """Vectorised `rel` for many (item state, level) pairs (one matrix product); `populations`,
        if given, holds each pair's skill population."""
        import numpy as np

        if not items:
            return []
        pops = populations if populations is not None else [None] * len(items)
        skills = {lv: self._skill(lv) for lv in {lv for _, lv in items}}
        X = np.array([self.model.features(self._learner, skills[lv], it or self.model.new_item_state(lv), 0.0, pop)
                      for (it, lv), pop in zip(items, pops, strict=True)])
        z = np.clip(self.model.logit_from_features(X), -9.21, 9.21)
        typical: dict[tuple[int, int], float] = {}  # per (level, population)
        typ = np.empty(len(items))
        for k, ((_, lv), pop) in enumerate(zip(items, pops, strict=True)):
            key = (lv, id(pop))
            if key not in typical:
                typical[key] = self.typical_logit(lv, pop)
            typ[k] = typical[key]
        return (typ - z).tolist()  # type: ignore[no-any-return]

    def new_typical(self, learner: dict[str, Any] | None, level: int, now: float,
                    population: dict[str, Any] | None = None) -> float:
        """The logit of the predicted success on the typical item of a never-practised skill of `level`
        whose population is `population` (`LearnerModel.typical_logit`; a skill never practised has nothing
        to forget), cached for learners with no state yet on skills nobody has answered."""
        if learner is None and population is None:
            if level not in self._new_typical:
                self._new_typical[level] = self.model.typical_logit(self._learner, self._skill(level), now)
            return self._new_typical[level]
        return self.model.typical_logit(learner or self._learner, self._skill(level), now, population)
