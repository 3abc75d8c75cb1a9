"""Versioned prompt templates (``<name>_v<N>.txt`` next to this module) and their rendering.

A template never changes once released: a new wording is a new version, and every generated item
records the version that wrote it (``ItemProvenance.prompt_version``).

Two kinds of data go into the generation prompt, each inside a delimited block as JSON:

* ``BATCH_SPEC_JSON`` — the course, skills, level, types and count (ours, machine-readable: the fake
  provider server reads it back with :func:`extract_spec`);
* ``UNTRUSTED_TOPIC_JSON`` — the designer's free-text topic, JSON-escaped and described to the model
  as untrusted data. ``<`` and ``>`` are escaped too (``\\u003c``), so no topic can close the block
  and smuggle text outside it. ``string.Template`` never re-reads substituted text, so a topic
  holding ``${count}`` stays literal.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

PROMPT_DIR = Path(__file__).parent
PROMPT_VERSION = "v1"
"""The version new batches use."""

SPEC_BLOCK = "BATCH_SPEC_JSON"
TOPIC_BLOCK = "UNTRUSTED_TOPIC_JSON"
_SPEC_RE = re.compile(r"<<<BATCH_SPEC_JSON\n(.*?)\nBATCH_SPEC_JSON>>>", re.DOTALL)
_TOPIC_RE = re.compile(r"<<<UNTRUSTED_TOPIC_JSON\n(.*?)\nUNTRUSTED_TOPIC_JSON>>>", re.DOTALL)
_SKILL_FIELDS = ("id", "name", "level", "description")


@dataclass(frozen=True)
class RenderedPrompt:
    version: str  # e.g. "generate_v1"
    system: str
    user: str


@cache
def load(name: str, version: str = PROMPT_VERSION) -> Template:
    """The template ``<name>_<version>.txt``; ``FileNotFoundError`` names a missing one."""
    return Template((PROMPT_DIR / f"{name}_{version}.txt").read_text(encoding="utf-8"))


def data_json(value: Any) -> str:
    """JSON for a data block: readable Unicode, but ``<`` and ``>`` escaped so nothing closes it."""
    return json.dumps(value, ensure_ascii=False, indent=None).replace("<", "\\u003c").replace(">", "\\u003e")


def render_generation(
    *,
    course: dict[str, Any],
    skills: list[dict[str, Any]],
    level: str | None,
    topic: str | None,
    types: list[str],
    count: int,
    language: str,
    version: str = PROMPT_VERSION,
) -> RenderedPrompt:
    """The system and user messages asking for one batch."""
    spec = {
        "course": {
            "id": course.get("id"),
            "name": course.get("name"),
            "target_language": course.get("language", language),
            "learner_language": course.get("source_language"),
        },
        "skills": [{k: s.get(k) for k in _SKILL_FIELDS} for s in skills],
        "level": level,
        "types": list(types),
        "count": count,
        "language": language,
    }
    user = load("generate", version).substitute(
        count=count, spec_json=data_json(spec), topic_json=data_json(topic or None)
    )
    return RenderedPrompt(version=f"generate_{version}", system=load("system", version).substitute(), user=user)


_ADVICE = {
    "truncated": "Keep explanations short so the whole reply fits.",
    "refusal": "The task is ordinary language-teaching material; write it for the listed skills.",
}


def render_repair(kind: str, problem: str, errors: tuple[str, ...], count: int, version: str = PROMPT_VERSION) -> str:
    """The follow-up message sending a failed reply's errors back for one corrected reply."""
    listed = "\n".join(f"- {e}" for e in errors[:10]) or f"- {problem}"
    return load("repair", version).substitute(
        problem=problem, errors=listed, count=count, advice=_ADVICE.get(kind, "")
    ).rstrip() + "\n"


def extract_spec(text: str) -> dict[str, Any] | None:
    """The BATCH_SPEC block of a rendered prompt, parsed; None when absent or broken."""
    match = _SPEC_RE.search(text)
    if match is None:
        return None
    try:
        spec = json.loads(match.group(1))
    except ValueError:
        return None
    return spec if isinstance(spec, dict) else None


def extract_topic(text: str) -> str | None:
    """The topic quoted in a rendered prompt (the inverse of the escaping), for tests and the fake."""
    match = _TOPIC_RE.search(text)
    if match is None:
        return None
    value = json.loads(match.group(1))
    return value if isinstance(value, str) else None
