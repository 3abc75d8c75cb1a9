"""A minimal ASGI response for the warm path: the popped JSON bytes go out as they are, with headers
encoded once, skipping the framework's general response machinery (header containers, media-type
negotiation) that costs more than the Redis pop itself."""

from __future__ import annotations

from typing import Any

_JSON_HEADERS = ((b"content-type", b"application/json"),)


class RawJSON:
    __slots__ = ("body", "headers", "status")

    def __init__(self, body: bytes, extra_headers: list[tuple[bytes, bytes]], status: int = 200) -> None:
        self.body = body
        self.status = status
        self.headers = [*_JSON_HEADERS, (b"content-length", b"%d" % len(body)), *extra_headers]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})
