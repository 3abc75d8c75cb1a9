"""The planner's predicted success against the full learner model, on an offline replica.

    python -m curator.planner_audit [--learners N] [--items N] [--seed N] [--servable]

The planner aims each item at 70-85% predicted success with a cheap readout (curator/planner.py);
this measures how far that readout is from `LearnerModel.predict` for the same learner, item and
moment. Simulated learners (curator/simulation.py's: hidden knowledge, learning, forgetting) answer
what the planner picks, and every answer goes through the answer path's own model update
(`serving.progress.ProgressService.update_model`: predict, update, FSRS, mastery and the typical
logit), so the states the planner reads are the ones production stores. No database: the bank index
is built in memory with `bank_index.build_index` and rebuilt every `reindex_every` answers, as the
curator reloads it, so its relative difficulties are as stale as production's.

First `calibration_learners` learners calibrate the bank (their answers move the item and population
states); then `learners` more are measured: at every refill (after each lesson, a little later, or
after a break of hours to days), each pick of the planned lessons (`refill._choose` +
`planner.pick_lessons`, the path tests/curator/test_refill_plan.py holds equal to the batch refill)
is compared with `predict` on the learner's current states. Figures (`measure`): the median absolute
error, the full model's median for the picks, the share of picks inside the band under the full model,
and the same share among the picks the planner put in the band; with ``servable``, also among the picks
whose skill still had enough unseen questions the full model puts in the band (slow: every candidate is
predicted).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from curator import planner, refill
from curator.bank_index import build_index
from curator.learner_model import TYPICAL_LOGIT, LearnerModel
from curator.progress_store import PlanningState, SkillBrief, SkillRecord
from curator.scheduler import ReviewScheduler
from curator.simulation import SimConfig, SimLearner, course_skills, population
from shared.db.courses import LEVEL_RANKS
from shared.settings import get_settings


@dataclass(frozen=True)
class AuditConfig:
    calibration_learners: int = 150
    learners: int = 40
    items: int = 200
    """Items each learner answers (calibration and measured learners alike)."""
    skills: int = 12
    per_skill: int = 300
    difficulty_spread: float = 1.3
    """Sigma of the questions' hidden difficulties (logits): a wide bank, so that the band is often servable."""
    seed: int = 11
    reindex_every: int = 2000
    """Answers between two bank index loads."""
    break_share: float = 0.25
    """Share of lessons followed by a break of an hour to three days (forgetting)."""


@dataclass
class _Learner:
    sim: SimLearner
    t: float
    state: dict[str, Any] | None = None
    records: dict[str, SkillRecord] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    def planning_state(self) -> PlanningState:
        """What `learners.PLANNING_BATCH` reads back from the stored records."""
        briefs = {sid: SkillBrief(r.mastery, r.attempts, r.due_at.timestamp() if r.due_at else None,
                                  r.last_seen_at.timestamp() if r.last_seen_at else None, r.state.get("streak", 0),
                                  r.state.get(TYPICAL_LOGIT)) for sid, r in self.records.items()}
        return PlanningState(json.dumps(self.state) if self.state else None, briefs, set(self.seen))


