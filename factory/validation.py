"""The gate every generated item passes before staging: JSON Schema, then semantic checks.

``validate_item`` never raises on bad content: it returns a :class:`ValidationResult` whose errors
each start with the field at fault (``choices: answer 'x' is not among the choices``), so a
provider's bad output is recorded as a failure with a reason, never a crash. Warnings flag items a
reviewer should look at (an odd distractor, a difficulty unusual for the level) without blocking.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from factory.schemas import QUESTION_TYPES, item_schema

MAX_PROMPT_CHARS = 300
MAX_ANSWER_CHARS = 120
MAX_CHOICE_CHARS = 120
MAX_EXPLANATION_CHARS = 600
MIN_CHOICES = 3
MAX_CHOICES = 5
BLANK = "___"
# A distractor this many times longer (or shorter) than the answer, and at least
# DISTRACTOR_MIN_GAP characters apart, gives itself away.
DISTRACTOR_LENGTH_RATIO = 3.0
DISTRACTOR_MIN_GAP = 12
LEVEL_DIFFICULTIES: dict[str, frozenset[str]] = {
    "A1": frozenset({"easy", "medium"}),
    "A2": frozenset({"easy", "medium", "hard"}),
    "B1": frozenset({"medium", "hard"}),
    "B2": frozenset({"medium", "hard"}),
    "C1": frozenset({"hard"}),
    "C2": frozenset({"hard"}),
}
SKILL_ID_RE = re.compile(r"^[a-z0-9-]{1,48}$")
TRANSLATION_DIRECTION_RE = re.compile(r"\btranslate (?:in)?to (?:spanish|english)\b", re.IGNORECASE)
_BLANK_RUN_RE = re.compile(r"_{3,}")
_EDGE_PUNCT = "¿?¡!.,;:…\"'«»“”‘’()[] \t\n"
_ACCENT_FOLD = str.maketrans("áéíóúüàèìòù", "aeiouuaeiou")
_WORD_RE = re.compile(r"\w+")


@dataclass(frozen=True)
class ValidationResult:
    """The verdict on one item: ``valid`` is true exactly when ``errors`` is empty."""

    valid: bool
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def normalise_text(s: str, *, strict_accents: bool = True) -> str:
    """Normalise a learner-facing string for comparison.

    Lowercases, trims, collapses whitespace and strips surrounding punctuation (``¿?¡!.,;:`` and
    quotes). Accents matter in Spanish (``el``/``él``), so they are kept unless
    ``strict_accents=False``, which folds á é í ó ú ü (never ñ).
    """
    text = unicodedata.normalize("NFC", s).lower()
    text = " ".join(text.split()).strip(_EDGE_PUNCT)
    if not strict_accents:
        text = text.translate(_ACCENT_FOLD)
    return text


def content_hash(item: dict[str, Any]) -> str:
    """Return a sha256 hex digest identifying an item's content, for exact de-duplication.

    Covers the normalised type, prompt, answer and sorted choices; explanation, difficulty and
    accepted answers do not make an item different.
    """
    choices = item.get("choices") or []
    key = [
        str(item.get("type", "")),
        normalise_text(str(item.get("prompt", ""))),
        normalise_text(str(item.get("answer", ""))),
        sorted(normalise_text(str(c)) for c in choices),
    ]
    return hashlib.sha256(json.dumps(key, ensure_ascii=False).encode("utf-8")).hexdigest()


@cache
def _validator(qtype: str) -> Draft202012Validator:
    return Draft202012Validator(item_schema(qtype))


def _schema_errors(item: dict[str, Any], qtype: str) -> list[str]:
    errors = []
    for err in sorted(_validator(qtype).iter_errors(item), key=lambda e: list(map(str, e.absolute_path))):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path).lstrip(".")
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set(err.schema.get("properties", {}))
            for name in sorted(set(err.instance) - allowed):
                errors.append(f"{path + '.' if path else ''}{name}: unexpected field")
        elif err.validator == "required":
            missing = err.message.split("'")[1] if "'" in err.message else err.message
            errors.append(f"{path + '.' if path else ''}{missing}: required field is missing")
        else:
            errors.append(f"{path or 'item'}: {err.message}")
    return errors


def _tokens(s: str) -> list[str]:
    return _WORD_RE.findall(normalise_text(s))


def _contains_phrase(haystack: str, needle: str) -> bool:
    hay, ned = _tokens(haystack), _tokens(needle)
    if not ned:
        return False
    return any(hay[i : i + len(ned)] == ned for i in range(len(hay) - len(ned) + 1))


def _check_lengths(item: dict[str, Any], errors: list[str]) -> None:
    for field, limit in (
        ("prompt", MAX_PROMPT_CHARS),
        ("answer", MAX_ANSWER_CHARS),
        ("explanation", MAX_EXPLANATION_CHARS),
    ):
        value = item[field]
        if not value.strip():
            errors.append(f"{field}: must not be empty")
        elif len(value) > limit:
            errors.append(f"{field}: {len(value)} characters, more than the limit of {limit}")
    for i, alt in enumerate(item["accepted_answers"]):
        if not alt.strip():
            errors.append(f"accepted_answers[{i}]: must not be empty")
        elif len(alt) > MAX_ANSWER_CHARS:
            errors.append(f"accepted_answers[{i}]: more than the limit of {MAX_ANSWER_CHARS} characters")


def _check_choices(item: dict[str, Any], errors: list[str], warnings: list[str]) -> None:
    choices: list[str] | None = item["choices"]
    if choices is None:
        if item["type"] == "multiple_choice":
            errors.append("choices: a multiple-choice item needs choices")
        return
    if item["type"] == "multiple_choice" and not MIN_CHOICES <= len(choices) <= MAX_CHOICES:
        errors.append(f"choices: expected {MIN_CHOICES} to {MAX_CHOICES} choices, got {len(choices)}")
    seen: dict[str, int] = {}
    for i, choice in enumerate(choices):
        norm = normalise_text(choice)
        if not norm:
            errors.append(f"choices[{i}]: must not be empty")
            continue
        if len(choice) > MAX_CHOICE_CHARS:
            errors.append(f"choices[{i}]: more than the limit of {MAX_CHOICE_CHARS} characters")
        if norm in seen:
            errors.append(f"choices[{i}]: duplicates choices[{seen[norm]}] ({choice!r})")
        seen.setdefault(norm, i)
    answer = normalise_text(item["answer"])
    if answer not in seen:
        errors.append(f"choices: answer {item['answer']!r} is not among the choices")
        return
    for choice in choices:
        if normalise_text(choice) in ("", answer):
            continue
        short, long_ = sorted((len(choice), len(item["answer"])))
        if long_ - short >= DISTRACTOR_MIN_GAP and long_ > DISTRACTOR_LENGTH_RATIO * max(short, 1):
            side = "longer" if len(choice) > len(item["answer"]) else "shorter"
            warnings.append(f"choices: distractor {choice!r} is much {side} than the answer")


def _check_prompt_shape(item: dict[str, Any], errors: list[str]) -> None:
    prompt, qtype = item["prompt"], item["type"]
    blanks = _BLANK_RUN_RE.findall(prompt)
    if qtype == "cloze":
        if len(blanks) != 1:
            errors.append(f"prompt: a cloze prompt needs exactly one blank '{BLANK}', found {len(blanks)}")
        elif blanks[0] != BLANK:
            errors.append(f"prompt: write the blank as exactly three underscores '{BLANK}'")
    if qtype == "translation" and not TRANSLATION_DIRECTION_RE.search(prompt):
        errors.append(
            "prompt: a translation prompt must state the direction, e.g. 'Translate into Spanish: ...'"
        )
    if qtype in ("cloze", "translation"):
        for label, text in [("answer", item["answer"])] + [
            (f"accepted_answers[{i}]", alt) for i, alt in enumerate(item["accepted_answers"])
        ]:
            if _contains_phrase(prompt, text):
                errors.append(f"prompt: gives away the {label} {text!r}")


def _check_answers(item: dict[str, Any], errors: list[str]) -> None:
    answer = normalise_text(item["answer"])
    seen: set[str] = set()
    for i, alt in enumerate(item["accepted_answers"]):
        norm = normalise_text(alt)
        if norm == answer:
            errors.append(f"accepted_answers[{i}]: repeats the answer {item['answer']!r}")
        elif norm in seen:
            errors.append(f"accepted_answers[{i}]: duplicate accepted answer {alt!r}")
        seen.add(norm)


def validate_item(
    item: dict[str, Any], *, skill: dict[str, Any] | None = None, level: str | None = None
) -> ValidationResult:
    """Validate one generated item against its type's JSON Schema, then the semantic rules.

    ``skill`` (a curriculum skill dict) makes the item's ``skill`` field checked against it, and
    supplies the level unless ``level`` is given; the level only produces warnings (difficulty).
    """
    if not isinstance(item, dict):
        return ValidationResult(False, ("item: expected a JSON object",))
    qtype = item.get("type")
    if qtype not in QUESTION_TYPES:
        return ValidationResult(False, (f"type: unknown question type {qtype!r}",))
    errors = _schema_errors(item, qtype)
    if errors:
        return ValidationResult(False, tuple(errors))
    warnings: list[str] = []
    if not SKILL_ID_RE.match(item["skill"]):
        errors.append(f"skill: {item['skill']!r} is not a skill id (lowercase letters, digits, '-')")
    if skill is not None and item["skill"] != skill.get("id"):
        errors.append(f"skill: expected {skill.get('id')!r}, got {item['skill']!r}")
    _check_lengths(item, errors)
    _check_choices(item, errors, warnings)
    _check_prompt_shape(item, errors)
    _check_answers(item, errors)
    level = level or (skill or {}).get("level")
    allowed = LEVEL_DIFFICULTIES.get(level or "")
    if allowed is not None and item["difficulty"] not in allowed:
        warnings.append(f"difficulty: {item['difficulty']!r} is unusual for level {level}")
    return ValidationResult(not errors, tuple(errors), tuple(warnings))
