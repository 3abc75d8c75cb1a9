"""Abuse-test fixtures: a bank to serve from and an in-process API client with the rate limits chosen
by each test (off unless a test turns them on)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from litestar.testing import TestClient

from shared.runtime import Endpoints
from shared.settings import ServingSettings
from tests.helpers import api_client, seed_bank
from tests.review_portal.conftest import make_user, portal_data  # noqa: F401 - the portal's fixtures, reused

COURSE = "spanish-a1-b1"
SKILLS = ["greetings", "numbers", "articles-gender"]


def needs_setting(name: str) -> pytest.MarkDecorator:
    """xfail (strict) while the serving setting the test is about does not exist yet."""
    missing = name not in ServingSettings.model_fields
    env = f"LESSONLOOP_SERVING_{name.upper()}"
    return pytest.mark.xfail(missing, strict=True, reason=f"the limiter is not in yet: no {env} setting")


@pytest.fixture
def bank(curriculum: dict[str, Any], clean: Endpoints) -> Endpoints:
    seed_bank(clean.database_url, curriculum, SKILLS, per_skill=12)
    return clean


@pytest.fixture
def client_with(monkeypatch: pytest.MonkeyPatch) -> Callable[..., AbstractContextManager[TestClient[Any]]]:
    """client_with(rate_per_learner=0, rate_per_ip=0, **serving) → an API client with those settings."""

    def make(**serving: Any) -> AbstractContextManager[TestClient[Any]]:
        values = {"rate_per_learner": 0, "rate_per_ip": 0, **serving}
        for key, value in values.items():
            monkeypatch.setenv(f"LESSONLOOP_SERVING_{key.upper()}", str(value))
        return api_client()

    return make


@pytest.fixture
def client(bank: Endpoints, client_with: Callable[..., AbstractContextManager[TestClient[Any]]]
           ) -> Iterator[TestClient[Any]]:
    with client_with() as c:
        yield c
