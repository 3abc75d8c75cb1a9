"""The offline rule-based tier: every skill of the sample course, every type, valid and deterministic."""

from __future__ import annotations

from typing import Any

import pytest

from factory.offline import OfflineGenerator, load_curriculum
from factory.offline.builders import english_variants
from factory.offline.language_data import shipped_data
from factory.schemas import QUESTION_TYPES
from factory.validation import content_hash, normalise_text, validate_item

CURRICULUM = load_curriculum()
SKILLS = CURRICULUM["skills"]
SKILL_IDS = [s["id"] for s in SKILLS]


@pytest.fixture(scope="module")
def generator() -> OfflineGenerator:
    return OfflineGenerator()


@pytest.mark.parametrize("qtype", QUESTION_TYPES)
@pytest.mark.parametrize("skill", SKILLS, ids=SKILL_IDS)
def test_every_skill_yields_valid_items_of_every_type(
    generator: OfflineGenerator, skill: dict[str, Any], qtype: str
) -> None:
    items = generator.generate(skill, [qtype], 6, seed="t")
    assert len(items) == 6
    for item in items:
        result = validate_item(item, skill=skill)
        assert result.errors == (), (item, result.errors)
        assert result.warnings == (), (item, result.warnings)
        assert item["type"] == qtype and item["skill"] == skill["id"]


def test_types_are_cycled_in_order(generator: OfflineGenerator) -> None:
    skill = SKILLS[0]
    items = generator.generate(skill, ["cloze", "translation", "multiple_choice"], 7, seed="cycle")
    assert [i["type"] for i in items] == ["cloze", "translation", "multiple_choice"] * 2 + ["cloze"]


@pytest.mark.parametrize("skill", SKILLS, ids=SKILL_IDS)
def test_generation_is_deterministic_per_seed(generator: OfflineGenerator, skill: dict[str, Any]) -> None:
    types = list(QUESTION_TYPES)
    first = generator.generate(skill, types, 9, seed="seed-1")
    assert generator.generate(skill, types, 9, seed="seed-1") == first
    assert OfflineGenerator().generate(skill, types, 9, seed="seed-1") == first
    assert generator.generate(skill, types, 9, seed="seed-2") != first


@pytest.mark.parametrize("skill", SKILLS, ids=SKILL_IDS)
def test_each_skill_has_at_least_40_distinct_items_across_seeds(
    generator: OfflineGenerator, skill: dict[str, Any]
) -> None:
    hashes = {
        content_hash(item)
        for seed in range(12)
        for item in generator.generate(skill, list(QUESTION_TYPES), 12, seed=str(seed))
    }
    assert len(hashes) >= 40


def test_one_call_avoids_repeats_while_the_pool_lasts(generator: OfflineGenerator) -> None:
    items = generator.generate(SKILLS[0], ["cloze"], 8, seed="x")
    assert len({content_hash(i) for i in items}) == 8
    many = generator.generate(SKILLS[0], ["cloze"], 40, seed="x")  # more than the pool: repeats allowed
    assert len(many) == 40 and all(validate_item(i).valid for i in many)


def test_multiple_choice_answer_is_a_choice_and_cloze_has_a_hint_or_context(
    generator: OfflineGenerator,
) -> None:
    skill = next(s for s in SKILLS if s["id"] == "present-regular")
    for item in generator.generate(skill, ["multiple_choice", "cloze"], 20, seed="shape"):
        if item["type"] == "multiple_choice":
            assert item["answer"] in item["choices"]
        else:
            assert "___ (" in item["prompt"]  # e.g. "Yo ___ (hablar) español en clase."


def test_conjugation_tables_are_real_spanish() -> None:
    data = shipped_data()
    assert [data.conjugate("hablar", "present", p) for p in range(6)] == [
        "hablo",
        "hablas",
        "habla",
        "hablamos",
        "habláis",
        "hablan",
    ]
    assert data.conjugate("tener", "preterite", 2) == "tuvo"
    assert data.conjugate("dormir", "preterite", 5) == "durmieron"
    assert data.conjugate("ir", "imperfect", 3) == "íbamos"
    assert data.conjugate("hacer", "future", 0) == "haré"
    assert data.conjugate("poder", "conditional", 1) == "podrías"
    assert data.conjugate("pedir", "subjunctive", 3) == "pidamos"
    assert data.conjugate("tener", "subjunctive", 3) == "tengamos"
    assert data.conjugate("empezar", "subjunctive", 0) == "empiece"
    assert data.conjugate("levantarse", "perfect", 0) == "me he levantado"
    assert data.conjugate("volver", "perfect", 5) == "han vuelto"
    assert data.conjugate("decir", "imperative", 1) == "di"
    assert data.english("hablar", "present", 2) == "speaks"
    assert data.english("ser", "preterite", 3) == "were"
    assert data.english("poder", "future", 0) == "will be able to"


def test_translations_accept_pronoun_dropped_and_usted_variants(generator: OfflineGenerator) -> None:
    skill = next(s for s in SKILLS if s["id"] == "present-regular")
    items = generator.generate(skill, ["translation"], 140, seed="alts")
    to_spanish = {i["prompt"]: i for i in items}
    item = to_spanish['Translate into Spanish: "You speak Spanish in class."']
    assert item["answer"] == "Tú hablas español en clase."
    assert {"Hablas español en clase.", "Usted habla español en clase."} <= set(item["accepted_answers"])


def test_english_contractions_are_accepted_both_ways() -> None:
    assert english_variants("I am tired.") == ["I'm tired."]
    assert english_variants("It's late.") == ["It is late."]
    assert english_variants("I have a shower.", frozenset({"seen"})) == []
    assert english_variants("I have seen it.", frozenset({"seen"})) == ["I've seen it."]


def test_bad_requests_raise_errors_naming_the_field(generator: OfflineGenerator) -> None:
    with pytest.raises(ValueError, match=r"^types: unknown question type 'essay'"):
        generator.generate(SKILLS[0], ["essay"], 1, seed="s")
    with pytest.raises(ValueError, match=r"^types: choose at least one"):
        generator.generate(SKILLS[0], [], 1, seed="s")
    with pytest.raises(ValueError, match=r"^count: must not be negative"):
        generator.generate(SKILLS[0], ["cloze"], -1, seed="s")
    with pytest.raises(ValueError, match=r"^skill: no offline language data for 'klingon'"):
        generator.generate({"id": "klingon", "level": "A1"}, ["cloze"], 1, seed="s")
    assert generator.generate(SKILLS[0], ["cloze"], 0, seed="s") == []


def test_every_curriculum_skill_is_covered_and_no_data_is_orphaned(generator: OfflineGenerator) -> None:
    assert set(generator.data.skills) == set(SKILL_IDS)
    assert all(generator.covers(skill_id) for skill_id in SKILL_IDS)


def test_shipped_sentences_have_distractors_that_differ_from_the_key() -> None:
    data = shipped_data()
    for skill_id, material in data.skills.items():
        for sentence in material.get("sentences", []):
            key = sentence["es"].split("[")[1].split("]")[0]
            wrong = {normalise_text(d) for d in sentence["d"]}
            assert normalise_text(key) not in wrong, (skill_id, sentence["es"])
            assert len(wrong) >= 2, (skill_id, sentence["es"])
