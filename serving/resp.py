"""A lean, pipelining RESP client for the warm path.

redis-py spends more time per call in Python than Redis spends on the command (measured here: a
plain `redis.asyncio` LPOP per request capped a litestar app at ~29% of its hello-endpoint rate).
This client keeps one connection as an asyncio Protocol: replies are parsed by hiredis' C reader in
`data_received` and handed straight to their waiters in FIFO order (no reader task to wake). A
command on an idle connection is written at once; commands issued while replies are outstanding
are coalesced into ONE socket write per event-loop tick. At one request in flight it adds no
latency; under load, hundreds of requests share a write and a read.

The pitfalls it handles (see ../shared/notes/warm-path-measurements.md):
- each reply is resolved on its own future, and an error reply fails only its own request;
- a waiter that was cancelled (client went away) is skipped, never breaking the rest of the batch;
- a dropped connection fails every in-flight request with ConnectionError (callers fall back to
  the cold path) and the next command reconnects;
- a command that gets no reply within `timeout` fails with TimeoutError (and the connection is
  reset, since the reply order is then unknown): no head-of-line wait forever;
- at most `max_pending` commands in flight: beyond that, callers get ConnectionError at once
  (backpressure) rather than an unbounded queue.
Single node only (or a cluster endpoint proxy); on Redis Cluster use the cluster client instead.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any
from urllib.parse import unquote, urlparse

import hiredis

Reply = Any
Waiters = collections.deque[tuple["asyncio.Future[Reply]", float]]


def encode(*args: bytes | str | int) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RespError(Exception):
    """An error reply from Redis (e.g. NOSCRIPT); affects only its own command."""


class _Connection(asyncio.Protocol):
    """One socket: every reply that arrives goes to the oldest waiter of this connection."""

    def __init__(self, client: RespClient) -> None:
        self.client = client
        self.parser = hiredis.Reader()
        self.waiters: Waiters = collections.deque()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        parser, waiters = self.parser, self.waiters
        try:
            parser.feed(data)
            while (reply := parser.gets()) is not False:
                fut, _ = waiters.popleft()  # IndexError: a reply nobody asked for
                if fut.done():  # cancelled by its caller: skip, keep delivering the rest
                    continue
                if isinstance(reply, hiredis.ReplyError):
                    fut.set_exception(RespError(str(reply)))
                else:
                    fut.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as exc:
            self.client._reset(ConnectionError(f"redis protocol error: {exc!r}"), self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._reset(ConnectionError(f"redis connection lost: {exc!r}" if exc else "redis closed the connection"),
                           self)

    def fail_all(self, exc: BaseException) -> None:
        while self.waiters:
            fut, _ = self.waiters.popleft()
            if not fut.done():
                fut.set_exception(exc)


class RespClient:
    def __init__(self, url: str, *, timeout: float = 2.0, max_pending: int = 10_000) -> None:
        self.url = url
        self.timeout = timeout
        self.max_pending = max_pending
        self._conn: _Connection | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._outbox: list[bytes] = []
        self._flush_scheduled = False
        self._watchdog: asyncio.TimerHandle | None = None

    # --- connection -------------------------------------------------------------------------------
    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        u = urlparse(self.url)
        conn = _Connection(self)
        if u.scheme == "unix":
            opening = loop.create_unix_connection(lambda: conn, u.path)
        else:
            opening = loop.create_connection(lambda: conn, u.hostname or "127.0.0.1", u.port or 6379,
                                             ssl=True if u.scheme == "rediss" else None)
        transport, _ = await asyncio.wait_for(opening, self.timeout)
        hello: list[bytes] = []
        if u.password:
            user = unquote(u.username) if u.username else None
            hello.append(encode("AUTH", user, unquote(u.password)) if user else encode("AUTH", unquote(u.password)))
        db = (u.path or "/0").lstrip("/") if u.scheme != "unix" else "0"
        if db not in ("", "0"):
            hello.append(encode("SELECT", db))
        try:
            for command in hello:  # nobody else writes until the handshake is done (_conn is unset)
                fut: asyncio.Future[Reply] = loop.create_future()
                conn.waiters.append((fut, time.monotonic()))
                transport.write(command)
                await asyncio.wait_for(fut, self.timeout)
        except BaseException as exc:
            transport.abort()
            if isinstance(exc, RespError):
                raise ConnectionError(f"redis handshake failed: {exc}") from None
            raise
        self._conn = conn

    async def _ensure(self) -> _Connection:
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_future()
            try:
                await self._connect()
                self._connecting.set_result(None)
            except BaseException as exc:
                self._connecting.set_exception(ConnectionError(f"redis unavailable: {exc!r}"))
                self._connecting.exception()  # mark retrieved
                raise ConnectionError(f"redis unavailable: {exc!r}") from None
            finally:
                self._connecting = None
        else:
            await asyncio.shield(self._connecting)
        if self._conn is None:
            raise ConnectionError("redis connection lost while connecting")
        return self._conn

    def _reset(self, exc: BaseException, conn: _Connection | None = None) -> None:
        """Drop the connection (or `conn`, if it is still the current one) and fail everything in
        flight on it (their order is unknown now)."""
        current = self._conn
        if conn is not None and conn is not current:
            conn.fail_all(exc)  # an old connection closing late: its waiters only
            return
        self._conn = None
        self._outbox.clear()
        if current is not None:
            if current.transport is not None:
                current.transport.abort()
            current.fail_all(exc)

    # --- commands -----------------------------------------------------------------------------------
    def _flush(self) -> None:
        self._flush_scheduled = False
        conn = self._conn
        if conn is None or conn.transport is None or not self._outbox:
            return
        data = b"".join(self._outbox)
        self._outbox.clear()
        conn.transport.write(data)

    def _arm_watchdog(self) -> None:
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_later(self.timeout / 2, self._check_timeouts)

    def _check_timeouts(self) -> None:
        self._watchdog = None
        conn = self._conn
        if conn is None or not conn.waiters:
            return
        _, started = conn.waiters[0]
        if time.monotonic() - started > self.timeout:
            self._reset(TimeoutError(f"redis did not answer within {self.timeout}s"))
            return
        self._arm_watchdog()

    async def execute(self, *args: bytes | str | int) -> Reply:
        return await self.execute_raw(encode(*args))

    async def execute_raw(self, command: bytes) -> Reply:
        """Send one already RESP-encoded command (hot paths pre-encode their fixed parts)."""
        conn = self._conn or await self._ensure()
        waiters = conn.waiters
        if len(waiters) >= self.max_pending:
            raise ConnectionError("redis client saturated (too many commands in flight)")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Reply] = loop.create_future()
        if waiters or self._flush_scheduled:
            # replies outstanding: this command joins the tick's one write (order is kept: an empty
            # waiters queue means the outbox is empty too)
            self._outbox.append(command)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                loop.call_soon(self._flush)
        else:
            conn.transport.write(command)  # type: ignore[union-attr]  # an idle connection: send now
        waiters.append((fut, time.monotonic()))
        self._arm_watchdog()
        return await fut

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._reset(ConnectionError("client closed"))
