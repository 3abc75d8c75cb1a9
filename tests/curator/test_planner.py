"""Planner properties (hypothesis): no question twice, the warm-up first, predicted success in the
target band whenever the candidates allow it, prerequisites respected; and, on an offline replica of
the curator, the picks in the band under the full learner model too."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from curator import planner, planner_audit
from curator.progress_store import SkillBrief

TARGET = (0.70, 0.85)


@st.composite
def pools_and_choice(draw: st.DrawFn) -> tuple[dict[str, planner.SkillPool], list[tuple[str, float]], set[str]]:
    n_skills = draw(st.integers(1, 5))
    pools, chosen, seen = {}, [], set()
    for s in range(n_skills):
        rels = sorted(draw(st.lists(st.floats(-4, 4, allow_nan=False), min_size=0, max_size=40)))
        ids = [f"s{s}-q{i}" for i in range(len(rels))]
        pools[f"s{s}"] = planner.SkillPool(rel=rels, ids=ids, frags=[f'"question_id":"{q}"}}' for q in ids])
        chosen.append((f"s{s}", draw(st.floats(-3, 3))))  # logit of the success on a typical item
        seen |= {q for q in ids if draw(st.booleans()) and draw(st.booleans())}
    return pools, chosen, seen


@settings(max_examples=150, deadline=None)
@given(pools_and_choice(), st.integers(1, 4), st.integers(1, 6), st.integers(0, 2**32))
def test_lessons_are_well_formed(case: tuple, lessons: int, size: int, seed: int) -> None:
    pools, chosen, seen = case
    out = planner.pick_lessons(pools, chosen, seen=seen, lessons=lessons, size=size, target=TARGET,
                               rng=random.Random(seed))
    qids = [pools[p.skill].ids[p.at] for lesson in out for p in lesson]
    assert len(qids) == len(set(qids)), "a question twice"
    assert not set(qids) & seen, "a seen question"
    assert len(out) <= lessons and all(1 <= len(lesson) <= size for lesson in out)
    for lesson in out:
        assert lesson[0].p == max(p.p for p in lesson), "warm-up (easiest) first"
    typical = dict(chosen)
    for lesson in out:
        for p in lesson:
            pool = pools[p.skill]
            lm = typical[p.skill]
            in_band = [i for i, r in enumerate(pool.rel)
                       if TARGET[0] <= planner._sigmoid(lm - r) <= TARGET[1] and pool.ids[i] not in seen]
            if len(in_band) >= lessons * size:  # the band could serve every pick of this skill
                assert TARGET[0] - 1e-9 <= p.p <= TARGET[1] + 1e-9, (p, typical[p.skill])


def test_skills_interleave_and_a_full_playlist_is_planned() -> None:
    pools = {f"s{s}": planner.SkillPool(rel=[i / 100 for i in range(-200, 200)],
                                        ids=[f"s{s}-{i}" for i in range(400)], frags=[]) for s in range(3)}
    chosen = [("s0", planner._logit(0.6)), ("s1", planner._logit(0.7)), ("s2", planner._logit(0.8))]
    out = planner.pick_lessons(pools, chosen, seen=set(), lessons=3, size=6,
                               target=TARGET, rng=random.Random(1))
    assert [len(lesson) for lesson in out] == [6, 6, 6]
    for lesson in out:
        assert {p.skill for p in lesson} == {"s0", "s1", "s2"}
        assert all(TARGET[0] <= p.p <= TARGET[1] for p in lesson)


SKILLS = [planner.SkillInfo("a", 0, (), 0), planner.SkillInfo("b", 0, (), 1),
          planner.SkillInfo("c", 1, ("a", "b"), 2), planner.SkillInfo("d", 1, ("c",), 3)]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from("abcd"), st.tuples(st.floats(0.01, 0.99), st.integers(0, 20),
                                                          st.one_of(st.none(), st.floats(0, 2e9)),
                                                          st.floats(0, 2e6), st.one_of(st.none(), st.floats(-4, 4)))))
def test_chosen_skills_respect_prerequisites(rows: dict[str, tuple[float, int, float | None, float, float | None]]
                                             ) -> None:
    now = 1e9
    briefs = {k: SkillBrief(m, a, due, now - ago, 0, z) for k, (m, a, due, ago, z) in rows.items()}
    chosen, width = planner.choose_skills(SKILLS, briefs, now, want=5, forget_per_log_day=0.15,
                                          new_typical=lambda lv: 0.0)
    assert chosen and 1 <= width <= len(chosen) and len({sid for sid, _ in chosen}) == len(chosen)
    by_id = {s.id: s for s in SKILLS}
    practised = {k for k, b in briefs.items() if b.attempts}
    mastered = {k for k in practised if briefs[k].streak >= planner.MASTERED_STREAK
                or (briefs[k].mastery >= planner.MASTERED and briefs[k].attempts >= planner.MASTERED_MIN_ATTEMPTS)}
    for sid, _ in chosen:
        if sid not in practised and practised:  # a new skill: only on the frontier
            assert set(by_id[sid].prerequisites) <= mastered
    due = {k for k in practised if briefs[k].due_ts is not None and briefs[k].due_ts <= now}
    if due:
        assert {sid for sid, _ in chosen[:len(due)]} == due  # due reviews first
    for sid, z in chosen:  # what the items are aimed from: the stored typical logit, forgetting since
        assert z == (planner.typical_logit_now(briefs[sid], now, 0.15) if sid in practised else 0.0)


# Offline replica (curator/planner_audit.py): simulated learners answer what the planner picks, every
# answer through the answer path's model update; each pick's predicted success is then compared with
# the full model's (`LearnerModel.predict`) for the same learner, item and moment.
BAND_CASE = planner_audit.AuditConfig(calibration_learners=60, learners=20, items=150, skills=8, per_skill=60,
                                      reindex_every=500)


def test_picks_land_in_the_band_under_the_full_model() -> None:
    """Measured on BAND_CASE (9,000 picks; ~19 answers per question from the calibrating learners):
    median |full - planned| 0.040, and of the picks the planner puts in the band the full model puts
    73% in it, 13.5% above, median 0.771. The readout this replaced (sigmoid(logit(stored mastery) -
    rel_q)) gave 0.122, 43% and 39% above (median 0.823): it underestimated success by ~0.11. The
    bounds sit between the two with room for the replica's spread across seeds (the figures move by a
    few points when the model, the planner or the seed changes; the full audit's are in docs/curator.md)."""
    got = planner_audit.measure(BAND_CASE)
    assert got["median_abs_error"] <= 0.07, got
    assert abs(got["median_error_full_minus_planned"]) <= 0.05, got  # no systematic under- or over-estimate
    assert TARGET[0] <= got["planned_in_band_full_median"] <= TARGET[1], got
    assert got["planned_in_band_full_in_band"] >= 0.60, got
    assert got["planned_in_band_full_above"] <= 0.25, got
    assert got["new_skill_picks_median_abs_error"] <= 0.05, got  # 0.016 (0.173 before): exact apart from staleness
