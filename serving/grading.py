"""Grading an answer against a question's key: per type, normalised text, accepted alternatives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.text import normalise_text


@dataclass(frozen=True)
class Grade:
    correct: bool
    expected: str
    feedback: str


def grade(qtype: str, content: dict[str, Any], answer: str) -> Grade:
    expected = content["answer"]
    explanation = content.get("explanation") or ""
    accepted = [expected, *(content.get("accepted_answers") or [])]
    given = normalise_text(answer)
    if qtype == "multiple_choice":
        correct = given == normalise_text(expected)
    else:
        correct = given in {normalise_text(a) for a in accepted}
    if correct:
        return Grade(True, expected, explanation or "Correct!")
    folded = normalise_text(answer, strict_accents=False)
    if qtype != "multiple_choice" and folded in {normalise_text(a, strict_accents=False) for a in accepted}:
        return Grade(False, expected, f"Almost: check the accents — the answer is “{expected}”. {explanation}".strip())
    return Grade(False, expected, f"The answer is “{expected}”. {explanation}".strip())
