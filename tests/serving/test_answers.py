"""Answers through the HTTP contract, on a bank whose answer keys the test wrote: graded per question
type (normalised text, accepted alternatives for the open types, only the answer for multiple
choice, an accents hint), with the expected answer and feedback; durable before the 200; the
duplicate (same attempt_id) replied exactly as the first; a completed lesson takes no more answers;
complete returns the summary and fires the refill."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
import redis
from litestar.testing import TestClient
from psycopg.types.json import Jsonb

from factory.validation import content_hash
from shared import constants
from shared.runtime import Endpoints
from tests.helpers import api_client, auth

COURSE = "spanish-a1-b1"
SKILL = "greetings"
KEYS: dict[str, dict[str, Any]] = {
    "cloze": {"prompt": "___, ¿qué tal? ({n})", "answer": "Hola", "accepted_answers": ["Hola", "Buenas"],
              "choices": None, "explanation": "Hola is the everyday greeting."},
    "translation": {"prompt": "Translate: good morning ({n})", "answer": "buenos días",
                    "accepted_answers": ["buenos días", "buen día"], "choices": None,
                    "explanation": "Buenos días until lunch."},
    "multiple_choice": {"prompt": "Which one says hello? ({n})", "answer": "Hola",
                        "accepted_answers": ["Hola", "Buenas"], "choices": ["Hola", "Adiós", "Gracias", "Perdón"],
                        "explanation": "Adiós says goodbye."},
}
"""One answer key per type: every question of the bank of that type has it (prompts differ)."""


def bank_of(eps: Endpoints, qtype: str, n: int = 8) -> None:
    rows = []
    for i in range(n):
        key = KEYS[qtype]
        item = {**key, "type": qtype, "skill": SKILL, "prompt": key["prompt"].format(n=i), "difficulty": "easy"}
        rows.append((uuid.uuid4(), COURSE, SKILL, 0, qtype, Jsonb(item), content_hash(item)))
    with psycopg.connect(eps.database_url) as conn:
        conn.cursor().executemany(
            "INSERT INTO questions (id, course_id, skill_id, level_rank, type, content, content_hash) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)


def stored(eps: Endpoints, learner: str) -> dict[str, tuple[str, bool]]:
    """attempt id -> (answer, correct) as recorded."""
    with psycopg.connect(eps.database_url) as conn:
        rows = conn.execute("SELECT attempt_id, answer, correct FROM answer_events WHERE learner_id = %s",
                            (learner,)).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


class Learner:
    def __init__(self, client: TestClient[Any], name: str) -> None:
        self.client, self.name, self.headers = client, name, auth("learner", name)

    def lesson(self) -> dict[str, Any]:
        r = self.client.post(f"/v1/courses/{COURSE}/lessons", headers=self.headers)
        assert r.status_code == 200, r.text
        lesson: dict[str, Any] = r.json()
        assert len(lesson["items"]) >= 4
        return lesson

    def answer(self, lesson: dict[str, Any], i: int, text: str, attempt: str | None = None) -> Any:
        return self.client.post(f"/v1/lessons/{lesson['lesson_id']}/answers", headers=self.headers, json={
            "item_id": lesson["items"][i]["item_id"], "answer": text, "attempt_id": attempt or uuid.uuid4().hex,
            "response_ms": 1500})


@pytest.mark.parametrize("qtype", ["cloze", "translation"])
def test_open_types_accept_the_alternatives_and_grade_a_wrong_answer_with_the_expected_one(
        curriculum: dict[str, Any], clean: Endpoints, qtype: str) -> None:
    key = KEYS[qtype]
    expected, alternative = key["answer"], key["accepted_answers"][1]
    with api_client() as client:
        bank_of(clean, qtype)
        learner = Learner(client, f"l-{uuid.uuid4().hex[:6]}")
        lesson = learner.lesson()
        assert {it["type"] for it in lesson["items"]} == {qtype}
        replies = {}
        for i, (text, attempt) in enumerate([(f"  ¡{alternative.upper()}! ", "alt"), (expected.lower(), "key"),
                                             ("adiós", "wrong"), (expected.replace("í", "i"), "accents")]):
            r = learner.answer(lesson, i, text, attempt)
            assert r.status_code == 200, r.text
            replies[attempt] = r.json()
            assert replies[attempt]["expected"] == expected

        assert replies["alt"]["correct"] is True and replies["alt"]["feedback"] == key["explanation"]
        assert replies["key"]["correct"] is True
        assert replies["wrong"]["correct"] is False
        assert replies["wrong"]["feedback"] == f"The answer is “{expected}”. {key['explanation']}"
        if qtype == "translation":  # "buenos dias": right but for the accent
            assert replies["accents"]["correct"] is False
            assert replies["accents"]["feedback"].startswith("Almost: check the accents")
        # Durable before the 200, with the grade the learner was shown.
        assert {a: c for a, (_, c) in stored(clean, learner.name).items()} == {
            a: reply["correct"] for a, reply in replies.items()}


def test_multiple_choice_accepts_only_its_answer(curriculum: dict[str, Any], clean: Endpoints) -> None:
    with api_client() as client:
        bank_of(clean, "multiple_choice")
        learner = Learner(client, f"l-{uuid.uuid4().hex[:6]}")
        lesson = learner.lesson()
        assert lesson["items"][0]["choices"] == KEYS["multiple_choice"]["choices"]
        right = learner.answer(lesson, 0, "hola").json()
        alternative = learner.answer(lesson, 1, "Buenas").json()  # an accepted answer of an open type only
        wrong = learner.answer(lesson, 2, "Adiós").json()
    assert right["correct"] is True
    assert alternative["correct"] is False and wrong["correct"] is False
    assert wrong["expected"] == "Hola" and "Hola" in wrong["feedback"]


def test_the_duplicate_is_replied_as_the_first_was(curriculum: dict[str, Any], clean: Endpoints) -> None:
    with api_client() as client:
        bank_of(clean, "translation")
        learner = Learner(client, f"l-{uuid.uuid4().hex[:6]}")
        lesson = learner.lesson()
        for i, text in enumerate(["buen día", "adiós", "buenos dias"]):
            first = learner.answer(lesson, i, text, f"a{i}").json()
            again = learner.answer(lesson, i, text, f"a{i}").json()
            # A retry whose body changed (a client bug, or an edit before the retry) is still the
            # same attempt: it gets the first answer's grade, not a grade of the new text.
            changed = learner.answer(lesson, i, "buenos días" if not first["correct"] else "adiós", f"a{i}").json()
            assert first.pop("duplicate") is False
            for reply in (again, changed):
                assert reply.pop("duplicate") is True
                assert reply == first, text
        assert stored(clean, learner.name) == {"a0": ("buen día", True), "a1": ("adiós", False),
                                               "a2": ("buenos dias", False)}


def test_a_completed_lesson_takes_no_answers_and_complete_returns_the_summary_and_refills(
        curriculum: dict[str, Any], clean: Endpoints) -> None:
    with api_client() as client:
        bank_of(clean, "cloze", n=12)
        learner = Learner(client, f"l-{uuid.uuid4().hex[:6]}")
        lesson = learner.lesson()
        assert learner.answer(lesson, 0, "hola", "first").json()["correct"] is True
        assert learner.answer(lesson, 1, "no", "second").json()["correct"] is False
        job = constants.refill_job_id(learner.name, COURSE)
        queue = redis.Redis.from_url(clean.queue_redis_url)
        try:
            # the cold start's own refill, still queued (no worker here), would absorb the next trigger
            assert queue.delete(constants.REFILL_QUEUE, constants.ARQ_JOB_KEY_PREFIX + job) == 2
            r = client.post(f"/v1/lessons/{lesson['lesson_id']}/complete", headers=learner.headers)
            assert r.status_code == 200, r.text
            assert queue.zrange(constants.REFILL_QUEUE, 0, -1) == [job.encode()]  # complete fired the refill
        finally:
            queue.close()
        summary = r.json()
        assert summary["lesson_id"] == lesson["lesson_id"] and summary["course"] == COURSE
        assert (summary["items"], summary["answered"], summary["correct"], summary["skills"]) == (
            len(lesson["items"]), 2, 1, [SKILL])

        late = learner.answer(lesson, 2, "hola", "late")
        assert late.status_code == 409 and late.json()["field"] == "lesson_id"
        assert "already completed" in late.json()["detail"]
        assert "late" not in stored(clean, learner.name)
        again = client.post(f"/v1/lessons/{lesson['lesson_id']}/complete", headers=learner.headers).json()
        assert again.pop("already_completed") is True and again == summary
