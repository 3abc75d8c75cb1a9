"""Per-learner and per-IP rate limits: token buckets in the API process's memory.

In-process on purpose: a shared (Redis) limiter would add a round trip to every request, and the
warm path's promise is one. With N API processes behind the load balancer, a client's effective
limit is at most N times the per-process rate; the edge (the WAF's per-IP rule, see
docs/deploy.md) caps floods globally. Client addresses are the ASGI `client` — uvicorn rewrites it
from X-Forwarded-For only for the proxies it is told to trust (`LESSONLOOP_SERVING_FORWARDED_ALLOW_IPS`,
given to uvicorn by `lessonloop serve`).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from shared import metrics

MAX_KEYS = 200_000
"""Buckets kept per limiter; beyond that the table starts afresh (a burst of new keys is rare)."""


class TokenBuckets:
    """`allow(key)` → 0 if allowed, else seconds until a token is available. Burst = 2 × rate."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else 2 * rate
        self._buckets: dict[str, list[float]] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def allow(self, key: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_KEYS:
                self._buckets.clear()
            self._buckets[key] = [self.burst - 1, now]
            return 0.0
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1:
            bucket[0] = tokens - 1
            return 0.0
        bucket[0] = tokens
        return (1 - tokens) / self.rate


def too_many(wait_s: float, who: str) -> dict[str, Any]:
    return {"status_code": 429, "detail": f"too many requests from this {who}; retry in {wait_s:.1f}s"}


class IPRateLimit:
    """Rejects HTTP requests over the per-IP rate with 429 + Retry-After, before any other work (the
    application's front door calls it first: shared.asgi.App)."""

    def __init__(self, rate: float) -> None:
        self.buckets = TokenBuckets(rate)

    async def rejected(self, scope: Any, send: Any) -> bool:
        """True if the request was over the limit and has been answered with 429."""
        client = scope.get("client")
        if not self.buckets.enabled or not client:
            return False
        wait = self.buckets.allow(client[0])
        if not wait:
            return False
        metrics.ERRORS.labels("rate_limit_ip", "429").inc()
        body = json.dumps(too_many(wait, "address")).encode()
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
            (b"retry-after", b"%d" % math.ceil(wait))]})
        await send({"type": "http.response.body", "body": body})
        return True
