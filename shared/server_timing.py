"""Where a request's server-side time starts: `App` (the litestar application) stamps the moment
the ASGI server hands it a request, so a `Server-Timing: app;dur` figure covers routing, middleware
(rate limits), auth, the handler and building the response, not the handler body alone. What it
cannot see is the time before the application is called: the HTTP server parsing the request and
the request's task waiting for the event loop (under load, behind other requests) — the client's
latency includes that."""

from __future__ import annotations

import time
from typing import Any

from litestar import Litestar

SCOPE_KEY = "lessonloop.t0"


class App(Litestar):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope[SCOPE_KEY] = time.perf_counter()
        await super().__call__(scope, receive, send)


def started(scope: Any) -> float:
    """When the request reached the application (now, if it came in some other way, e.g. a test
    calling the handler's ASGI app directly)."""
    return scope.get(SCOPE_KEY) or time.perf_counter()  # type: ignore[no-any-return]
