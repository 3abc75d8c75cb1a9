"""Factory fixtures: the session's Redis (per test: emptied, with the tables, by `clean`) and a fake
provider server per module (reset for each test)."""

from __future__ import annotations

import pytest

from shared.runtime import Endpoints


@pytest.fixture
def redis_clean(clean: Endpoints) -> str:
    """URL of the session's queue Redis (breakers, budgets, rate limits), empty for this test."""
    return clean.queue_redis_url
