"""The online learner model with the shipped params: behaviour a curator relies on."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curator.learner_model import DEFAULT_PARAMS_PATH, FEATURE_NAMES, LearnerModel

DAY = 86400.0


@pytest.fixture(scope="module")
def model() -> LearnerModel:
    return LearnerModel.load()


def answer(model: LearnerModel, learner: dict, skill: dict, correct: bool, now: float = 0.0,
           level: int = 0) -> None:
    model.update(learner, skill, model.new_item_state(level), correct, now)


def test_shipped_params_load_and_round_trip(model: LearnerModel, tmp_path: Path) -> None:
    data = json.loads(DEFAULT_PARAMS_PATH.read_text())
    assert data["feature_names"] == list(FEATURE_NAMES)
    model.save(tmp_path / "p.json")
    again = LearnerModel.load(tmp_path / "p.json")
    learner, skill, item = model.new_learner_state(), model.new_skill_state(1), model.new_item_state(1)
    assert again.predict(learner, skill, item, 0.0) == model.predict(learner, skill, item, 0.0)


def test_params_for_another_feature_set_are_refused(tmp_path: Path) -> None:
    data = json.loads(DEFAULT_PARAMS_PATH.read_text())
    data["feature_names"] = data["feature_names"][:-1]
    (tmp_path / "old.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="different feature set"):
        LearnerModel.load(tmp_path / "old.json")


def test_mastery_rises_with_right_answers_and_falls_with_wrong_ones(model: LearnerModel) -> None:
    learner, skill = model.new_learner_state(), model.new_skill_state(1)
    start = model.mastery(learner, skill, 0.0)
    history = [start]
    for _ in range(6):
        answer(model, learner, skill, True)
        history.append(model.mastery(learner, skill, 0.0))
    assert all(b > a for a, b in itertools.pairwise(history))

    learner, skill = model.new_learner_state(), model.new_skill_state(1)
    history = [start]
    for _ in range(6):
        answer(model, learner, skill, False)
        history.append(model.mastery(learner, skill, 0.0))
    assert all(b < a for a, b in itertools.pairwise(history))


def test_one_answer_moves_mastery_in_its_direction_after_mixed_history(model: LearnerModel) -> None:
    learner, skill = model.new_learner_state(), model.new_skill_state(0)
    for correct in (True, False, True, True, False, True):
        answer(model, learner, skill, correct)
    before = model.mastery(learner, skill, 0.0)
    right = json.loads(json.dumps((learner, skill)))
    wrong = json.loads(json.dumps((learner, skill)))
    answer(model, *right, True)
    answer(model, *wrong, False)
    assert model.mastery(*right, 0.0) > before > model.mastery(*wrong, 0.0)


def test_cold_start_orders_by_level(model: LearnerModel) -> None:
    learner = model.new_learner_state()
    masteries = [model.mastery(learner, model.new_skill_state(rank), 0.0) for rank in range(6)]
    assert masteries == sorted(masteries, reverse=True) and len(set(masteries)) == 6
    skill = model.new_skill_state(0)
    p_items = [model.predict(learner, skill, model.new_item_state(rank), 0.0) for rank in range(6)]
    assert p_items == sorted(p_items, reverse=True) and len(set(p_items)) == 6


def test_item_difficulty_is_calibrated_by_answers(model: LearnerModel) -> None:
    hard, easy = model.new_item_state(2), model.new_item_state(2)
    for k in range(30):
        learner, skill = model.new_learner_state(), model.new_skill_state(2)
        model.update(learner, skill, hard, k % 5 == 0, 0.0)
        learner, skill = model.new_learner_state(), model.new_skill_state(2)
        model.update(learner, skill, easy, k % 5 != 0, 0.0)
    assert hard["b"] > easy["b"] + 1.0
    assert hard["n"] == easy["n"] == 30 and hard["nc"] == 6
    learner, skill = model.new_learner_state(), model.new_skill_state(2)
    assert model.predict(learner, skill, easy, 0.0) > model.predict(learner, skill, hard, 0.0)


def test_time_only_matters_through_forgetting(model: LearnerModel) -> None:
    learner, skill = model.new_learner_state(), model.new_skill_state(0)
    for _ in range(4):
        answer(model, learner, skill, True, now=1_000_000.0)
    at = [model.mastery(learner, skill, 1_000_000.0 + days * DAY) for days in (0, 1, 7, 60)]
    assert at == sorted(at, reverse=True) and at[0] > at[-1]
    # with every timestamp equal (as in ASSISTments) the time term is exactly neutral
    assert model.forgetting(skill, 1_000_000.0) == 0.0
    assert model.features(learner, skill, model.new_item_state(0), 0.0) == model.features(
        learner, skill, model.new_item_state(0), 5 * DAY)


answers = st.lists(
    st.tuples(st.booleans(), st.integers(0, 5), st.integers(0, 2), st.integers(0, 3),
              st.floats(0.0, 400 * DAY, allow_nan=False)),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(answers)
def test_states_stay_json_and_predictions_in_open_interval(model: LearnerModel,
                                                            seq: list[tuple[bool, int, int, int, float]]) -> None:
    learner = model.new_learner_state()
    skills = [model.new_skill_state(rank) for rank in range(3)]
    items = [model.new_item_state(rank % 6) for rank in range(4)]
    now = 1_700_000_000.0
    for correct, _level, s, i, dt in seq:
        now += dt
        skill, item = skills[s], items[i]
        p = model.predict(learner, skill, item, now)
        assert 0.0 < p < 1.0
        assert 0.0 < model.mastery(learner, skill, now) < 1.0
        model.update(learner, skill, item, correct, now)
        for state in (learner, skill, item):
            assert json.loads(json.dumps(state, allow_nan=False)) == state
    restored = json.loads(json.dumps([learner, skills, items]))
    assert model.predict(restored[0], restored[1][0], restored[2][0], now) == model.predict(
        learner, skills[0], items[0], now)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 3)), min_size=1, max_size=40), st.integers(0, 5),
       st.integers(0, 400))
def test_every_answer_moves_mastery_its_way_whatever_the_history(
        model: LearnerModel, seq: list[tuple[bool, int]], level: int, others: int) -> None:
    """Monotone by construction (MASTERY_SIGNS), with or without a population, at any point."""
    population = model.population([{**model.new_item_state(level), "n": others, "nc": others // 2}])
    learner, skill = model.new_learner_state(), model.new_skill_state(level)
    items = [model.new_item_state((level + k) % 6) for k in range(4)]
    for correct, i in seq:
        pop = population if i != 3 else None
        before = model.mastery(learner, skill, 0.0, pop)
        model.update(learner, skill, items[i], correct, 0.0, pop)
        after = model.mastery(learner, skill, 0.0, pop)
        assert after > before if correct else after < before


def test_mastery_weights_against_their_signs_are_refused(tmp_path: Path) -> None:
    data = json.loads(DEFAULT_PARAMS_PATH.read_text())
    data["mastery"][FEATURE_NAMES.index("s_streak_wrong")] = 0.5  # more wrong answers, more mastery
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="MASTERY_SIGNS"):
        LearnerModel.load(tmp_path / "bad.json")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=40), st.integers(0, 4),
       st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=30))
def test_new_skill_mastery_is_mastery_bit_for_bit(model: LearnerModel, history: list[tuple[int, bool]], level: int,
                                                   others: list[tuple[int, bool]]) -> None:
    """The batch refill's two-halves mastery of a never-practised skill equals `mastery` exactly, whatever
    the learner's history and the skill's population (so it plans the same lessons)."""
    learner, skills = model.new_learner_state(), [model.new_skill_state(lv) for lv in range(4)]
    for k, (s, correct) in enumerate(history):
        answer(model, learner, skills[s], correct, now=k * 3600.0, level=s)
    population = LearnerModel.new_population_state()
    for lv, correct in others:  # other learners' answers on the new skill
        model.update(model.new_learner_state(), model.new_skill_state(level), model.new_item_state(lv), correct, 0.0,
                     population)
    for pop in (population, None):
        expected = model.mastery(learner, model.new_skill_state(level), 1e9, pop)
        assert model.new_skill_mastery(model.learner_readout(learner), model.skill_readout(level, pop)) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.floats(0, 5 * DAY)), min_size=1, max_size=40),
       st.floats(0, 30 * DAY), st.integers(0, 4), st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=30))
def test_typical_logits_are_predict_on_the_typical_item(model: LearnerModel, history: list[tuple[int, bool, float]],
                                                         later: float, level: int,
                                                         others: list[tuple[int, bool]]) -> None:
    """What the planner aims from is the full model: `typical_logit` (stored by the answer path, with
    `mastery` unchanged) is `predict` on the skill's typical item, forgetting apart, and the batch
    refill's two-halves `new_skill_typical_logit` is `typical_logit` of a never-practised skill."""
    learner, skills = model.new_learner_state(), [model.new_skill_state(lv) for lv in range(4)]
    population = LearnerModel.new_population_state()
    for lv, correct in others:  # other learners' answers on the skill
        model.update(model.new_learner_state(), model.new_skill_state(level), model.new_item_state(lv), correct, 0.0,
                     population)
    now = 0.0
    for s, correct, gap in history:
        now += gap
        model.update(learner, skills[s], model.new_item_state(s), correct, now, population if s == 0 else None)
    assert model.learner_features(learner) == model.features(learner, skills[0], model.new_item_state(0), now)[1:15]
    sk, later = skills[history[-1][0]], now + later
    pop = population if history[-1][0] == 0 else None
    mastery, typical = model.mastery_and_typical(learner, sk, later, pop)
    assert mastery == model.mastery(learner, sk, later, pop)
    assert typical == model.typical_logit(learner, sk, later, pop)
    full = model.predict(learner, sk, model.typical_item(sk, pop), later, pop)
    assert abs(1 / (1 + math.exp(model.forgetting(sk, later) - typical)) - full) < 1e-12
    for p in (population, None):
        new = model.new_skill_state(level)
        split = model.new_skill_typical_logit(model.learner_typical_half(learner), model.skill_typical_half(level, p))
        assert abs(split - model.typical_logit(learner, new, later, p)) < 1e-9
