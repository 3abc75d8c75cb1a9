"""Token buckets: the burst passes, the next request waits, tokens refill at the rate."""

from __future__ import annotations

from shared.ratelimit import TokenBuckets


def test_burst_then_wait_then_refill() -> None:
    b = TokenBuckets(rate=5)  # burst 10
    assert all(b.allow("a", now=100.0) == 0 for _ in range(10))
    wait = b.allow("a", now=100.0)
    assert 0 < wait <= 0.2 + 1e-9
    assert b.allow("b", now=100.0) == 0  # keys are independent
    assert b.allow("a", now=100.2) == 0  # one token back after 1/rate seconds
    assert b.allow("a", now=100.2) > 0


def test_disabled_when_rate_is_zero() -> None:
    assert not TokenBuckets(rate=0).enabled
