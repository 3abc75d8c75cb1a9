"""The one retry owner and the shared circuit breakers: Retry-After, deadlines, breakers opening on
failures and on slow calls, their state shared by two workers through Redis, the half-open probe."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis
import redis.asyncio

from factory.providers.base import RateLimited, RequestRejected, ServerError
from factory.resilience import Breakers, RetryPolicy, retry_call
from factory.router import BatchRequest, BatchResult, Router
from loadtests.fake_llm import FakeLLMServer
from shared.settings import FactorySettings

SKILL = {"id": "greetings", "name": "Greetings", "level": "A1", "description": "Say hello and goodbye."}


def settings_for(fake: FakeLLMServer, **overrides: Any) -> FactorySettings:
    tiers = [
        {"name": "strong", "provider": "openai", "model": "fake-strong", "base_url": fake.base_url,
         "price_in": 2.0, "price_out": 8.0},
        {"name": "backup", "provider": "anthropic", "model": "fake-backup", "base_url": fake.url,
         "price_in": 1.0, "price_out": 5.0},
    ]
    values: dict[str, Any] = {"tiers": tiers, "openai_api_key": "test", "anthropic_api_key": "test",
                              "retry_initial_s": 0.01, "retry_max_s": 0.05, "retry_jitter_s": 0.01}
    values.update(overrides)
    return FactorySettings(**values)


def batch(**overrides: Any) -> BatchRequest:
    values: dict[str, Any] = {
        "job_id": "job-r", "batch_no": 0, "course": {"id": "spanish", "language": "es"}, "skills": [SKILL],
        "level": "A1", "topic": None, "types": ["multiple_choice"], "count": 2, "language": "es",
        "deadline": time.time() + 30, "budget_usd": None,
    }
    values.update(overrides)
    return BatchRequest(**values)


class Worker:
    """One factory worker: its own Router and Redis clients (so state is shared only through Redis)."""

    def __init__(self, url: str, settings: FactorySettings) -> None:
        self.sync = redis.Redis.from_url(url)
        self.async_ = redis.asyncio.Redis.from_url(url)
        self.router = Router(settings, self.sync, self.async_)

    async def close(self) -> None:
        await self.router.aclose()
        await self.async_.aclose()
        self.sync.close()


def run_workers(url: str, settings: FactorySettings, *reqs: BatchRequest,
                concurrent: bool = False) -> list[BatchResult]:
    """Each request on its own worker; one after the other, or all at once."""

    async def go() -> list[BatchResult]:
        workers = [Worker(url, settings) for _ in reqs]
        try:
            if concurrent:
                pairs = zip(workers, reqs, strict=True)
                return list(await asyncio.gather(*(w.router.generate_batch(r) for w, r in pairs)))
            return [await w.router.generate_batch(r) for w, r in zip(workers, reqs, strict=True)]
        finally:
            for w in workers:
                await w.close()

    return asyncio.run(go())


def kinds(result: BatchResult) -> list[tuple[str, str]]:
    return [(f["tier"], f["kind"]) for f in result.failures]


def breaker_state(url: str, fake: FakeLLMServer, model: str = "fake-strong") -> str:
    with redis.Redis.from_url(url) as client:
        return Breakers(client, fail_max=1, reset_timeout=1, probe_ttl_s=1).state("openai", model)


# --- tenacity: the one retry owner -------------------------------------------------------------------
def test_only_transport_errors_are_retried() -> None:
    calls: list[int] = []

    async def flaky(n: int) -> str:
        calls.append(n)
        if n < 3:
            raise ServerError("boom", status=500)
        return "ok"

    async def rejected(n: int) -> str:
        calls.append(n)
        raise RequestRejected("bad key", status=401)

    policy = RetryPolicy(attempts=3, initial_s=0.01, max_s=0.02, jitter_s=0.0)
    assert asyncio.run(retry_call(flaky, policy=policy, deadline=None)) == "ok" and calls == [1, 2, 3]
    calls.clear()
    with pytest.raises(RequestRejected):
        asyncio.run(retry_call(rejected, policy=policy, deadline=None))
    assert calls == [1]


def test_retry_after_longer_than_the_deadline_allows_is_not_slept() -> None:
    async def limited(n: int) -> str:
        raise RateLimited("slow down", status=429, retry_after=5.0)

    started = time.monotonic()
    with pytest.raises(RateLimited):
        asyncio.run(retry_call(limited, policy=RetryPolicy(attempts=5), deadline=time.time() + 2))
    assert time.monotonic() - started < 0.5


def test_retry_after_is_honoured_end_to_end(redis_clean: str, fake: FakeLLMServer) -> None:
    fake.set_fault("rate_limit", model="fake-strong", times=1, retry_after=1)
    started = time.monotonic()
    [result] = run_workers(redis_clean, settings_for(fake), batch())
    elapsed = time.monotonic() - started
    assert result.tier == "strong" and result.items[0][1].attempts == 2
    assert kinds(result) == [("strong", "rate_limited")] and "retrying in 1." in result.failures[0]["message"]
    first, second = result.calls
    assert first.outcome == "rate_limited" and second.outcome == "ok"
    assert elapsed >= 1.0, f"retried after {elapsed:.2f}s, before the 1 s Retry-After"


def test_a_retry_after_past_the_deadline_escalates_at_once(redis_clean: str, fake: FakeLLMServer) -> None:
    fake.set_fault("rate_limit", model="fake-strong", retry_after=3)
    started = time.monotonic()
    [result] = run_workers(redis_clean, settings_for(fake), batch(deadline=time.time() + 2))
    assert time.monotonic() - started < 1.0
    assert result.tier == "backup" and kinds(result) == [("strong", "rate_limited")]


def test_a_retry_after_beyond_the_configured_maximum_escalates(redis_clean: str, fake: FakeLLMServer) -> None:
    fake.set_fault("overloaded", model="fake-strong", retry_after=20)
    started = time.monotonic()
    [result] = run_workers(redis_clean, settings_for(fake, max_retry_after_s=5), batch())
    assert time.monotonic() - started < 1.0 and result.tier == "backup"


# --- breakers shared through Redis ------------------------------------------------------------------------
def test_consecutive_failures_open_the_breaker_for_every_worker(redis_clean: str, fake: FakeLLMServer) -> None:
    fake.set_fault("server_error", model="fake-strong")
    settings = settings_for(fake, breaker_fail_max=3, retry_attempts=3)
    first, second = run_workers(redis_clean, settings, batch(), batch(batch_no=1))
    assert kinds(first) == [("strong", "server_error")] * 3 and first.tier == "backup"
    assert breaker_state(redis_clean, fake) == "open"
    # worker 2 never calls the open tier: it skips it at once
    assert kinds(second) == [("strong", "breaker_open")] and second.tier == "backup"
    assert fake.stats()["model:fake-strong"] == 3


def test_calls_slower_than_the_timeout_count_and_open_the_breaker(redis_clean: str, fake: FakeLLMServer) -> None:
    fake.set_fault("slow", model="fake-strong", latency_s=1.0)
    settings = settings_for(fake, call_timeout=0.3, breaker_fail_max=2, retry_attempts=1)
    started = time.monotonic()
    results = run_workers(redis_clean, settings, batch(), batch(batch_no=1), batch(batch_no=2))
    assert time.monotonic() - started < 3.0
    assert [kinds(r) for r in results] == [
        [("strong", "timeout")], [("strong", "timeout")], [("strong", "breaker_open")],
    ]
    assert all(r.tier == "backup" for r in results)
    assert breaker_state(redis_clean, fake) == "open"


def test_after_the_reset_timeout_one_probe_closes_or_reopens_the_breaker(
    redis_clean: str, fake: FakeLLMServer
) -> None:
    settings = settings_for(fake, breaker_fail_max=1, breaker_reset_s=1.5, retry_attempts=1)
    fake.set_fault("server_error", model="fake-strong", times=2)
    [opened] = run_workers(redis_clean, settings, batch())
    assert kinds(opened) == [("strong", "server_error")] and breaker_state(redis_clean, fake) == "open"
    time.sleep(1.55)  # pybreaker keeps opened_at in whole seconds: the wait is 0.5-1.5 s
    [failed_probe] = run_workers(redis_clean, settings, batch())  # the probe fails: open again
    assert kinds(failed_probe) == [("strong", "server_error")] and breaker_state(redis_clean, fake) == "open"
    [skipped] = run_workers(redis_clean, settings, batch())
    assert kinds(skipped) == [("strong", "breaker_open")]
    time.sleep(1.55)  # pybreaker keeps opened_at in whole seconds: the wait is 0.5-1.5 s
    [probe] = run_workers(redis_clean, settings, batch())  # the probe succeeds: closed
    assert probe.tier == "strong" and not probe.failures and breaker_state(redis_clean, fake) == "closed"
    assert fake.stats()["model:fake-strong"] == 3


def test_only_one_worker_sends_the_half_open_probe(redis_clean: str, fake: FakeLLMServer) -> None:
    settings = settings_for(fake, breaker_fail_max=1, breaker_reset_s=1.5, retry_attempts=1)
    fake.set_fault("server_error", model="fake-strong", times=1)
    run_workers(redis_clean, settings, batch())
    assert breaker_state(redis_clean, fake) == "open"
    time.sleep(1.55)  # pybreaker keeps opened_at in whole seconds: the wait is 0.5-1.5 s
    fake.set_latency(0.3)
    results = run_workers(redis_clean, settings, *(batch(batch_no=i) for i in range(3)), concurrent=True)
    assert sorted(r.tier or "" for r in results) == ["backup", "backup", "strong"]
    assert fake.stats()["model:fake-strong"] == 2  # the failure that opened it, then a single probe
    assert breaker_state(redis_clean, fake) == "closed"
