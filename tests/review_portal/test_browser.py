"""The portal in a real headless Chromium (Debian's, driven by Playwright) against a live uvicorn:
sign-in, a job with its cost and live progress, reviewing by keyboard, edit with a validation error,
bulk accept, ingestion and retirement. One browser per module; a fresh context (cookies) per test."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import redis
from playwright.sync_api import expect

from shared import constants
from shared.runtime import Endpoints
from tests.helpers import run_worker, staff
from tests.review_portal.conftest import LiveServer, off_thread, sign_in, stage_items, staged

ITEM_URL = re.compile(r"/portal/review/items/([0-9a-f-]{36})")


def item_id(page: Any) -> str:
    m = ITEM_URL.search(page.url)
    assert m, page.url
    return m.group(1)


def status_of(server: LiveServer, staging_id: str) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/v1/staging/{staging_id}", headers=staff(), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_sign_in_wrong_password_and_roles(page: Any, make_user: Callable[..., str]) -> None:
    make_user("dana")
    sign_in(page, "dana", "not my password")
    expect(page.locator("#login-error")).to_contain_text("Wrong user id or password")
    expect(page).to_have_url(re.compile(r"/portal/login"))
    sign_in(page, "dana")
    expect(page.locator(".flash.ok")).to_contain_text("Welcome, Dana")
    expect(page.locator("h1")).to_have_text("Dashboard")
    page.goto("/portal/admin/users")  # a designer is shown the 403 page, not the admin page
    expect(page.locator("h1")).to_have_text("Not allowed")
    page.goto("/portal/")
    page.click("#sign-out")
    expect(page).to_have_url(re.compile(r"/portal/login$"))
    page.goto("/portal/review")
    expect(page).to_have_url(re.compile(r"/portal/login\?next=%2Fportal%2Freview"))


def test_create_a_job_with_its_cost_and_live_progress(page: Any, make_user: Callable[..., str]) -> None:
    make_user("dana")
    sign_in(page, "dana")
    page.goto("/portal/jobs/new")
    page.click("#submit-job")  # no skill ticked: the form comes back with the field's error
    expect(page.locator("#error-skills")).to_have_text("Pick at least one skill.")
    page.check("input[name=skills][value=greetings]")
    page.fill("#count", "6")
    expect(page.locator("#estimate-total")).to_have_text("$0")  # offline tier, estimated before submitting
    expect(page.locator("#estimate")).to_contain_text("offline")
    page.click("#submit-job")
    expect(page).to_have_url(re.compile(r"/portal/jobs/[0-9a-f-]{36}$"))
    expect(page.locator("#job-status")).to_have_text("queued")
    off_thread(run_worker, "factory")
    expect(page.locator("#job-status")).to_have_text("succeeded")  # htmx polling, no reload
    expect(page.locator("#job-staged")).to_have_text("6")
    page.click("#review-job")
    expect(page.locator("#queue tbody tr")).to_have_count(6)


def test_review_by_keyboard(page: Any, make_user: Callable[..., str], live_server: LiveServer) -> None:
    make_user("dana")
    stage_items(live_server.url, ["greetings"], 4)
    sign_in(page, "dana")
    page.goto("/portal/review")
    page.keyboard.press("j")
    expect(page.locator("#queue tbody tr").first).to_have_class(re.compile("selected"))
    page.keyboard.press("Enter")
    expect(page.locator("#learner-view")).to_be_visible()
    first = item_id(page)
    expect(page.locator("#position")).to_have_text("1 of 4")
    page.keyboard.press("?")
    expect(page.locator("#help-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#help-dialog")).to_be_hidden()

    page.keyboard.press("a")  # accept: on to the next item
    expect(page.locator(".flash.ok")).to_have_text("Accepted.")
    second = item_id(page)
    assert second != first
    expect(page.locator("#position")).to_have_text("1 of 3")
    page.keyboard.press("j")
    expect(page.locator("#position")).to_have_text("2 of 3")
    page.keyboard.press("k")
    expect(page.locator("#position")).to_have_text("1 of 3")
    assert item_id(page) == second

    page.keyboard.press("r")  # reject: pick reason 2 by its number, Enter confirms
    expect(page.locator("#reject-dialog")).to_be_visible()
    page.keyboard.press("2")
    expect(page.locator("#reject-dialog input[name=reason]").nth(1)).to_be_checked()
    page.keyboard.press("Enter")
    expect(page.locator(".flash.ok")).to_have_text("Rejected.")
    assert status_of(live_server, first)["status"] == "accepted"
    got = status_of(live_server, second)
    assert got["status"] == "rejected" and got["decision_reason"] == "ambiguous" and got["decided_by"] == "dana"
    page.goto("/portal/progress")
    expect(page.locator("#reviewer-progress")).to_contain_text("dana")


def test_edit_then_accept_with_a_validation_error(page: Any, make_user: Callable[..., str],
                                                  live_server: LiveServer) -> None:
    make_user("dana")
    stage_items(live_server.url, ["greetings"], 6)
    item = next(i for i in staged(live_server.url, status="pending") if i["type"] == "multiple_choice")
    sign_in(page, "dana")
    page.goto(f"/portal/review/items/{item['id']}")
    page.keyboard.press("e")
    expect(page.locator("#edit-form")).to_be_visible()
    page.fill("#answer", "not one of the choices")
    page.click("#save-accept")
    expect(page.locator(".field-error[data-field=choices]")).to_contain_text("is not among the choices")
    expect(page.locator("#form-errors")).to_be_visible()
    assert status_of(live_server, item["id"])["status"] == "pending"
    page.fill("#answer", item["content"]["answer"])
    page.fill("#explanation", "Edited by a human reviewer.")
    page.locator("#explanation").press("Control+Enter")
    expect(page.locator(".flash.ok")).to_have_text("Edited and accepted.")
    got = status_of(live_server, item["id"])
    assert got["status"] == "accepted" and got["content"]["explanation"] == "Edited by a human reviewer."
    assert got["audit"][-1]["action"] == "edit_accept"
    page.goto(f"/portal/review/items/{item['id']}?status=")
    expect(page.locator("#audit")).to_contain_text("Edited by a human reviewer.")


def test_bulk_accept_with_confirmation(page: Any, make_user: Callable[..., str], live_server: LiveServer) -> None:
    make_user("dana")
    stage_items(live_server.url, ["greetings"], 5)
    sign_in(page, "dana")
    page.goto("/portal/review")
    page.click("#bulk-link")
    expect(page.locator("#bulk-count")).to_have_text("5")
    page.locator("input[name=item]").first.uncheck()
    page.click("#confirm-bulk")
    expect(page.locator(".flash.ok")).to_have_text("Accepted 4 item(s).")
    statuses = [i["status"] for i in staged(live_server.url)]
    assert sorted(statuses) == ["accepted"] * 4 + ["pending"]


def test_ingest_then_retire_a_live_question(page: Any, make_user: Callable[..., str], live_server: LiveServer,
                                            portal_data: Endpoints) -> None:
    make_user("dana")
    stage_items(live_server.url, ["greetings"], 3)
    for it in staged(live_server.url, status="pending"):
        r = httpx.post(f"{live_server.url}/v1/staging/{it['id']}/decision", json={"decision": "accept"},
                       headers=staff(), timeout=10)
        assert r.status_code == 200, r.text
    sign_in(page, "dana")
    page.click("#ingest-now")
    expect(page.locator(".flash.ok")).to_have_text("Ingestion done: 3 accepted question(s) moved into the bank.")
    page.goto("/portal/bank")
    expect(page.locator("#bank tbody tr")).to_have_count(3)
    page.locator("#bank tbody tr a").first.click()
    qid = page.url.rsplit("/", 1)[1]
    page.fill("#retire-reason", "the answer key is wrong")
    page.once("dialog", lambda d: d.accept())
    page.click("#retire")
    expect(page.locator(".flash.ok")).to_contain_text("Retired.")
    expect(page.locator("#question-status")).to_have_text("retired")
    expect(page.locator("#audit")).to_contain_text("the answer key is wrong")
    store = redis.Redis.from_url(portal_data.redis_url)
    assert store.zscore(constants.retired_key(constants.learner_bucket("any-learner")), qid) is not None
