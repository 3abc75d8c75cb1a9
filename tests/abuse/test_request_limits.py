"""Request size limits: a body over `settings.serving.max_body_bytes` is refused with 413 before it is
read whole; an answer over `max_answer_chars` is a 400 naming `answer`; nothing is written by either."""

from __future__ import annotations

from typing import Any

import psycopg
from litestar.testing import TestClient

from shared.runtime import Endpoints
from shared.settings import get_settings
from tests.abuse.conftest import COURSE
from tests.helpers import auth, staff


def answers_stored(eps: Endpoints) -> int:
    with psycopg.connect(eps.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM answer_events").fetchone()
    assert row is not None
    return int(row[0])


def start_lesson(client: TestClient[Any], headers: dict[str, str]) -> dict[str, Any]:
    r = client.post(f"/v1/courses/{COURSE}/lessons", headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_bodies_over_the_limit_are_413(client: TestClient[Any], bank: Endpoints) -> None:
    limit = get_settings().serving.max_body_bytes
    learner = auth("learner", "big-body")
    lesson = start_lesson(client, learner)
    item = lesson["items"][0]
    huge = {"item_id": item["item_id"], "attempt_id": "a1", "response_ms": 1000, "answer": "x" * (limit + 10)}
    r = client.post(f"/v1/lessons/{lesson['lesson_id']}/answers", json=huge, headers=learner)
    assert r.status_code == 413, r.text
    assert r.json()["detail"]
    r = client.post("/v1/generation-jobs", headers=staff(),
                    json={"course": COURSE, "skills": ["greetings"], "count": 1, "topic": "t" * (limit + 10)})
    assert r.status_code == 413, r.text
    # A body that claims to be small but is not: the server reads no more than the limit.
    raw = b'{"answer": "' + b"y" * (limit + 10) + b'"}'
    r = client.post(f"/v1/lessons/{lesson['lesson_id']}/answers", content=raw,
                    headers={**learner, "content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert answers_stored(bank) == 0


def test_over_long_answers_are_400_naming_answer(client: TestClient[Any], bank: Endpoints) -> None:
    max_chars = get_settings().serving.max_answer_chars
    learner = auth("learner", "long-answer")
    lesson = start_lesson(client, learner)
    item = lesson["items"][0]
    url = f"/v1/lessons/{lesson['lesson_id']}/answers"
    for n in (max_chars + 1, 10_001):
        r = client.post(url, headers=learner, json={"item_id": item["item_id"], "attempt_id": f"a{n}",
                                                    "response_ms": 1000, "answer": "é" * n})
        assert r.status_code == 400, r.text
        assert r.json().get("field") == "answer" and "answer" in r.json()["detail"]
    assert answers_stored(bank) == 0
    # Exactly at the limit is fine, and the attempt ids refused above were not consumed.
    r = client.post(url, headers=learner, json={"item_id": item["item_id"], "attempt_id": f"a{max_chars + 1}",
                                                "response_ms": 1000, "answer": "a" * max_chars})
    assert r.status_code == 200, r.text
    assert answers_stored(bank) == 1
