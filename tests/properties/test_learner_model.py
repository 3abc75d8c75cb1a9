"""Property tests of the learner model (curator/learner_model.py) that tests/curator does not already
cover: from ANY state, a correct answer never leaves mastery lower than a wrong one would; the update
touches the skill it is given only (the others' states, and what the model reads of them, stay as they
were); and the item step `update` returns replays exactly what it did to the item."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curator.learner_model import FEATURE_NAMES, LearnerModel

DAY = 86400.0
history = st.lists(
    st.tuples(st.booleans(), st.integers(0, 2), st.integers(0, 3), st.floats(0.0, 30 * DAY, allow_nan=False)),
    max_size=40,
)


@pytest.fixture(scope="module")
def model() -> LearnerModel:
    return LearnerModel.load()


def replay(model: LearnerModel, seq: list[tuple[bool, int, int, float]]) -> tuple[dict, list[dict], list[dict], float]:
    learner = model.new_learner_state()
    skills = [model.new_skill_state(rank) for rank in range(3)]
    items = [model.new_item_state(rank) for rank in range(4)]
    now = 1_700_000_000.0
    for correct, s, i, dt in seq:
        now += dt
        model.update(learner, skills[s], items[i], correct, now)
    return learner, skills, items, now


@settings(max_examples=150, deadline=None)
@given(history, st.integers(0, 2), st.integers(0, 3), st.floats(0.0, 10 * DAY, allow_nan=False))
def test_a_correct_answer_never_lowers_mastery_below_a_wrong_one(model: LearnerModel, seq: list, s: int, i: int,
                                                                 dt: float) -> None:
    learner, skills, items, now = replay(model, seq)
    now += dt
    outcomes = {}
    for correct in (True, False):
        lr, sk, it = copy.deepcopy(learner), copy.deepcopy(skills[s]), copy.deepcopy(items[i])
        model.update(lr, sk, it, correct, now)
        outcomes[correct] = (model.mastery(lr, sk, now), model.predict(lr, sk, it, now))
    assert outcomes[True][0] >= outcomes[False][0]
    assert outcomes[True][1] >= outcomes[False][1]


SKILL_ONLY = [k for k, name in enumerate(FEATURE_NAMES) if name.startswith("s_")
              and name not in ("s_log_gap", "s_win_share")]
"""The features that read the skill's own state alone (the gap and the window share count the
learner's answers on other skills: those move with any answer, by design)."""


@settings(max_examples=100, deadline=None)
@given(history, st.integers(0, 2), st.booleans())
def test_an_answer_changes_only_its_own_skill(model: LearnerModel, seq: list, s: int, correct: bool) -> None:
    learner, skills, items, now = replay(model, seq)
    others = {k: copy.deepcopy(sk) for k, sk in enumerate(skills) if k != s}
    before = {k: model.features(learner, sk, items[1], now + 60) for k, sk in enumerate(skills)}
    answered = copy.deepcopy(skills[s])
    model.update(learner, skills[s], items[0], correct, now + 60)
    after = {k: model.features(learner, sk, items[1], now + 60) for k, sk in enumerate(skills)}
    # every skill state went through the same updates (replay): none shares a mutable part with another
    assert {k: sk for k, sk in enumerate(skills) if k != s} == others
    assert skills[s] != answered and skills[s]["n"] == answered["n"] + 1
    # what the model reads of another skill's own state is what it read before the answer; the
    # answered skill's moved
    for k in others:
        assert [after[k][j] for j in SKILL_ONLY] == [before[k][j] for j in SKILL_ONLY]
    assert [after[s][j] for j in SKILL_ONLY] != [before[s][j] for j in SKILL_ONLY]


@settings(max_examples=100, deadline=None)
@given(history, st.integers(0, 2), st.integers(0, 3), st.booleans())
def test_update_applies_the_item_step_it_returns(model: LearnerModel, seq: list, s: int, i: int,
                                                 correct: bool) -> None:
    """The answer path re-applies an answer's step to a question's latest state when a concurrent
    answer moved it first (serving/progress.py): the step must be exactly what `update` did to the item."""
    learner, skills, items, now = replay(model, seq)
    replayed = copy.deepcopy(items[i])
    if i == 3:  # an item state stored before the run counters existed
        del items[i]["run_n"], items[i]["run_nc"], replayed["run_n"], replayed["run_nc"]
    step = model.update(learner, skills[s], items[i], correct, now + 60)
    model.apply_item_step(replayed, step)
    assert replayed == items[i]
