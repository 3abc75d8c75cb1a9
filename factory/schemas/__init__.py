"""JSON Schemas of generated questions, and of course files.

One strict schema per question type lives next to this module as ``<type>.json``. They stay inside
the subset OpenAI Structured Outputs accepts in *strict* mode: every object closes with
``additionalProperties: false`` and lists every property in ``required``; optional values are
``"type": [..., "null"]``; no length, pattern or range keywords (those limits are semantic checks in
:mod:`factory.validation`). The same files validate items from every tier, so an LLM item and an
offline item go through one gate.

``curriculum.json`` is a plain draft 2020-12 schema (not sent to any model) for ``curricula/*.json``.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).parent

QUESTION_TYPES: tuple[str, ...] = ("multiple_choice", "cloze", "translation")
"""Every question type the factory generates, validates and serves."""


@cache
def _load(name: str) -> dict[str, Any]:
    with (SCHEMA_DIR / f"{name}.json").open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def item_schema(qtype: str) -> dict[str, Any]:
    """Return (a copy of) the strict JSON Schema of one question type.

    Raises ``ValueError`` naming the type when it is not one of :data:`QUESTION_TYPES`.
    """
    if qtype not in QUESTION_TYPES:
        raise ValueError(f"type: unknown question type {qtype!r}")
    return copy.deepcopy(_load(qtype))


def batch_schema(types: list[str]) -> dict[str, Any]:
    """Return a strict schema for a model's whole answer: ``{"items": [item, ...]}``.

    Strict mode needs an object at the root, so the items sit under ``items``; each is ``anyOf``
    the chosen types' schemas (a single type is used directly). Order and duplicates in ``types``
    do not matter; an empty list means every type.
    """
    for qtype in types:
        if qtype not in QUESTION_TYPES:
            raise ValueError(f"types: unknown question type {qtype!r}")
    chosen = [t for t in QUESTION_TYPES if t in set(types)] if types else list(QUESTION_TYPES)
    schemas = [item_schema(t) for t in chosen]
    item: dict[str, Any] = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    return {
        "type": "object",
        "description": "A batch of generated questions.",
        "properties": {"items": {"type": "array", "items": item, "description": "The generated questions."}},
        "required": ["items"],
        "additionalProperties": False,
    }


def curriculum_schema() -> dict[str, Any]:
    """Return (a copy of) the JSON Schema of a course file."""
    return copy.deepcopy(_load("curriculum"))
