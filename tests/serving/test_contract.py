"""The HTTP contract's error paths: 401/403, 4xx bodies naming the field, nothing half-written,
idempotent answers, lesson ownership."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import psycopg
import pytest

from shared.runtime import Endpoints
from shared.settings import get_settings
from tests.helpers import api_client, auth, generate_and_accept, staff

COURSE = "spanish-a1-b1"


def count(eps: Endpoints, table: str) -> int:
    with psycopg.connect(eps.database_url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_tokens_missing_expired_forged_and_wrong_role(curriculum: dict[str, Any]) -> None:
    cfg = get_settings().auth
    now = int(time.time())
    expired = jwt.encode({"sub": "a", "role": "learner", "iss": cfg.token_issuer, "iat": now - 100, "exp": now - 10},
                         cfg.token_secret, algorithm="HS256")
    forged = jwt.encode({"sub": "a", "role": "admin", "iss": cfg.token_issuer, "exp": now + 100},
                        "not-the-secret-at-all-0123456789abcdef", algorithm="HS256")
    with api_client() as client:
        assert client.get("/v1/courses").status_code == 401
        r = client.get("/v1/courses", headers={"Authorization": f"Bearer {expired}"})
        assert r.status_code == 401 and "expired" in r.json()["detail"]
        r = client.get("/v1/courses", headers={"Authorization": f"Bearer {forged}"})
        assert r.status_code == 401 and "invalid token" in r.json()["detail"]
        r = client.post("/v1/generation-jobs", json={"course": COURSE, "skills": ["greetings"], "count": 1},
                        headers=auth("learner", "l1"))
        assert r.status_code == 403 and "designer" in r.json()["detail"]
        assert client.post("/v1/ingestions", headers=auth("learner", "l1")).status_code == 403
        assert client.post(f"/v1/courses/{COURSE}/lessons", headers=staff()).status_code == 403
        assert client.get("/v1/ping").json() == {"ok": True}


@pytest.mark.parametrize("spec, field", [
    ({"skills": ["greetings"], "count": 0}, "count"),
    ({"skills": ["greetings"], "count": 100_000}, "count"),
    ({"skills": ["greetings"], "count": "ten"}, "count"),
    ({"skills": [], "count": 5}, "skills"),
    ({"skills": ["no-such-skill"], "count": 5}, "skills"),
    ({"skills": ["greetings"], "count": 5, "types": ["essay"]}, "types"),
    ({"skills": ["greetings"], "count": 5, "topic": "x" * 1000}, "topic"),
    ({"skills": ["greetings"], "count": 5, "level": "Z9"}, "level"),
    ({"skills": ["greetings"], "count": 5, "course": "no-such-course"}, "course"),
])
def test_invalid_job_specs_name_the_field_and_write_nothing(curriculum: dict[str, Any], clean: Endpoints,
                                                             spec: dict[str, Any], field: str) -> None:
    body = {"course": COURSE, **spec}
    with api_client() as client:
        r = client.post("/v1/generation-jobs", json=body, headers=staff())
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["field"] == field and field in r.json()["detail"]
    assert count(clean, "generation_jobs") == 0 and count(clean, "generation_batches") == 0


def test_answers_validated_idempotent_and_owned(curriculum: dict[str, Any], clean: Endpoints) -> None:
    with api_client() as client:
        generate_and_accept(client, COURSE, ["greetings", "numbers"], count=20)
        alice, bob = auth("learner", "alice"), auth("learner", "bob")
        assert client.post("/v1/courses/no-such-course/lessons", headers=alice).status_code == 404
        lesson = client.post(f"/v1/courses/{COURSE}/lessons", headers=alice).json()
        url = f"/v1/lessons/{lesson['lesson_id']}/answers"
        item = lesson["items"][0]["item_id"]
        good = {"item_id": item, "answer": "hola", "attempt_id": "att-1", "response_ms": 1200}

        for bad, field in [({**good, "response_ms": -5}, "response_ms"), ({**good, "answer": 7}, "answer"),
                           ({k: v for k, v in good.items() if k != "attempt_id"}, "attempt_id"),
                           ({**good, "answer": "x" * 600}, "answer"), ({**good, "extra": 1}, "extra")]:
            r = client.post(url, json=bad, headers=alice)
            assert r.status_code == 400, r.text
            assert field in r.json()["detail"], r.json()
        r = client.post(url, json={**good, "item_id": "99"}, headers=alice)
        assert r.status_code == 404 and r.json()["field"] == "item_id"
        assert count(clean, "answer_events") == 0

        # Bob can neither see nor answer Alice's lesson.
        assert client.post(url, json=good, headers=bob).status_code == 404
        assert client.post(f"/v1/lessons/{lesson['lesson_id']}/complete", headers=bob).status_code == 404

        first = client.post(url, json=good, headers=alice)
        again = client.post(url, json=good, headers=alice)
        assert first.status_code == again.status_code == 200
        assert again.json()["duplicate"] is True and again.json()["correct"] == first.json()["correct"]
        other = client.post(url, json={**good, "attempt_id": "att-2"}, headers=alice)
        assert other.status_code == 409 and other.json()["field"] == "attempt_id"
        assert count(clean, "answer_events") == 1
        r = client.post(f"/v1/lessons/{uuid.uuid4()}/answers", json=good, headers=alice)
        assert r.status_code == 404


def test_staff_decisions_and_bank_endpoints(curriculum: dict[str, Any], clean: Endpoints) -> None:
    with api_client() as client:
        r = client.post("/v1/generation-jobs", json={"course": COURSE, "skills": ["greetings"], "count": 4},
                        headers=staff())
        assert r.status_code == 202 and r.headers["location"].startswith("/v1/generation-jobs/")
        from tests.helpers import run_worker
        run_worker("factory")
        items = client.get("/v1/staging", params={"status": "pending"}, headers=staff()).json()
        assert items, "the job staged items"
        first = items[0]
        r = client.post(f"/v1/staging/{first['id']}/decision", json={"decision": "reject"}, headers=staff())
        assert r.status_code == 400 and r.json()["field"] == "reason"
        r = client.post(f"/v1/staging/{first['id']}/decision",
                        json={"decision": "accept", "edits": {"answer": ""}}, headers=staff())
        assert r.status_code == 400 and r.json()["field"] == "edits"
        r = client.post(f"/v1/staging/{first['id']}/decision", json={"decision": "maybe"}, headers=staff())
        assert r.status_code == 400 and r.json()["field"] == "decision"
        ok = client.post(f"/v1/staging/{first['id']}/decision", json={"decision": "accept"}, headers=staff())
        assert ok.status_code == 200 and ok.json()["status"] == "accepted"
        late = client.post(f"/v1/staging/{first['id']}/decision",
                           json={"decision": "reject", "reason": "incorrect"}, headers=auth("designer", "other"))
        assert late.status_code == 409 and "already decided" in late.json()["detail"]
        audit = client.get(f"/v1/staging/{first['id']}", headers=staff()).json()["audit"]
        assert [a["action"] for a in audit] == ["accept"] and audit[0]["actor"] == "designer-1"
        assert client.post("/v1/ingestions", headers=staff()).json()["ingested"] == 1
        assert client.post("/v1/ingestions", headers=staff()).json()["ingested"] == 0
        with psycopg.connect(clean.database_url) as conn:
            qid = conn.execute("SELECT id FROM questions").fetchone()[0]  # type: ignore[index]
        q = client.get(f"/v1/questions/{qid}", headers=staff()).json()
        assert q["content"]["answer"] and q["status"] == "active"
        assert client.post(f"/v1/questions/{qid}/retire", json={"reason": "typo"}, headers=staff()).status_code == 200
        assert client.post(f"/v1/questions/{qid}/retire", headers=staff()).status_code == 409


def test_nul_characters_are_bad_input_not_server_errors(curriculum: dict[str, Any], clean: Endpoints) -> None:
    with api_client() as client:
        r = client.get("/v1/staging", params={"q": "a\x00b"}, headers=staff())  # the declared pattern
        assert r.status_code == 400 and r.json()["field"] == "q", r.text
        r = client.post("/v1/generation-jobs", json={"course": COURSE, "skills": ["greetings"], "count": 1,
                                                     "topic": "x\x00"}, headers=staff())
        assert r.status_code == 400
    assert count(clean, "generation_jobs") == 0
