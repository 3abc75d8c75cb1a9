"""Locust learners: start a lesson, answer each item after some thought, complete it, start the next.

Who they are comes from the JSON file named by LESSONLOOP_LOADTEST_SPEC (written by the bench:
`{"course", "warm": [ids with a precomputed playlist], "cold": [ids with history, no playlist]}`);
a share of users are brand-new learners (first lesson cold, later ones warm once the curator ran).
Without a spec file every learner is new and the course is the sample curriculum's.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from typing import Any

from locust import HttpUser, between, task

from shared.auth import mint_token
from shared.settings import get_settings

NEW_LEARNER_SHARE = 0.2


def load_spec() -> dict[str, Any]:
    path = os.environ.get("LESSONLOOP_LOADTEST_SPEC")
    if path:
        with open(path) as f:
            return dict(json.load(f))
    return {"course": "spanish-a1-b1", "warm": [], "cold": [], "skills": []}


SPEC = load_spec()


def pick_learner(rng: random.Random) -> str:
    pools = [p for p in (SPEC.get("warm") or [], SPEC.get("cold") or []) if p]
    if not pools or rng.random() < NEW_LEARNER_SHARE:
        return f"loadtest-new-{uuid.uuid4().hex[:12]}"
    return rng.choice(rng.choice(pools))


def guess(item: dict[str, Any], rng: random.Random) -> str:
    if item.get("choices"):
        return str(rng.choice(item["choices"]))
    return rng.choice(["hola", "la casa", "tengo", "fui", "x"])


class Learner(HttpUser):
    """One learner working through lessons; think time between answers."""

    weight = 20
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.learner_id = pick_learner(self.rng)
        token = mint_token(get_settings().auth, sub=self.learner_id, role="learner", ttl_s=6 * 3600)
        self.client.headers["Authorization"] = f"Bearer {token}"
        self.course = SPEC["course"]

    @task
    def lesson(self) -> None:
        with self.client.post(f"/v1/courses/{self.course}/lessons", name="learner: start lesson",
                              catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}: {r.text[:200]}")
                return
            lesson = r.json()
            r.request_meta["name"] = f"learner: start lesson ({r.headers.get('x-lesson-source', '?')})"
        for item in lesson["items"]:
            self.wait()
            body = {"item_id": item["item_id"], "answer": guess(item, self.rng),
                    "response_ms": self.rng.randint(800, 9000), "attempt_id": uuid.uuid4().hex}
            self.client.post(f"/v1/lessons/{lesson['lesson_id']}/answers", json=body, name="learner: answer")
        self.client.post(f"/v1/lessons/{lesson['lesson_id']}/complete", name="learner: complete")
