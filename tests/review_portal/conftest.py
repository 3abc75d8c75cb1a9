"""Portal fixtures: users, staged items, a live uvicorn server on a free port (in a thread, against the
session's embedded stores), and one headless Debian Chromium per module driven by Playwright, with a
screenshot in test-artifacts/ when a browser test fails.

Playwright's sync API keeps an event loop running in this thread, so anything async a browser test
needs (loading the curriculum, running a worker) goes through `off_thread()`."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from shared.runtime import Endpoints
from tests.helpers import LiveServer

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
COURSE = "spanish-a1-b1"
PASSWORD = "correct horse battery"


def off_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn` in a fresh thread (no event loop there) and return its result."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args, **kwargs).result(timeout=120)


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return off_thread(lambda: asyncio.run(make()))


async def _with_conn(database_url: str, fn: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        out = await fn(conn)
        await conn.commit()
        return out


def db(eps: Endpoints, fn: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run `fn(conn)` against the test database in one transaction (off this thread)."""
    return run_async(lambda: _with_conn(eps.database_url, fn))


@pytest.fixture
def portal_data(clean: Endpoints) -> Endpoints:
    """Empty stores with the sample curriculum loaded (like `curriculum`, but safe beside a browser)."""
    from factory.offline.curriculum_file import load_curriculum
    from shared.db import courses

    data = load_curriculum()
    db(clean, lambda conn: courses.save_curriculum(conn, data))
    return clean


@pytest.fixture
def make_user(portal_data: Endpoints) -> Callable[..., str]:
    """make_user(id, role='designer', password=PASSWORD) -> id."""
    from review_portal.web.accounts import create_user

    def make(user_id: str, role: str = "designer", password: str = PASSWORD) -> str:
        db(portal_data, lambda conn: create_user(conn, user_id=user_id, role=role, password=password,
                                                 display_name=user_id.title()))
        return user_id

    return make


def stage_items(base_url: str, skills: list[str], count: int) -> dict[str, Any]:
    """A generation job through the JSON API, run to completion by the factory worker (burst mode)."""
    from tests.helpers import run_worker, staff

    r = httpx.post(f"{base_url}/v1/generation-jobs", json={"course": COURSE, "skills": skills, "count": count},
                   headers=staff(), timeout=10)
    assert r.status_code == 202, r.text
    off_thread(run_worker, "factory")
    return httpx.get(f"{base_url}{r.headers['location']}", headers=staff(), timeout=10).json()


def staged(base_url: str, **params: Any) -> list[dict[str, Any]]:
    from tests.helpers import staff

    r = httpx.get(f"{base_url}/v1/staging", params={"limit": 500, **params}, headers=staff(), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


# --- the live server ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_server(stores: Endpoints) -> Iterator[LiveServer]:
    server = LiveServer().start()
    yield server
    server.stop()


# --- the browser -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless; never downloaded, never skipped: without it the tests fail."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: install it with `apt-get install chromium` "
                    "(as root, after `apt-get update`)", pytrace=False)
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                               headless=True, args=CHROMIUM_ARGS)
    except Exception as exc:
        pw.stop()
        pytest.fail(f"Chromium did not start ({exc}); install it with `apt-get install chromium`", pytrace=False)
    yield b
    b.close()
    pw.stop()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def page(browser: Any, live_server: LiveServer, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (own cookies) on the live server; a screenshot on failure."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(8000)
    pg = context.new_page()
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        try:
            pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            (ARTIFACTS / f"{name}.html").write_text(pg.content(), encoding="utf-8")
        except Exception:  # a crashed page still fails the test; the screenshot is a bonus
            pass
    context.close()


def sign_in(pg: Any, user_id: str, password: str = PASSWORD) -> None:
    pg.goto("/portal/login")
    pg.fill("#user_id", user_id)
    pg.fill("#password", password)
    pg.click("button[type=submit]")
