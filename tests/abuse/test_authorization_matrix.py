"""Authorization over EVERY route of the app × every role (no token, learner A, learner B, designer,
admin): the right 401/403/404, and learner B can never read or change learner A's lessons, answers or
profile. The route list comes from the app itself (and is checked against the OpenAPI document), so
a new route that nobody classified fails this test."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from shared.auth import mint_token
from shared.runtime import Endpoints
from shared.settings import AuthSettings, get_settings
from tests.abuse.conftest import COURSE
from tests.helpers import auth, run_worker

ROLES = ("none", "learner-b", "designer", "admin", "learner-a")  # B before A: A's data must survive B
A, B = "learner-alice", "learner-bob"
PUBLIC = {("GET", "/v1/ping"), ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/")}
ANY_ROLE = {("GET", "/v1/courses"), ("GET", "/v1/courses/{course:str}")}
DENIED = {401, 403}


@dataclass
class Ctx:
    lesson: dict[str, Any]
    spare_lesson: dict[str, Any]
    answered_attempt: str
    job_id: str
    staging_id: str
    question_id: str


def headers(role: str) -> dict[str, str]:
    return {"none": {}, "learner-a": auth("learner", A), "learner-b": auth("learner", B),
            "designer": auth("designer", "dee"), "admin": auth("admin", "ada")}[role]


def learner_routes(ctx: Ctx) -> dict[tuple[str, str], tuple[str, Any]]:
    """(method, route) → (the concrete path aimed at A's data, body). The last two are destructive."""
    lesson, item = ctx.lesson["lesson_id"], ctx.lesson["items"][1]
    return {
        ("POST", "/v1/courses/{course:str}/lessons"): (f"/v1/courses/{COURSE}/lessons", None),
        ("POST", "/v1/lessons/{lesson_id:uuid}/answers"): (f"/v1/lessons/{lesson}/answers", {
            "item_id": item["item_id"], "answer": "hola", "response_ms": 1000, "attempt_id": "matrix-1"}),
        ("POST", "/v1/lessons/{lesson_id:uuid}/complete"): (f"/v1/lessons/{ctx.spare_lesson['lesson_id']}/complete",
                                                            None),
        ("GET", "/v1/me/profile"): ("/v1/me/profile", None),
        ("GET", "/v1/me/export"): ("/v1/me/export", None),
        ("POST", "/v1/me/reset"): ("/v1/me/reset", None),
        ("DELETE", "/v1/me"): ("/v1/me", None),
    }


def staff_routes(ctx: Ctx) -> dict[tuple[str, str], tuple[str, Any, set[int]]]:
    """(method, route) → (path, body, what staff may get: a second decision on one item is a 409)."""
    job, item, q = ctx.job_id, ctx.staging_id, ctx.question_id
    return {
        ("GET", "/v1/generation-jobs"): ("/v1/generation-jobs", None, {200}),
        ("POST", "/v1/generation-jobs"): ("/v1/generation-jobs",
                                          {"course": COURSE, "skills": ["greetings"], "count": 1}, {202}),
        ("GET", "/v1/generation-jobs/{job_id:uuid}"): (f"/v1/generation-jobs/{job}", None, {200}),
        ("POST", "/v1/generation-jobs/{job_id:uuid}/cancel"): (f"/v1/generation-jobs/{job}/cancel", None, {200, 409}),
        ("GET", "/v1/staging"): ("/v1/staging", None, {200}),
        ("GET", "/v1/staging/{item_id:uuid}"): (f"/v1/staging/{item}", None, {200}),
        ("POST", "/v1/staging/{item_id:uuid}/decision"): (
            f"/v1/staging/{item}/decision", {"decision": "reject", "reason": "incorrect"}, {200, 409}),
        ("POST", "/v1/ingestions"): ("/v1/ingestions", None, {200}),
        ("GET", "/v1/questions/{question_id:uuid}"): (f"/v1/questions/{q}", None, {200}),
        ("POST", "/v1/questions/{question_id:uuid}/retire"): (f"/v1/questions/{q}/retire", None, {200, 409}),
        ("POST", "/v1/questions/{question_id:uuid}/correct"): (
            f"/v1/questions/{q}/correct", {"edits": {"explanation": "Corrected."}}, {200, 409}),
    }


def snapshot_of_a(eps: Endpoints) -> str:
    """Everything stored about learner A (lessons, answers, model state, seen questions)."""
    with psycopg.connect(eps.database_url) as conn:
        parts = [conn.execute(sql, (A,)).fetchall() for sql in (
            "SELECT id, status, items, completed_at FROM lessons WHERE learner_id = %s ORDER BY id",
            "SELECT attempt_id, lesson_id, item_id, answer, correct FROM answer_events WHERE learner_id = %s "
            "ORDER BY attempt_id",
            "SELECT skill_id, state, attempts, correct FROM learner_skill_state WHERE learner_id = %s ORDER BY 1",
            "SELECT state FROM learner_course_state WHERE learner_id = %s",
            "SELECT question_id FROM learner_seen WHERE learner_id = %s ORDER BY 1")]
    return json.dumps(parts, default=str)


@pytest.fixture
def ctx(client: TestClient[Any], bank: Endpoints) -> Ctx:
    a = headers("learner-a")
    lesson = client.post(f"/v1/courses/{COURSE}/lessons", headers=a).json()
    spare = client.post(f"/v1/courses/{COURSE}/lessons", headers=a).json()
    r = client.post(f"/v1/lessons/{lesson['lesson_id']}/answers", headers=a, json={
        "item_id": lesson["items"][0]["item_id"], "answer": "hola", "response_ms": 900, "attempt_id": "a-first"})
    assert r.status_code == 200, r.text
    r = client.post("/v1/generation-jobs", headers=headers("designer"),
                    json={"course": COURSE, "skills": ["greetings"], "count": 3})
    assert r.status_code == 202, r.text
    run_worker("factory")
    staged = client.get("/v1/staging", params={"job": r.json()["id"], "status": "pending"},
                        headers=headers("designer")).json()
    served = {it["question_id"] for ls in (lesson, spare) for it in ls["items"]}
    with psycopg.connect(bank.database_url) as conn:
        rows = conn.execute("SELECT id::text FROM questions WHERE status = 'active'").fetchall()
    question = next(q for (q,) in rows if q not in served)
    return Ctx(lesson=lesson, spare_lesson=spare, answered_attempt="a-first", job_id=r.json()["id"],
               staging_id=staged[0]["id"], question_id=question)


def call(client: TestClient[Any], method: str, path: str, body: Any, role: str) -> Any:
    return client.request(method, path, headers=headers(role), json=body, follow_redirects=False)


def test_every_route_for_every_role(client: TestClient[Any], bank: Endpoints, ctx: Ctx) -> None:
    routes = sorted({(m, r.path) for r in client.app.routes for m in r.methods if m not in ("OPTIONS", "HEAD")},
                    key=lambda mr: (mr[1], mr[0]))
    learner, staff = learner_routes(ctx), staff_routes(ctx)
    # destructive routes last, so that every other check sees A's data
    routes.sort(key=lambda mr: mr in (("POST", "/v1/me/reset"), ("DELETE", "/v1/me")))
    a_ids = {A, ctx.lesson["lesson_id"], ctx.spare_lesson["lesson_id"], ctx.answered_attempt}
    wrong: list[str] = []
    checked = 0

    def expect(key: tuple[str, str], role: str, r: Any, allowed: set[int]) -> None:
        if r.status_code not in allowed:
            wrong.append(f"{key[0]} {key[1]} as {role}: {r.status_code} (expected {sorted(allowed)}) {r.text[:120]}")

    for key in routes:
        method, route = key
        if key in PUBLIC or route.startswith("/schema"):
            for role in ROLES:
                r = call(client, method, route.replace("{path:str}", "openapi.json"), None, role)
                expect(key, role, r, {200, 301, 302, 303, 307, 308})
                checked += 1
        elif key in ANY_ROLE:
            path = route.replace("{course:str}", COURSE)
            for role in ROLES:
                expect(key, role, call(client, method, path, None, role), {401} if role == "none" else {200})
                checked += 1
        elif key in learner:
            path, body = learner[key]
            for role in ROLES:
                before = snapshot_of_a(bank)
                r = call(client, method, path, body, role)
                checked += 1
                if role == "none":
                    expect(key, role, r, {401})
                elif role in ("designer", "admin"):
                    expect(key, role, r, {403})
                elif role == "learner-b":
                    aimed_at_a = "{lesson_id:uuid}" in route
                    expect(key, role, r, {404} if aimed_at_a else {200})
                    # (a 404 may echo the id B sent; anything else of A's is a leak)
                    leaked = [x for x in a_ids if x in r.text and x not in path + json.dumps(body)]
                    if leaked:
                        wrong.append(f"{method} {route} as learner B: the reply holds A's {leaked}")
                else:
                    expect(key, role, r, {200})
                if role != "learner-a" and snapshot_of_a(bank) != before:
                    wrong.append(f"{method} {route} as {role} changed learner A's data")
        elif key in staff:
            path, body, ok = staff[key]
            for role in ROLES:
                r = call(client, method, path, body, role)
                checked += 1
                expect(key, role, r, {401} if role == "none" else ok if role in ("designer", "admin") else {403})
        elif route.startswith("/portal"):
            # The portal signs in with a session cookie: a bearer token, of any role, opens nothing.
            path = (route.replace("{job_id:uuid}", ctx.job_id).replace("{item_id:uuid}", ctx.staging_id)
                    .replace("{question_id:uuid}", ctx.question_id).replace("{user_id:str}", "dee")
                    .replace("{file_path:path}", "portal.css"))
            public = route in ("/portal/login", "/portal/static/{file_path:path}")
            for role in ROLES:
                r = call(client, method, path, {} if method == "POST" else None, role)
                checked += 1
                if public:
                    expect(key, role, r, {200, 400, 403})  # a POST without its CSRF token is a 403
                elif r.status_code in (302, 303, 307):
                    if not r.headers["location"].startswith("/portal/login"):
                        wrong.append(f"{method} {route} as {role}: redirected to {r.headers['location']}")
                else:
                    expect(key, role, r, DENIED)
        else:
            wrong.append(f"{method} {route}: not classified — add it to this matrix")
    assert not wrong, "\n".join(wrong)
    assert checked >= 5 * 50

    # The OpenAPI document lists no operation the matrix does not know.
    def bare(path: str) -> str:
        return re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)

    known = {(m, bare(r)) for m, r in PUBLIC | ANY_ROLE | set(learner) | set(staff)}
    documented = {(m.upper(), bare(path)) for path, ops in client.get("/schema/openapi.json").json()["paths"].items()
                  for m in ops if m.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE")}
    assert documented - known == set()
    assert len(documented) >= 20


def test_learner_b_cannot_touch_learner_a_by_any_id(client: TestClient[Any], bank: Endpoints, ctx: Ctx) -> None:
    """B aims at A's lesson with A's item ids and A's attempt id, in every way the API takes an id."""
    b = headers("learner-b")
    before = snapshot_of_a(bank)
    lesson = ctx.lesson["lesson_id"]
    for item in ctx.lesson["items"]:
        for attempt in (ctx.answered_attempt, "b-attack"):
            r = client.post(f"/v1/lessons/{lesson}/answers", headers=b, json={
                "item_id": item["item_id"], "answer": "x", "response_ms": 1, "attempt_id": attempt})
            assert r.status_code == 404 and A not in r.text, r.text
    assert client.post(f"/v1/lessons/{lesson}/complete", headers=b).status_code == 404
    assert client.get("/v1/me/profile", params={"course": COURSE}, headers=b).status_code == 200
    # Attempt ids are per learner: B reusing A's attempt id on B's own lesson records B's answer.
    own = client.post(f"/v1/courses/{COURSE}/lessons", headers=b).json()
    r = client.post(f"/v1/lessons/{own['lesson_id']}/answers", headers=b, json={
        "item_id": own["items"][0]["item_id"], "answer": "x", "response_ms": 1, "attempt_id": ctx.answered_attempt})
    assert r.status_code == 200 and not r.json().get("duplicate"), r.text
    assert snapshot_of_a(bank) == before


def test_forged_and_expired_tokens_are_refused_everywhere(client: TestClient[Any], bank: Endpoints) -> None:
    cfg = get_settings().auth
    forged = {
        "wrong secret": mint_token(AuthSettings(token_secret="not-the-secret-" + "x" * 32), sub=A, role="admin"),
        "expired": mint_token(cfg, sub=A, role="admin", ttl_s=-60),
        "other issuer": mint_token(AuthSettings(token_secret=cfg.token_secret, token_issuer="evil"), sub=A,
                                   role="admin"),
        "alg none": "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4Iiwicm9sZSI6ImFkbWluIiwiZXhwIjo5OTk5OTk5OTk5fQ.",
    }
    routes = [("GET", "/v1/courses"), ("POST", f"/v1/courses/{COURSE}/lessons"), ("GET", "/v1/me/export"),
              ("GET", "/v1/generation-jobs"), ("POST", "/v1/ingestions"), ("DELETE", "/v1/me")]
    for name, token in forged.items():
        for method, path in routes:
            r = client.request(method, path, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, (name, method, path, r.text)
            assert r.headers.get("www-authenticate") == "Bearer" and token not in r.text
