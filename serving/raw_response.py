"""A minimal ASGI response for the warm path: the popped JSON bytes go out as they are, with headers
encoded once, skipping the framework's general response machinery (header containers, media-type
negotiation) that costs more than the Redis pop itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from shared import server_timing

_JSON_HEADERS = ((b"content-type", b"application/json"),)


class RawJSON:
    """With `timed_from` (when the request reached the app: shared.server_timing.started), a
    `Server-Timing` header is added at the moment the response is handed to the server: the figure
    ends when the response leaves. `after`, if given, runs once the body is handed over (work the
    client need not wait for, like queueing a refill)."""

    __slots__ = ("after", "body", "headers", "status", "timed_from")

    def __init__(self, body: bytes, extra_headers: list[tuple[bytes, bytes]], status: int = 200,
                 timed_from: float | None = None, after: Callable[[], Awaitable[None]] | None = None) -> None:
        self.body = body
        self.status = status
        self.headers = [*_JSON_HEADERS, (b"content-length", b"%d" % len(body)), *extra_headers]
        self.timed_from = timed_from
        self.after = after

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = self.headers
        if self.timed_from is not None:
            headers.append((b"server-timing", server_timing.header_value(scope, self.timed_from)))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})
        if self.after is not None:
            await self.after()
