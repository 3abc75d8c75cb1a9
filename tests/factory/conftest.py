"""Factory fixtures: the session's Redis (per test: emptied, with the tables, by `clean`) and a fake
provider server per module (reset for each test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loadtests.fake_llm import FakeLLMServer
from shared.runtime import Endpoints


@pytest.fixture
def redis_clean(clean: Endpoints) -> str:
    """URL of the session's queue Redis (breakers, budgets, rate limits), empty for this test."""
    return clean.queue_redis_url


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeLLMServer]:
    """One fake OpenAI + Anthropic server per test module (a real HTTP server on loopback)."""
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeLLMServer) -> FakeLLMServer:
    """The module's fake server with its faults, latency and counters reset for this test."""
    fake_server.reset()
    return fake_server
