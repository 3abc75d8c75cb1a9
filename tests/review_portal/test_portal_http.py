"""The portal over HTTP (in-process client): sign-in and its throttle, cookies, CSRF, roles, decisions
refused when someone else decided first, edits, revision, bulk accept, opportunities, the CLI."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from lessonloop import cli
from lessonloop.app import create_app
from review_portal.web.estimate import estimate
from shared import constants
from shared.db import users
from shared.runtime import Endpoints
from shared.settings import FactorySettings, get_settings
from tests.helpers import api_client, run_worker, staff
from tests.review_portal.conftest import COURSE, PASSWORD, db

CSRF = "ll_csrf"


def csrf(client: TestClient[Any]) -> str:
    if CSRF not in client.cookies:
        client.get("/portal/login")
    return str(client.cookies[CSRF])


def post(client: TestClient[Any], path: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
    return client.post(path, data={"_csrf_token": csrf(client), **(data or {})}, follow_redirects=False, **kw)


def login(client: TestClient[Any], user_id: str, password: str = PASSWORD) -> Any:
    return post(client, "/portal/login", {"user_id": user_id, "password": password})


@pytest.fixture
def client(portal_data: Endpoints) -> Iterator[TestClient[Any]]:
    with api_client() as c:
        yield c


def stage(client: TestClient[Any], skills: list[str], count: int) -> list[dict[str, Any]]:
    r = client.post("/v1/generation-jobs", json={"course": COURSE, "skills": skills, "count": count}, headers=staff())
    assert r.status_code == 202, r.text
    run_worker("factory")
    return client.get("/v1/staging", params={"status": "pending", "limit": 500}, headers=staff()).json()


def test_sign_in_sets_a_locked_down_session_cookie(client: TestClient[Any], make_user: Callable[..., str]) -> None:
    make_user("dana")
    r = client.get("/portal/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/portal/login?next=")
    r = login(client, "dana")
    assert r.status_code == 303 and r.headers["location"] == "/portal/"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("ll_portal="))
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/portal" in cookie
    assert "Secure" not in cookie
    page = client.get("/portal/")
    assert page.status_code == 200 and "Dashboard" in page.text and "Dana" in page.text


def test_secure_cookies_when_configured(portal_data: Endpoints, make_user: Callable[..., str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LESSONLOOP_PORTAL_SECURE_COOKIES", "true")
    get_settings.cache_clear()
    make_user("dana")
    with TestClient(app=create_app(get_settings()), base_url="https://testserver.local") as c:
        page = c.get("/portal/login")
        assert "Secure" in next(h for h in page.headers.get_list("set-cookie") if h.startswith(CSRF))
        r = login(c, "dana")
    assert r.status_code == 303
    assert "Secure" in next(h for h in r.headers.get_list("set-cookie") if h.startswith("ll_portal="))


def test_wrong_passwords_are_throttled_per_user_and_address(client: TestClient[Any], make_user: Callable[..., str],
                                                            portal_data: Endpoints) -> None:
    make_user("dana")
    limit = get_settings().portal.login_max_attempts
    for _ in range(limit):
        r = login(client, "dana", "wrong password!")
        assert r.status_code == 400 and "Wrong user id or password" in r.text
    r = login(client, "dana")  # even the right password, while locked
    assert r.status_code == 429 and "Too many wrong passwords" in r.text
    key = constants.login_attempts_key("dana", "testclient")
    assert int(redis.Redis.from_url(portal_data.queue_redis_url).get(key) or 0) == limit
    # Another user from the same address is not locked out.
    make_user("eli")
    assert login(client, "eli").status_code == 303


def test_unknown_user_and_empty_fields(client: TestClient[Any]) -> None:
    r = login(client, "nobody", "whatever-it-is")
    assert r.status_code == 400 and "Wrong user id or password" in r.text
    r = post(client, "/portal/login", {"user_id": "", "password": ""})
    assert r.status_code == 400 and "Enter your user id" in r.text and "Enter your password" in r.text


def test_csrf_is_required_on_the_portal_but_not_on_the_api(client: TestClient[Any],
                                                           make_user: Callable[..., str]) -> None:
    make_user("dana")
    login(client, "dana")
    r = client.post("/portal/ingestions", data={}, follow_redirects=False)
    assert r.status_code == 403 and "This form has expired" in r.text
    assert post(client, "/portal/ingestions").status_code == 303
    api = client.post("/v1/ingestions", headers=staff())
    assert api.status_code == 200, api.text


def test_a_designer_cannot_reach_admin_pages(client: TestClient[Any], make_user: Callable[..., str]) -> None:
    make_user("dana")
    login(client, "dana")
    for path in ("/portal/admin/users", "/portal/admin/policy"):
        r = client.get(path)
        assert r.status_code == 403 and "for administrators" in r.text
    r = post(client, "/portal/admin/users", {"id": "mallory", "role": "admin", "password": "x" * 12})
    assert r.status_code == 403


def test_admin_creates_users_with_field_errors(client: TestClient[Any], make_user: Callable[..., str],
                                               portal_data: Endpoints) -> None:
    make_user("root", role="admin")
    login(client, "root")
    r = post(client, "/portal/admin/users", {"id": "bad id!", "role": "designer", "password": "short"})
    assert r.status_code == 400 and "1-64 letters" in r.text and "at least 10 characters" in r.text
    r = post(client, "/portal/admin/users", {"id": "fran", "role": "designer", "password": ""})
    assert r.status_code == 303
    flash = client.get("/portal/admin/users").text
    password = re.search(r"shown once\): (\S+)<", flash)
    assert password, flash
    with api_client() as other:
        assert login(other, "fran", password.group(1)).status_code == 303
    r = post(client, "/portal/admin/users/root", {"action": "disable"})
    assert r.status_code == 409 and "last active admin" in r.text


def test_someone_elses_decision_is_never_overwritten(client: TestClient[Any], make_user: Callable[..., str]) -> None:
    make_user("dana")
    make_user("eli")
    item = stage(client, ["greetings"], 3)[0]
    with api_client() as other:
        login(client, "dana")
        login(other, "eli")
        page = other.get(f"/portal/review/items/{item['id']}")  # eli opens it (version 1)...
        assert page.status_code == 200
        r = post(client, f"/portal/review/items/{item['id']}/decide",
                 {"decision": "accept", "version": item["version"]})
        assert r.status_code == 303  # ...dana accepts it first...
        r = post(other, f"/portal/review/items/{item['id']}/decide",
                 {"decision": "reject", "reason": "incorrect", "version": item["version"]})
    assert r.status_code == 409  # ...and eli's reject is refused, naming who decided
    assert "already decided (accepted) by dana" in r.text
    got = client.get(f"/v1/staging/{item['id']}", headers=staff()).json()
    assert got["status"] == "accepted" and got["decided_by"] == "dana"
    assert [a["action"] for a in got["audit"]] == ["accept"]


def test_reject_needs_a_reason_and_revision_queues_a_regeneration(client: TestClient[Any],
                                                                   make_user: Callable[..., str]) -> None:
    make_user("dana")
    login(client, "dana")
    first, second = stage(client, ["greetings"], 2)[:2]
    r = post(client, f"/portal/review/items/{first['id']}/decide", {"decision": "reject", "version": 1})
    assert r.status_code == 400 and "Pick a reason" in r.text
    r = post(client, f"/portal/review/items/{first['id']}/decide",
             {"decision": "reject", "reason": "ambiguous", "note": "two answers fit", "version": 1})
    assert r.status_code == 303 and str(second["id"]) in r.headers["location"]
    assert client.get(f"/v1/staging/{first['id']}", headers=staff()).json()["decision_reason"] == \
        "ambiguous: two answers fit"
    jobs_before = len(client.get("/v1/generation-jobs", headers=staff()).json())
    r = post(client, f"/portal/review/items/{second['id']}/decide", {"decision": "revision", "version": 1})
    assert r.status_code == 303
    jobs_after = client.get("/v1/generation-jobs", headers=staff()).json()
    assert len(jobs_after) == jobs_before + 1
    assert jobs_after[0]["spec"]["skills"] == [second["skill_id"]] and jobs_after[0]["counts"]["requested"] == 1
    assert client.get(f"/v1/staging/{second['id']}", headers=staff()).json()["status"] == "revision"


def test_edit_then_accept_validates_and_records_before_and_after(client: TestClient[Any],
                                                                 make_user: Callable[..., str]) -> None:
    make_user("dana")
    login(client, "dana")
    items = stage(client, ["greetings"], 5)
    item = next(i for i in items if i["type"] == "multiple_choice")
    content = item["content"]
    form = {"prompt": content["prompt"], "choices": "\n".join(content["choices"]), "answer": "not among them",
            "accepted_answers": "", "explanation": content["explanation"], "difficulty": content["difficulty"],
            "version": item["version"]}
    r = post(client, f"/portal/review/items/{item['id']}/edit", form)
    assert r.status_code == 400
    assert 'data-field="choices"' in r.text and "is not among the choices" in r.text
    assert client.get(f"/v1/staging/{item['id']}", headers=staff()).json()["status"] == "pending"
    form.update(answer=content["answer"], explanation="Hola means hello.")
    r = post(client, f"/portal/review/items/{item['id']}/edit", form)
    assert r.status_code == 303, r.text
    got = client.get(f"/v1/staging/{item['id']}", headers=staff()).json()
    assert got["status"] == "accepted" and got["content"]["explanation"] == "Hola means hello."
    (audit,) = got["audit"]
    assert audit["action"] == "edit_accept" and audit["actor"] == "dana"
    assert audit["before"]["explanation"] == content["explanation"]
    assert audit["after"]["explanation"] == "Hola means hello."
    page = client.get(f"/portal/review/items/{item['id']}?status=")
    assert "edit accept" in page.text and "Hola means hello." in page.text


def test_bulk_accept_takes_only_the_confirmed_low_risk_set(client: TestClient[Any], make_user: Callable[..., str],
                                                           portal_data: Endpoints) -> None:
    make_user("dana")
    login(client, "dana")
    items = stage(client, ["greetings"], 6)
    risky = items[0]
    db(portal_data, lambda conn: conn.execute("UPDATE questions_staging SET risk = 0.9 WHERE id = %s", (risky["id"],)))
    page = client.get("/portal/review/bulk")
    assert page.status_code == 200
    chosen = re.findall(r'name="item" value="([^"]+)"', page.text)
    assert len(chosen) == len(items) - 1 and not any(c.startswith(risky["id"]) for c in chosen)
    # A tampered form naming the risky item still cannot bulk-accept it.
    r = post(client, "/portal/review/bulk", {"item": [*chosen, f"{risky['id']}:1"]})
    assert r.status_code == 303
    assert "were above the bulk risk cap" in client.get("/portal/review").text
    statuses = {i["id"]: i["status"] for i in client.get("/v1/staging", params={"limit": 50}, headers=staff()).json()}
    assert statuses[risky["id"]] == "pending"
    assert sum(s == "accepted" for s in statuses.values()) == len(items) - 1


def test_dashboard_opportunity_starts_a_job(client: TestClient[Any], make_user: Callable[..., str]) -> None:
    make_user("dana")
    login(client, "dana")
    page = client.get("/portal/")
    assert 'id="opportunities"' in page.text and 'data-skill="greetings"' in page.text
    r = post(client, "/portal/opportunities/generate", {"course": COURSE, "skill": "greetings", "count": "20"})
    assert r.status_code == 303 and r.headers["location"].startswith("/portal/jobs/")
    job = client.get(f"/v1/generation-jobs/{r.headers['location'].rsplit('/', 1)[1]}", headers=staff()).json()
    assert job["spec"]["skills"] == ["greetings"] and job["counts"]["requested"] == 20
    detail = client.get(r.headers["location"])
    assert "hx-trigger=\"every 1s\"" in detail.text  # live progress until it finishes


def test_job_form_errors_and_estimate(client: TestClient[Any], make_user: Callable[..., str]) -> None:
    make_user("dana")
    login(client, "dana")
    r = post(client, "/portal/jobs", {"course": COURSE, "count": "lots"})
    assert r.status_code == 400 and "Pick at least one skill" in r.text and "whole number" in r.text
    r = post(client, "/portal/jobs", {"course": COURSE, "skills": "greetings", "count": "100000"})
    assert r.status_code == 400 and "between 1 and" in r.text
    r = post(client, "/portal/jobs/estimate", {"course": COURSE, "skills": "greetings", "count": "10"})
    assert r.status_code == 200 and 'id="estimate-total">$0<' in r.text and "offline" in r.text


def test_estimate_prices_paid_tiers() -> None:
    cfg = FactorySettings(tiers=[
        {"name": "small", "provider": "openai", "model": "gpt-4.1-mini", "max_complexity": 0.3},
        {"name": "big", "provider": "openai", "model": "gpt-4.1"}])
    course = {"id": COURSE, "name": "Spanish", "language": "es", "source_language": "en"}
    skills = [{"id": "greetings", "name": "Greetings", "level": "A1", "description": ""},
              {"id": "subjunctive", "name": "Subjunctive", "level": "B2", "description": ""}]
    est = estimate(cfg, course=course, skills=skills, count=40, level=None, topic=None,
                   types=["multiple_choice", "translation"])
    assert est.batches == 4 and est.items == 40
    assert {t.tier for t in est.tiers} == {"small", "big"}
    assert 0 < est.usd < est.worst_usd
    assert estimate(FactorySettings(), course=course, skills=skills, count=40, level=None, topic=None,
                    types=["cloze"]).free


def test_cli_users_create(portal_data: Endpoints, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough secret\n"))
    assert cli.main(["users", "create", "--id", "gus", "--role", "designer", "--password-stdin"]) == 0
    assert "created designer 'gus'" in capsys.readouterr().out
    assert cli.main(["users", "create", "--id", "gus", "--role", "admin"]) == 2
    assert "already exists" in capsys.readouterr().err
    row = db(portal_data, lambda conn: users.get_user(conn, "gus"))
    assert row["role"] == "designer" and row["password_hash"].startswith("$argon2id$")
    with api_client() as c:
        assert login(c, "gus", "a long enough secret").status_code == 303


def test_first_admin_only_when_there_is_no_user(portal_data: Endpoints) -> None:
    from lessonloop.stack import create_first_admin

    password = create_first_admin(portal_data.database_url)
    assert password and len(password) >= 12
    assert create_first_admin(portal_data.database_url) is None
    with api_client() as c:
        assert login(c, "admin", password).status_code == 303
        assert c.get("/portal/admin/users").status_code == 200


def test_retire_from_the_portal_filters_every_playlist(client: TestClient[Any], make_user: Callable[..., str],
                                                       portal_data: Endpoints) -> None:
    make_user("dana")
    login(client, "dana")
    stage(client, ["greetings"], 2)
    assert post(client, "/portal/review/bulk", {"item": [f"{i['id']}:1" for i in client.get(
        "/v1/staging", params={"status": "pending"}, headers=staff()).json()]}).status_code == 303
    assert post(client, "/portal/ingestions").status_code == 303
    question = client.get("/v1/staging", params={"status": "ingested"}, headers=staff()).json()[0]
    qid = db(portal_data, lambda conn: _question_of(conn, question["id"]))
    r = post(client, f"/portal/bank/{qid}/retire", {"reason": ""})
    assert r.status_code == 400 and "Say why" in r.text
    r = post(client, f"/portal/bank/{qid}/retire", {"reason": "answer key is wrong"})
    assert r.status_code == 303
    page = client.get(f"/portal/bank/{qid}")
    assert "retired" in page.text and "answer key is wrong" in page.text
    store = redis.Redis.from_url(portal_data.redis_url)
    assert all(store.zscore(constants.retired_key(b), str(qid)) is not None for b in (0, 511, 1023))
    r = post(client, f"/portal/bank/{qid}/retire", {"reason": "again"})
    assert r.status_code == 409 and "already retired" in r.text


async def _question_of(conn: Any, staging_id: str) -> Any:
    row = await (await conn.execute("SELECT id FROM questions WHERE staging_id = %s", (staging_id,))).fetchone()
    return row["id"]

