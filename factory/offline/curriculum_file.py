"""Load and check a course file (``curricula/*.json``): its JSON Schema, then the skills graph.

The graph rules: skill ids are unique, every prerequisite names a skill of the same course, the
prerequisites form a DAG, and no skill requires a skill of a higher CEFR level. Every failure is a
:class:`CurriculumError` whose message starts with the field at fault, e.g.
``skills[3].prerequisites: unknown skill 'foo'``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from factory.schemas import curriculum_schema

CEFR_LEVELS: tuple[str, ...] = ("A1", "A2", "B1", "B2", "C1", "C2")
SAMPLE_CURRICULUM = Path(__file__).resolve().parents[2] / "curricula" / "spanish_a1_b1.json"


class CurriculumError(ValueError):
    """A course file is malformed; ``str(err)`` names the field and the skill at fault."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def level_rank(level: str) -> int:
    """Return the CEFR level's rank: A1 is 0, A2 is 1, B1 is 2, ..."""
    return CEFR_LEVELS.index(level)


def _schema_error(data: Any) -> str | None:
    validator = Draft202012Validator(curriculum_schema())
    err = next(iter(sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))), None)
    if err is None:
        return None
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path).lstrip(".")
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        return f"{path + '.' if path else ''}{extra[0]}: unexpected field"
    if err.validator == "required":
        return f"{path + '.' if path else ''}{err.message.split(chr(39))[1]}: required field is missing"
    return f"{path or 'curriculum'}: {err.message}"


def _find_cycle(skills: list[dict[str, Any]]) -> list[str] | None:
    graph = {s["id"]: s["prerequisites"] for s in skills}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in graph[node]:
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep] if dep in path else [node, dep]
            if dep not in state and (cycle := visit(dep, [*path, dep])):
                return cycle
        state[node] = 2
        return None

    for skill_id in graph:
        if skill_id not in state and (cycle := visit(skill_id, [skill_id])):
            return cycle
    return None


def check_curriculum(data: Any) -> dict[str, Any]:
    """Check an already parsed course and return it; raise :class:`CurriculumError` when bad."""
    if (message := _schema_error(data)) is not None:
        raise CurriculumError(message)
    skills: list[dict[str, Any]] = data["skills"]
    index: dict[str, int] = {}
    for i, skill in enumerate(skills):
        if skill["id"] in index:
            raise CurriculumError(
                f"skills[{i}].id: duplicate skill id {skill['id']!r} (first at skills[{index[skill['id']]}])"
            )
        index[skill["id"]] = i
    for i, skill in enumerate(skills):
        for prereq in skill["prerequisites"]:
            if prereq not in index:
                raise CurriculumError(f"skills[{i}].prerequisites: unknown skill {prereq!r}")
            if prereq == skill["id"]:
                raise CurriculumError(f"skills[{i}].prerequisites: skill {prereq!r} requires itself")
            other = skills[index[prereq]]
            if level_rank(other["level"]) > level_rank(skill["level"]):
                raise CurriculumError(
                    f"skills[{i}].prerequisites: {prereq!r} is level {other['level']}, "
                    f"above {skill['id']!r} at {skill['level']}"
                )
    if (cycle := _find_cycle(skills)) is not None:
        first = index[cycle[0]]
        raise CurriculumError(f"skills[{first}].prerequisites: cycle {' -> '.join(cycle)}")
    checked: dict[str, Any] = data
    return checked


def load_curriculum(path: Path | str = SAMPLE_CURRICULUM) -> dict[str, Any]:
    """Read a course file, check it, and return ``{"course": {...}, "skills": [...]}``."""
    try:
        with Path(path).open(encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError as exc:
        raise CurriculumError(f"path: no course file at {path}") from exc
    except json.JSONDecodeError as exc:
        raise CurriculumError(f"path: {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    return check_curriculum(data)


def topological_order(curriculum: dict[str, Any]) -> list[str]:
    """Return the skill ids so that every skill comes after its prerequisites (file order on ties)."""
    done: list[str] = []
    placed: set[str] = set()
    pending = list(curriculum["skills"])
    while pending:
        ready = [s for s in pending if set(s["prerequisites"]) <= placed]
        for skill in ready:
            done.append(skill["id"])
            placed.add(skill["id"])
        pending = [s for s in pending if s["id"] not in placed]
    return done
