"""The portal's sign-in throttle (review_portal/web: /portal/login) from an attacker's side: wrong
passwords lock the user id from that address, case and surrounding spaces do not reset the count,
the right password is refused while locked, and the JSON API is not locked with it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from shared.runtime import Endpoints
from shared.settings import get_settings
from tests.helpers import api_client, staff
from tests.review_portal.conftest import PASSWORD

LOGIN = "/portal/login"


@pytest.fixture
def portal(portal_data: Endpoints) -> Iterator[TestClient[Any]]:
    with api_client() as c:
        yield c


def login(client: TestClient[Any], user_id: str, password: str) -> Any:
    if "ll_csrf" not in client.cookies:
        client.get(LOGIN)
    return client.post(LOGIN, data={"_csrf_token": client.cookies["ll_csrf"], "user_id": user_id,
                                    "password": password}, follow_redirects=False)


def lock(client: TestClient[Any], user_id: str) -> None:
    variants = [user_id, user_id.upper(), f"  {user_id} ", user_id.title()]
    for i in range(get_settings().portal.login_max_attempts):
        r = login(client, variants[i % len(variants)], f"guess-{i}")
        assert r.status_code == 400, r.text


def test_guessing_locks_the_account_whatever_the_spelling(portal: TestClient[Any],
                                                          make_user: Callable[..., str]) -> None:
    make_user("dana")
    lock(portal, "dana")
    for spelling in ("dana", "DANA", " dana "):
        r = login(portal, spelling, PASSWORD)
        assert r.status_code == 429 and "Too many wrong passwords" in r.text
    assert "ll_portal" not in portal.cookies  # no session was handed out
    assert portal.get("/v1/courses", headers=staff()).status_code == 200


def test_the_lockout_says_when_to_retry(portal: TestClient[Any], make_user: Callable[..., str]) -> None:
    make_user("eli")
    lock(portal, "eli")
    r = login(portal, "eli", PASSWORD)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
