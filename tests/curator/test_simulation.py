"""A small `lessonloop model simulate`: simulated learners through the real API and curator worker;
the curator must beat random unseen questions by a clear margin."""

from __future__ import annotations

from curator.simulation import SimConfig, run_policy
from shared.runtime import Endpoints


def test_curator_beats_random(clean: Endpoints) -> None:
    # (run_policy turns the per-learner limit off: simulated learners answer faster than people)
    cfg = SimConfig(learners=6, items=60, skills=6, per_skill=30, checkpoints=(60,))
    adaptive = run_policy("adaptive", cfg, clean.database_url)
    random_ = run_policy("random", cfg, clean.database_url)
    assert adaptive["lessons"]["cold"] == 0 and random_["lessons"]["cold"] == 0  # every lesson was precomputed
    # mastery after 60 items: measured ~0.5 vs ~0.15 with these seeds; the margin leaves room for noise
    assert adaptive["mastery_after"][60] >= random_["mastery_after"][60] + 0.15, (adaptive, random_)
    # (items-to-mastery is not compared here: within 60 items almost nobody reaches the criterion, so
    # that mean is mostly the cap and flips with chance; `make eval` measures it over 400 items. Against
    # the fixed order it takes ~120 items on 4 skills for most learners to get there: adaptive 62-64 vs
    # fixed 75 items (5-6/6 vs 3/6 learners reaching it), a 0.83-0.86 ratio, and 36-43 s for the three
    # runs on the shared 2-core box: too slow and too thin a margin for this test.)