class Replica:
    """A course, its bank (hidden difficulties, item and population states) and the curator's planning."""

    def __init__(self, cfg: AuditConfig, model: LearnerModel | None = None) -> None:
        from serving.progress import ProgressService  # the answer path's update (no store is touched)

        self.cfg = cfg
        self.model = model or LearnerModel.load()
        self.sim = SimConfig(skills=cfg.skills, per_skill=cfg.per_skill, seed=cfg.seed, items=cfg.items)
        self.answers = ProgressService(services=None, model=self.model, scheduler=ReviewScheduler(),  # type: ignore[arg-type]
                                       store=object(), populations=object())  # type: ignore[arg-type]
        rng = random.Random(cfg.seed)
        self.skills = [{"id": s["id"], "level_rank": LEVEL_RANKS[s["level"]], "prerequisites": s["prerequisites"]}
                       for s in course_skills(self.sim)]
        self.level = {s["id"]: s["level_rank"] for s in self.skills}
        self.hidden: dict[str, float] = {}
        self.items: dict[str, dict[str, Any]] = {}
        self.rows: list[tuple[Any, ...]] = []
        for s in self.skills:
            for k in range(cfg.per_skill):
                qid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                self.hidden[qid] = rng.gauss(0.0, cfg.difficulty_spread)
                self.items[qid] = self.model.new_item_state(s["level_rank"])
                self.rows.append((qid, s["id"], s["level_rank"], "multiple_choice",
                                  {"prompt": f"{s['id']} #{k}", "choices": ["a", "b"]}))
        self.populations = {s["id"]: LearnerModel.new_population_state() for s in self.skills}
        self.difficulty = planner.Difficulty(self.model)
        self.deps = refill.CuratorDeps(settings=get_settings(), pool=None, playlist_redis=None,  # type: ignore[arg-type]
                                       model=self.model, rng=random.Random(cfg.seed + 1))
        self.answered = 0
        self.reindex()

    def reindex(self) -> None:
        bank = [(*r, self.items[r[0]]) for r in self.rows]
        self.index = build_index("audit", self.skills, bank, self.difficulty)

    def plan(self, ln: _Learner, now: float) -> list[list[planner.Pick]]:
        state = ln.planning_state()
        chosen, width = refill._choose(self.deps, self.index.curriculum, state, now, self.index.populations)
        serving = self.deps.settings.serving
        return planner.pick_lessons(self.index.pools, chosen, seen=state.seen or set(), lessons=serving.playlist_depth,
                                    size=serving.lesson_size, target=refill._target(self.deps), rng=self.deps.rng,
                                    width=width)

    def full(self, ln: _Learner, skill: str, qid: str, now: float) -> float:
        """`LearnerModel.predict` on the learner's current states."""
        rec = ln.records.get(skill)
        sk = rec.state if rec else self.model.new_skill_state(self.level[skill])
        return self.model.predict(ln.state or self.model.new_learner_state(), sk, self.items[qid], now,
                                  self.populations[skill])

    def answer(self, ln: _Learner, skill: str, qid: str, rng: random.Random) -> None:
        ln.t += rng.uniform(8.0, 30.0)
        correct = ln.sim.answer(skill, self.hidden[qid], self.sim)
        update, _step = self.answers.update_model(ln.state, ln.records.get(skill), self.items[qid],
                                                  level_rank=self.level[skill], correct=correct,
                                                  response_ms=3000 if correct else 9000, now=ln.t,
                                                  population=self.populations[skill])
        ln.state = update.learner
        update.skill.last_seen_at = datetime.fromtimestamp(ln.t, UTC)
        ln.records[skill] = update.skill
        ln.seen.add(qid)
        self.answered += 1
        if self.answered % self.cfg.reindex_every == 0:
            self.reindex()

    def run(self, sims: list[SimLearner], rng: random.Random, picks: list[dict[str, Any]] | None = None,
            servable: bool = False) -> None:
        """Each learner takes lessons until `items`; with `picks`, every planned pick is recorded."""
        learners = [_Learner(s, 1.75e9 + rng.uniform(0, 86400)) for s in sims]
        active = learners
        while active:
            for ln in active:
                now = ln.t + 5.0  # the refill after the lesson
                lessons = self.plan(ln, now)
                if not lessons:
                    ln.sim.items = self.cfg.items  # the bank ran dry for this learner
                    continue
                if picks is not None:
                    self._record(ln, lessons, now, picks, servable)
                for p in lessons[0]:
                    if ln.sim.items >= self.cfg.items:
                        break
                    self.answer(ln, p.skill, self.index.pools[p.skill].ids[p.at], rng)
                if rng.random() < self.cfg.break_share:
                    ln.t += rng.uniform(3600.0, 3 * 86400.0)
            active = [ln for ln in active if ln.sim.items < self.cfg.items]

    def _record(self, ln: _Learner, lessons: list[list[planner.Pick]], now: float, out: list[dict[str, Any]],
                servable: bool) -> None:
        low, high = refill._target(self.deps)
        per_skill: dict[str, int] = {}
        for lesson in lessons:
            for p in lesson:
                per_skill[p.skill] = per_skill.get(p.skill, 0) + 1
        in_band: dict[str, int] = {}
        if servable:
            for sid in per_skill:
                in_band[sid] = sum(1 for q in self.index.pools[sid].ids
                                   if q not in ln.seen and low <= self.full(ln, sid, q, now) <= high)
        for lesson in lessons:
            for p in lesson:
                qid = self.index.pools[p.skill].ids[p.at]
                out.append({"planned": p.p, "full": self.full(ln, p.skill, qid, now),
                            "new": p.skill not in ln.records,
                            "servable": in_band[p.skill] >= per_skill[p.skill] if servable else None})


