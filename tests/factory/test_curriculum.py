"""The sample course file and the course-file checks."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from factory.offline.curriculum_file import (
    SAMPLE_CURRICULUM,
    CurriculumError,
    check_curriculum,
    level_rank,
    load_curriculum,
    topological_order,
)


@pytest.fixture(scope="module")
def sample() -> dict[str, Any]:
    return load_curriculum(SAMPLE_CURRICULUM)


def test_sample_course_is_a_spanish_course_with_at_least_30_skills(sample: dict[str, Any]) -> None:
    assert sample["course"]["id"] == "spanish-a1-b1"
    assert (sample["course"]["language"], sample["course"]["source_language"]) == ("es", "en")
    assert len(sample["skills"]) >= 30
    assert {s["level"] for s in sample["skills"]} == {"A1", "A2", "B1"}


def test_sample_skills_form_a_dag_with_prerequisites_at_or_below_their_level(sample: dict[str, Any]) -> None:
    by_id = {s["id"]: s for s in sample["skills"]}
    order = topological_order(sample)
    assert sorted(order) == sorted(by_id)
    position = {skill_id: i for i, skill_id in enumerate(order)}
    for skill in sample["skills"]:
        assert len(skill["id"]) <= 48
        for prereq in skill["prerequisites"]:
            assert position[prereq] < position[skill["id"]]
            assert level_rank(by_id[prereq]["level"]) <= level_rank(skill["level"])
    roots = [s["id"] for s in sample["skills"] if not s["prerequisites"]]
    assert roots and all(by_id[r]["level"] == "A1" for r in roots)


def _bad(sample: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(sample)


def _error(data: Any) -> str:
    with pytest.raises(CurriculumError) as exc_info:
        check_curriculum(data)
    return str(exc_info.value)


def test_unknown_prerequisite_names_the_skill_and_field(sample: dict[str, Any]) -> None:
    data = _bad(sample)
    data["skills"][3]["prerequisites"].append("foo")
    assert _error(data) == "skills[3].prerequisites: unknown skill 'foo'"


def test_cycle_is_reported_with_its_path(sample: dict[str, Any]) -> None:
    data = _bad(sample)
    index = {s["id"]: i for i, s in enumerate(data["skills"])}
    data["skills"][index["greetings"]]["prerequisites"].append("ser-identity")  # ser-identity needs greetings
    message = _error(data)
    assert message.startswith("skills[") and ".prerequisites: cycle " in message
    assert "greetings" in message and "ser-identity" in message


def test_self_prerequisite_is_rejected(sample: dict[str, Any]) -> None:
    data = _bad(sample)
    data["skills"][0]["prerequisites"] = ["greetings"]
    assert _error(data) == "skills[0].prerequisites: skill 'greetings' requires itself"


def test_bad_level_names_the_field(sample: dict[str, Any]) -> None:
    data = _bad(sample)
    data["skills"][2]["level"] = "Z9"
    assert _error(data).startswith("skills[2].level: 'Z9' is not one of")


def test_prerequisite_above_the_skill_level_is_rejected(sample: dict[str, Any]) -> None:
    data = _bad(sample)
    data["skills"][0]["prerequisites"] = ["commands"]  # greetings (A1) requiring a B1 skill
    assert _error(data) == "skills[0].prerequisites: 'commands' is level B1, above 'greetings' at A1"


def test_duplicate_id_names_the_second_occurrence(sample: dict[str, Any]) -> None:
    data = _bad(sample)
    data["skills"][5]["id"] = data["skills"][1]["id"]
    assert _error(data) == "skills[5].id: duplicate skill id 'numbers' (first at skills[1])"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["skills"][4].update(id="Bad Id"), "skills[4].id: 'Bad Id' does not match"),
        (lambda d: d["skills"][4].pop("name"), "skills[4].name: required field is missing"),
        (lambda d: d["skills"][4].update(colour="red"), "skills[4].colour: unexpected field"),
        (lambda d: d["course"].pop("language"), "course.language: required field is missing"),
        (lambda d: d.update(skills=[]), "skills: [] should be non-empty"),
    ],
)
def test_schema_violations_name_the_field(sample: dict[str, Any], mutate: Any, expected: str) -> None:
    data = _bad(sample)
    mutate(data)
    assert _error(data).startswith(expected)


def test_load_curriculum_reports_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(CurriculumError, match=r"^path: no course file at "):
        load_curriculum(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"course": ', encoding="utf-8")
    with pytest.raises(CurriculumError, match=r"^path: .* is not valid JSON"):
        load_curriculum(broken)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(load_curriculum()), encoding="utf-8")
    assert load_curriculum(good)["course"]["id"] == "spanish-a1-b1"
