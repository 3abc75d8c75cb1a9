"""The ASGI application: litestar, with a front door that runs before the framework.

Each HTTP request is, in order:
1. stamped with the moment it reached the application (`shared.server_timing`);
2. held to the per-address rate limit (`shared.ratelimit.IPRateLimit`), before any other work;
3. offered to the *lanes*: callables `(scope, receive, send) -> bool` that answer a hot route's
   common case directly and return True, or return False to let the framework route it. The warm
   lesson start is one (`serving.warm_lane`): on a hit it costs a token-cache lookup and one Redis
   round trip, not litestar's routing, middleware and parameter parsing — under low load those
   doubled the request's server time (docs/api.md). A lane never answers an error: everything but
   its success case goes on to the framework, which answers errors one way for every route;
4. otherwise routed by litestar as usual.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from litestar import Litestar

from shared import server_timing
from shared.ratelimit import IPRateLimit
from shared.server_timing import RunQueueClock

Lane = Callable[[Any, Any, Any], Awaitable[bool]]


class App(Litestar):
    cpu_wait: RunQueueClock | None = None
    """Set by the app factory when `serving.server_timing_cpu_wait` is on."""
    ip_limit: IPRateLimit | None = None
    """The per-address limit, set by the app factory."""
    lanes: Sequence[Lane] = ()
    """Set by the application's lifespan once the services they need are open."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope[server_timing.SCOPE_KEY] = time.perf_counter()
            if self.cpu_wait is not None:
                scope[server_timing.WAIT_KEY] = self.cpu_wait()
            if self.ip_limit is not None and await self.ip_limit.rejected(scope, send):
                return
            scope["app"] = self
            for lane in self.lanes:
                if await lane(scope, receive, send):
                    return
        await super().__call__(scope, receive, send)