def measure(cfg: AuditConfig, *, servable: bool = False) -> dict[str, Any]:
    """Calibrate the bank, replay the measured learners, compare every pick with the full model."""
    replica = Replica(cfg)
    rng = random.Random(cfg.seed + 2)
    sim = replica.sim
    replica.run(population(SimConfig(**{**sim.__dict__, "learners": cfg.calibration_learners}), "cal"), rng)
    replica.reindex()
    picks: list[dict[str, Any]] = []
    measured = population(SimConfig(**{**sim.__dict__, "learners": cfg.learners, "seed": cfg.seed + 12}), "m")
    replica.run(measured, rng, picks, servable)
    reached = [ln.reached_at for ln in measured]
    return {**summarise(picks, refill._target(replica.deps)),
            # the simulation's own figure (curator/simulation.py), for these learners in this bank
            "items_to_mastery_mean": round(sum(r if r is not None else cfg.items for r in reached) / len(reached), 1),
            "reached_mastery": f"{sum(r is not None for r in reached)}/{len(reached)}"}


def summarise(picks: list[dict[str, Any]], target: tuple[float, float]) -> dict[str, Any]:
    low, high = target

    def inside(p: float) -> bool:
        return low <= p <= high

    def share(rows: list[dict[str, Any]]) -> float | None:
        return round(sum(inside(r["full"]) for r in rows) / len(rows), 3) if rows else None

    planned_in = [r for r in picks if inside(r["planned"])]
    n_in = len(planned_in) or 1
    out: dict[str, Any] = {
        "picks": len(picks),
        "median_abs_error": round(statistics.median(abs(r["full"] - r["planned"]) for r in picks), 4),
        "median_error_full_minus_planned": round(statistics.median(r["full"] - r["planned"] for r in picks), 4),
        "median_abs_logit_error": round(statistics.median(abs(_logit(r["full"]) - _logit(r["planned"]))
                                              for r in picks), 3),
        "full_median": round(statistics.median(r["full"] for r in picks), 3),
        "full_in_band": share(picks),
        "planned_in_band": round(len(planned_in) / len(picks), 3),
        "planned_in_band_full_median": round(statistics.median(r["full"] for r in planned_in), 3)
        if planned_in else None,
        "planned_in_band_full_in_band": share(planned_in),
        "planned_in_band_full_above": round(sum(r["full"] > high for r in planned_in) / n_in, 3),
        "planned_in_band_full_below": round(sum(r["full"] < low for r in planned_in) / n_in, 3),
        "new_skill_picks_median_abs_error": round(statistics.median(abs(r["full"] - r["planned"])
                                                                    for r in picks if r["new"]), 4)
        if any(r["new"] for r in picks) else None,
    }
    if picks and picks[0]["servable"] is not None:
        servable = [r for r in picks if r["servable"]]
        out["servable"] = round(len(servable) / len(picks), 3)
        out["servable_full_in_band"] = share(servable)
    return out


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m curator.planner_audit", description=__doc__.split("\n")[0])
    p.add_argument("--learners", type=int, default=AuditConfig.learners, help="measured learners")
    p.add_argument("--calibration-learners", type=int, default=AuditConfig.calibration_learners)
    p.add_argument("--items", type=int, default=AuditConfig.items, help="items per learner")
    p.add_argument("--seed", type=int, default=AuditConfig.seed)
    p.add_argument("--per-skill", type=int, default=AuditConfig.per_skill, help="questions per skill")
    p.add_argument("--spread", type=float, default=AuditConfig.difficulty_spread,
                   help="sigma of the hidden difficulties (`lessonloop model simulate`: 60 per skill, 0.9)")
    p.add_argument("--servable", action="store_true", help="also the share among picks the band could serve (slow)")
    args = p.parse_args(argv)
    cfg = AuditConfig(learners=args.learners, calibration_learners=args.calibration_learners, items=args.items,
                      seed=args.seed, per_skill=args.per_skill, difficulty_spread=args.spread)
    print(json.dumps({"config": cfg.__dict__, **measure(cfg, servable=args.servable)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
