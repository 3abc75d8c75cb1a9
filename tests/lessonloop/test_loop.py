"""The thin loop, each step through the real component (API in-process, workers in burst mode)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.helpers import api_client, auth, generate_and_accept, run_worker, staff

COURSE = "spanish-a1-b1"


def test_the_whole_loop(curriculum: dict[str, Any]) -> None:
    roots = [s["id"] for s in curriculum["skills"] if not s["prerequisites"]]
    with api_client() as client:
        job = generate_and_accept(client, COURSE, roots, count=10 * len(roots))
        assert job["status"] == "succeeded", job
        assert job["counts"]["generated"] == 10 * len(roots)
        assert job["counts"]["staged"] > 0
        bank = client.get("/v1/staging", params={"status": "ingested", "limit": 500}, headers=staff()).json()
        assert len(bank) == job["counts"]["staged"]

        learner = auth("learner", f"learner-{uuid.uuid4().hex[:8]}")
        # First lesson: no playlist yet → cold path, and a refill is queued.
        r = client.post(f"/v1/courses/{COURSE}/lessons", headers=learner)
        assert r.status_code == 200, r.text
        first = r.json()
        assert first["source"] == "cold"
        assert "app;dur=" in r.headers["server-timing"]
        assert 1 <= len(first["items"]) <= 5
        assert len({it["question_id"] for it in first["items"]}) == len(first["items"])
        assert all(it["skill"] in roots for it in first["items"])

        # Answer every item (right answers, from the bank's key), then complete.
        for item in first["items"]:
            key = client.get(f"/v1/questions/{item['question_id']}", headers=staff()).json()["content"]["answer"]
            a = client.post(f"/v1/lessons/{first['lesson_id']}/answers", headers=learner, json={
                "item_id": item["item_id"], "answer": key, "attempt_id": str(uuid.uuid4()), "response_ms": 2000})
            assert a.status_code == 200, a.text
            assert a.json()["correct"] is True
        summary = client.post(f"/v1/lessons/{first['lesson_id']}/complete", headers=learner).json()
        assert summary["answered"] == len(first["items"]) and summary["correct"] == len(first["items"])

        # The curator computes the next lessons into Redis; the next start is a warm pop.
        assert run_worker("curator") >= 1
        r = client.post(f"/v1/courses/{COURSE}/lessons", headers=learner)
        second = r.json()
        assert second["source"] == "warm", second
        seen = {it["question_id"] for it in first["items"]}
        assert not seen & {it["question_id"] for it in second["items"]}

        profile = client.get("/v1/me/profile", headers=learner).json()
        skills = profile["courses"][0]["skills"]
        assert {s["skill"] for s in skills} == {it["skill"] for it in first["items"]}
        assert profile["courses"][0]["counts"]["answers"] == len(first["items"])
