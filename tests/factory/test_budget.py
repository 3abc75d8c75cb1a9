"""Budgets reserved atomically before each call and refunded after; rate limits shared by workers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis
import redis.asyncio

from factory.budget import Budget, BudgetExceeded, RateLimiter, RateLimitExceeded, Reservation, usd_to_micro
from factory.router import BatchRequest, BatchResult, Router
from loadtests.fake_llm import FakeLLMServer
from shared import constants
from shared.settings import FactorySettings

SKILL = {"id": "greetings", "name": "Greetings", "level": "A1", "description": "Say hello and goodbye."}


def remaining(url: str, job_id: str) -> int | None:
    with redis.Redis.from_url(url) as client:
        value = client.get(constants.job_budget_key(job_id))
    return None if value is None else int(value)


# --- budget ---------------------------------------------------------------------------------------------
def test_twenty_concurrent_reservations_never_overrun_the_budget(redis_clean: str) -> None:
    async def go() -> list[Reservation | BudgetExceeded]:
        clients = [redis.asyncio.Redis.from_url(redis_clean) for _ in range(20)]  # 20 "workers"
        try:
            async def one(client: redis.asyncio.Redis) -> Reservation | BudgetExceeded:
                try:
                    return await Budget(client).reserve("job-b", 150, limit_usd=0.001)
                except BudgetExceeded as exc:
                    return exc

            return list(await asyncio.gather(*(one(c) for c in clients)))
        finally:
            for c in clients:
                await c.aclose()

    outcomes = asyncio.run(go())
    granted = [o for o in outcomes if isinstance(o, Reservation)]
    assert len(granted) == 6 and sum(r.amount for r in granted) <= 1000  # $0.001 = 1000 micro-dollars
    assert remaining(redis_clean, "job-b") == 100


def test_the_unused_part_of_a_reservation_is_refunded(redis_clean: str) -> None:
    async def go() -> None:
        client = redis.asyncio.Redis.from_url(redis_clean)
        try:
            budget = Budget(client)
            reservation = await budget.reserve("job-r", 400, limit_usd=0.001)
            assert await budget.remaining("job-r") == 600
            await reservation.settle(120)
            await reservation.settle(120)  # settling twice refunds once
            assert await budget.remaining("job-r") == 880
            assert await client.ttl(constants.job_budget_key("job-r")) > 0
            free = await budget.reserve("job-none", 10**9, limit_usd=None)  # no budget: nothing stored
            await free.settle(0)
            assert await budget.remaining("job-none") is None
        finally:
            await client.aclose()

    asyncio.run(go())
    assert usd_to_micro(0.000001) == 1 and usd_to_micro(2.5) == 2_500_000


def test_concurrent_batches_spend_no_more_than_the_job_budget(redis_clean: str, fake: FakeLLMServer) -> None:
    fake.set_latency(0.2)
    settings = FactorySettings(
        tiers=[{"name": "strong", "provider": "openai", "model": "fake-strong", "base_url": fake.base_url,
                "price_in": 2.0, "price_out": 8.0}],
        openai_api_key="test", max_output_tokens=1000,
    )
    budget_usd = 0.05

    async def go() -> list[BatchResult]:
        sync, async_ = redis.Redis.from_url(redis_clean), redis.asyncio.Redis.from_url(redis_clean)
        router = Router(settings, sync, async_)
        try:
            reqs = [BatchRequest(job_id="job-c", batch_no=i, course={"id": "spanish"}, skills=[SKILL], level="A1",
                                 topic=None, types=["multiple_choice"], count=2, language="es",
                                 deadline=time.time() + 30, budget_usd=budget_usd) for i in range(20)]
            return list(await asyncio.gather(*(router.generate_batch(r) for r in reqs)))
        finally:
            await router.aclose()
            await async_.aclose()
            sync.close()

    results = asyncio.run(go())
    spent = sum(usd_to_micro(r.cost_usd) for r in results)
    left = remaining(redis_clean, "job-c")
    assert left is not None and left >= 0 and spent + left == usd_to_micro(budget_usd)
    paid = [r for r in results if r.tier == "strong"]
    refused = [r for r in results if ("strong", "budget_exceeded") in [(f["tier"], f["kind"]) for f in r.failures]]
    assert paid and refused and len(paid) + len(refused) == 20
    assert all(r.tier == "offline" and r.items for r in refused)  # the free tier finishes the job
    assert fake.stats()["requests"] == len(paid)


# --- rate limits -------------------------------------------------------------------------------------------
def _start_of_a_fresh_window(window_s: float, margin: float) -> None:
    """Sleep until just after a window turns, unless at least `margin` seconds of this one remain."""
    left = window_s - time.time() % window_s
    if left < margin:
        time.sleep(left + 0.02)


def test_the_request_limit_is_shared_by_workers_and_waits_for_the_next_window(redis_clean: str) -> None:
    _start_of_a_fresh_window(1.0, 0.7)

    async def go() -> tuple[list[str | None], float]:
        a, b = redis.asyncio.Redis.from_url(redis_clean), redis.asyncio.Redis.from_url(redis_clean)
        try:
            worker_a, worker_b = RateLimiter(a, window_s=1), RateLimiter(b, window_s=1)
            kwargs: dict[str, Any] = {"rpm": 2, "tpm": None, "tokens": 10, "deadline": None, "max_wait": 2.0}
            t1 = await worker_a.acquire("openai", "m", **kwargs)
            t2 = await worker_b.acquire("openai", "m", **kwargs)
            started = time.monotonic()
            t3 = await worker_a.acquire("openai", "m", **kwargs)  # full: waits for the window to turn
            return [t1.key, t2.key, t3.key], time.monotonic() - started
        finally:
            await a.aclose()
            await b.aclose()

    keys, waited = asyncio.run(go())
    assert keys[0] == keys[1] != keys[2] and waited > 0
    assert keys[2] == constants.rate_limit_key("openai", "m", int(keys[2].rsplit(":", 1)[1]))


def test_a_full_window_escalates_rather_than_pass_the_deadline(redis_clean: str) -> None:
    _start_of_a_fresh_window(60.0, 5.0)

    async def go() -> None:
        client = redis.asyncio.Redis.from_url(redis_clean)
        try:
            limiter = RateLimiter(client, window_s=60)
            await limiter.acquire("anthropic", "m", rpm=None, tpm=1000, tokens=600, deadline=None, max_wait=0)
            started = time.monotonic()
            with pytest.raises(RateLimitExceeded, match="rate limit"):  # 600 + 600 tokens > 1000 per window
                await limiter.acquire("anthropic", "m", rpm=None, tpm=1000, tokens=600,
                                      deadline=time.time() + 1, max_wait=120)
            assert time.monotonic() - started < 0.2
        finally:
            await client.aclose()

    asyncio.run(go())


def test_a_rate_limited_tier_hands_the_batch_to_the_next_one(redis_clean: str, fake: FakeLLMServer) -> None:
    _start_of_a_fresh_window(60.0, 5.0)
    settings = FactorySettings(
        tiers=[
            {"name": "strong", "provider": "openai", "model": "fake-strong", "base_url": fake.base_url,
             "price_in": 2.0, "price_out": 8.0, "rpm": 1},
            {"name": "backup", "provider": "anthropic", "model": "fake-backup", "base_url": fake.url,
             "price_in": 1.0, "price_out": 5.0},
        ],
        openai_api_key="test", anthropic_api_key="test", rate_window_s=60, rate_limit_max_wait_s=0.5,
    )

    async def go() -> list[BatchResult]:
        out = []
        for i in range(2):  # two workers, one after the other
            sync, async_ = redis.Redis.from_url(redis_clean), redis.asyncio.Redis.from_url(redis_clean)
            router = Router(settings, sync, async_)
            try:
                out.append(await router.generate_batch(BatchRequest(
                    job_id="job-l", batch_no=i, course={"id": "spanish"}, skills=[SKILL], level="A1", topic=None,
                    types=["multiple_choice"], count=2, language="es", deadline=None, budget_usd=None)))
            finally:
                await router.aclose()
                await async_.aclose()
                sync.close()
        return out

    first, second = asyncio.run(go())
    assert first.tier == "strong" and second.tier == "backup"
    assert [(f["tier"], f["kind"]) for f in second.failures] == [("strong", "rate_limit_wait")]
    assert fake.stats()["model:fake-strong"] == 1
