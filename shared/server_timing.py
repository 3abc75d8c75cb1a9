"""Where a request's server-side time starts: `shared.asgi.App` stamps the moment the ASGI server
hands it a request, so a `Server-Timing: app;dur` figure covers routing, middleware
(rate limits), auth, the handler and building the response, not the handler body alone. What it
cannot see is the time before the application is called: the HTTP server parsing the request and
the request's task waiting for the event loop (under load, behind other requests) — the client's
latency includes that.

With `serving.server_timing_cpu_wait`, the header also carries `cpuwait;dur`: the part of `app;dur`
the process spent runnable but waiting for a CPU (another process held its core). On a shared
machine that separates the server's own latency from its neighbours'.
"""

from __future__ import annotations

import os
import time
from typing import Any

SCOPE_KEY = "lessonloop.t0"
WAIT_KEY = "lessonloop.wait0"


class RunQueueClock:
    """Nanoseconds the calling thread has waited on a run queue, from /proc/thread-self/schedstat
    (second field), read with one pread on a file opened by the first call's thread."""

    def __init__(self) -> None:
        self._fd: int | None = None

    def __call__(self) -> int:
        if self._fd is None:
            self._fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        return int(os.pread(self._fd, 128, 0).split()[1])


def started(scope: Any) -> float:
    """When the request reached the application (now, if it came in some other way, e.g. a test
    calling the handler's ASGI app directly)."""
    return scope.get(SCOPE_KEY) or time.perf_counter()  # type: ignore[no-any-return]


def header_value(scope: Any, t0: float) -> bytes:
    """The Server-Timing value, now: `app;dur=<ms>` (and `, cpuwait;dur=<ms>` when measured)."""
    value = b"app;dur=%.3f" % ((time.perf_counter() - t0) * 1000)
    wait0 = scope.get(WAIT_KEY)
    if wait0 is not None:
        value += b", cpuwait;dur=%.3f" % ((scope["app"].cpu_wait() - wait0) / 1e6)
    return value
