"""Item validation: the JSON Schemas, the semantic checks, and the strict-mode shape of the schemas."""

from __future__ import annotations

from typing import Any

import pytest

from factory.schemas import QUESTION_TYPES, batch_schema, item_schema
from factory.validation import (
    MAX_PROMPT_CHARS,
    ValidationResult,
    content_hash,
    normalise_text,
    validate_item,
)

SKILL = {"id": "present-regular", "name": "Present tense", "level": "A1"}


def mc(**changes: Any) -> dict[str, Any]:
    item = {
        "type": "multiple_choice",
        "skill": "present-regular",
        "prompt": 'Which form completes the sentence? "Nosotros ___ (comer) en casa."',
        "choices": ["comemos", "comen", "como", "coméis"],
        "answer": "comemos",
        "accepted_answers": [],
        "explanation": '"comemos" is the nosotros form of comer.',
        "difficulty": "easy",
    }
    return {**item, **changes}


def cloze(**changes: Any) -> dict[str, Any]:
    item = {
        "type": "cloze",
        "skill": "present-regular",
        "prompt": "Yo ___ (hablar) español.",
        "choices": None,
        "answer": "hablo",
        "accepted_answers": [],
        "explanation": '"hablo" is the yo form of hablar.',
        "difficulty": "easy",
    }
    return {**item, **changes}


def translation(**changes: Any) -> dict[str, Any]:
    item = {
        "type": "translation",
        "skill": "present-regular",
        "prompt": 'Translate into Spanish: "I would like a coffee, please."',
        "choices": None,
        "answer": "Me gustaría un café, por favor.",
        "accepted_answers": ["Quería un café, por favor."],
        "explanation": "Me gustaría is the polite way to ask.",
        "difficulty": "medium",
    }
    return {**item, **changes}


def errors_of(item: Any, **kwargs: Any) -> tuple[str, ...]:
    result = validate_item(item, **kwargs)
    assert result.valid is (not result.errors)
    return result.errors


@pytest.mark.parametrize("make", [mc, cloze, translation])
def test_good_items_pass_without_errors_or_warnings(make: Any) -> None:
    assert validate_item(make(), skill=SKILL) == ValidationResult(True, (), ())


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (mc(answer="bebemos"), "choices: answer 'bebemos' is not among the choices"),
        (mc(choices=["comemos", "comen", "Comemos."]), "choices[2]: duplicates choices[0] ('Comemos.')"),
        (mc(choices=["comemos", "comen"]), "choices: expected 3 to 5 choices, got 2"),
        (
            mc(choices=["comemos", "comen", "como", "coméis", "comes", "come"]),
            "choices: expected 3 to 5 choices, got 6",
        ),
        (mc(choices=["comemos", " ", "como"]), "choices[1]: must not be empty"),
        (
            cloze(prompt="Yo (hablar) español."),
            "prompt: a cloze prompt needs exactly one blank '___', found 0",
        ),
        (
            cloze(prompt="Yo ___ (hablar) ___."),
            "prompt: a cloze prompt needs exactly one blank '___', found 2",
        ),
        (
            cloze(prompt="Yo _____ (hablar) español."),
            "prompt: write the blank as exactly three underscores '___'",
        ),
        (cloze(prompt="Yo ___ (hablar) español: hablo."), "prompt: gives away the answer 'hablo'"),
        (
            translation(prompt='Translate into Spanish: "Me gustaría un café, por favor."'),
            "prompt: gives away the answer 'Me gustaría un café, por favor.'",
        ),
        (
            translation(prompt='"I would like a coffee, please."'),
            "prompt: a translation prompt must state the direction, e.g. 'Translate into Spanish: ...'",
        ),
        (
            translation(accepted_answers=["me gustaría un café, por favor"]),
            "accepted_answers[0]: repeats the answer 'Me gustaría un café, por favor.'",
        ),
        (
            translation(accepted_answers=["Quiero un café.", "quiero un café"]),
            "accepted_answers[1]: duplicate accepted answer 'quiero un café'",
        ),
        (
            cloze(prompt="Yo ___ " + "x" * MAX_PROMPT_CHARS),
            f"prompt: {MAX_PROMPT_CHARS + 7} characters, more than the limit of {MAX_PROMPT_CHARS}",
        ),
        (cloze(answer="x" * 121), "answer: 121 characters, more than the limit of 120"),
        (cloze(explanation="  "), "explanation: must not be empty"),
        (
            cloze(skill="Present Regular"),
            "skill: 'Present Regular' is not a skill id (lowercase letters, digits, '-')",
        ),
    ],
)
def test_semantic_faults_are_errors_naming_the_field(item: dict[str, Any], expected: str) -> None:
    assert expected in errors_of(item)


def test_wrong_skill_is_an_error_when_a_skill_is_requested() -> None:
    assert errors_of(cloze(skill="numbers"), skill=SKILL) == (
        "skill: expected 'present-regular', got 'numbers'",
    )
    assert errors_of(cloze(skill="numbers")) == ()


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({**cloze(), "hint": "hablar"}, "hint: unexpected field"),
        ({k: v for k, v in cloze().items() if k != "answer"}, "answer: required field is missing"),
        (cloze(difficulty="trivial"), "difficulty: 'trivial' is not one of ['easy', 'medium', 'hard']"),
        (mc(choices=None), "choices: None is not of type 'array'"),
        (translation(choices=["a", "b", "c"]), "choices: ['a', 'b', 'c'] is not of type 'null'"),
        (cloze(accepted_answers=["ok", 3]), "accepted_answers[1]: 3 is not of type 'string'"),
        (cloze(type="essay"), "type: unknown question type 'essay'"),
        ({"prompt": "x"}, "type: unknown question type None"),
        (["not", "an", "object"], "item: expected a JSON object"),
    ],
)
def test_schema_violations_are_errors_naming_the_field(item: Any, expected: str) -> None:
    assert expected in errors_of(item)


def test_schema_errors_stop_before_semantic_checks() -> None:
    assert errors_of({**mc(answer="nope"), "extra": 1}) == ("extra: unexpected field",)


def test_cloze_word_bank_must_hold_the_answer() -> None:
    assert validate_item(cloze(choices=["hablo", "hablas", "habla"])).valid
    assert "choices: answer 'hablo' is not among the choices" in errors_of(cloze(choices=["hablas", "habla"]))


def test_warnings_flag_odd_distractors_and_difficulty_for_level() -> None:
    result = validate_item(
        mc(choices=["comemos", "comen", "como", "comemos todos los días en casa"]), skill=SKILL
    )
    assert result.valid
    assert result.warnings == (
        "choices: distractor 'comemos todos los días en casa' is much longer than the answer",
    )
    result = validate_item(cloze(difficulty="hard"), skill=SKILL)
    assert result.valid and result.warnings == ("difficulty: 'hard' is unusual for level A1",)
    assert validate_item(cloze(difficulty="easy"), level="B1").warnings == (
        "difficulty: 'easy' is unusual for level B1",
    )


def test_leak_check_matches_whole_words_only() -> None:
    # "habla" is inside the hint "hablar" but is not given away by it.
    assert validate_item(cloze(prompt="Ella ___ (hablar) español.", answer="habla")).valid


def test_normalise_text_keeps_accents_unless_asked() -> None:
    assert normalise_text("  ¿Dónde   está el BAÑO?  ") == "dónde está el baño"
    assert normalise_text("¡Él habla!", strict_accents=False) == "el habla"
    assert normalise_text("él") != normalise_text("el")
    assert normalise_text("Año", strict_accents=False) == "año"


def test_content_hash_ignores_presentation_but_not_content() -> None:
    base = content_hash(mc())
    assert content_hash(mc(choices=["coméis", "como", "comen", "comemos"], explanation="other")) == base
    assert content_hash(mc(prompt=mc()["prompt"].upper() + "  ")) == base
    assert content_hash(mc(answer="comen")) != base
    assert content_hash(cloze()) != content_hash(cloze(prompt="Tú ___ (hablar) español."))
    assert len(base) == 64


def _strict_problems(schema: Any, path: str = "$") -> list[str]:
    """OpenAI Structured Outputs strict mode: closed objects, every property required, supported keywords."""
    allowed = {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "enum",
        "const",
        "anyOf",
        "items",
        "$defs",
        "$ref",
        "description",
    }
    problems: list[str] = []
    if isinstance(schema, dict):
        problems += [f"{path}: unsupported keyword {k!r}" for k in schema if k not in allowed]
        types = schema.get("type")
        if types == "object" or (isinstance(types, list) and "object" in types):
            if schema.get("additionalProperties") is not False:
                problems.append(f"{path}: additionalProperties must be false")
            if set(schema.get("required", [])) != set(schema.get("properties", {})):
                problems.append(f"{path}: every property must be required")
        for key, sub in schema.get("properties", {}).items():
            problems += _strict_problems(sub, f"{path}.{key}")
        for i, sub in enumerate(schema.get("anyOf", [])):
            problems += _strict_problems(sub, f"{path}.anyOf[{i}]")
        for name, sub in schema.get("$defs", {}).items():
            problems += _strict_problems(sub, f"{path}.$defs.{name}")
        if "items" in schema:
            problems += _strict_problems(schema["items"], f"{path}.items")
    return problems


@pytest.mark.parametrize("types", [list(QUESTION_TYPES), ["cloze"], ["translation", "multiple_choice"]])
def test_batch_schema_is_strict_mode_compatible(types: list[str]) -> None:
    schema = batch_schema(types)
    assert schema["type"] == "object"  # strict mode needs an object at the root, not anyOf
    assert _strict_problems(schema) == []


def test_item_schemas_are_strict_and_fix_their_type() -> None:
    for qtype in QUESTION_TYPES:
        schema = item_schema(qtype)
        assert _strict_problems(schema) == []
        assert schema["properties"]["type"]["enum"] == [qtype]
    assert _strict_problems({"type": "object", "properties": {"a": {"type": "string", "minLength": 1}}}) == [
        "$: additionalProperties must be false",
        "$: every property must be required",
        "$.a: unsupported keyword 'minLength'",
    ]


def test_batch_schema_rejects_unknown_types_and_item_schema_returns_copies() -> None:
    with pytest.raises(ValueError, match="types: unknown question type 'essay'"):
        batch_schema(["essay"])
    with pytest.raises(ValueError, match="type: unknown question type 'essay'"):
        item_schema("essay")
    item_schema("cloze")["properties"].clear()
    assert item_schema("cloze")["properties"]
