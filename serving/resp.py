"""A lean, pipelining RESP client for the warm path.

redis-py spends more time per call in Python than Redis spends on the command (measured here: a
plain `redis.asyncio` LPOP per request capped a litestar app at ~29% of its hello-endpoint rate).
This client coalesces every command issued during one event-loop tick into ONE socket write on one
connection and parses replies with hiredis' C reader, resolving waiters in FIFO order. At one
request in flight it adds no latency; under load, hundreds of requests share a write and a read.

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


def encode(*args: bytes | str | int) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RespClient:
    def __init__(self, url: str, *, timeout: float = 2.0, max_pending: int = 10_000) -> None:
        self.url = url
        self.timeout = timeout
        self.max_pending = max_pending
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._outbox: list[bytes] = []
        self._waiters: collections.deque[tuple[asyncio.Future[Reply], float]] = collections.deque()
        self._flush_scheduled = False
        self._read_task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    # --- connection -------------------------------------------------------------------------------
    async def _connect(self) -> None:
        u = urlparse(self.url)
        if u.scheme == "unix":
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(u.path), self.timeout)
        else:
            ssl = u.scheme == "rediss"
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(u.hostname or "127.0.0.1", u.port or 6379, ssl=ssl or None), self.timeout)
        hello: list[bytes] = []
        if u.password:
            user = unquote(u.username) if u.username else None
            hello.append(encode("AUTH", user, unquote(u.password)) if user else encode("AUTH", unquote(u.password)))
        db = (u.path or "/0").lstrip("/") if u.scheme != "unix" else "0"
        if db not in ("", "0"):
            hello.append(encode("SELECT", db))
        parser = hiredis.Reader()
        if hello:
            writer.write(b"".join(hello))
            for _ in hello:
                reply = parser.gets()
                while reply is False:
                    parser.feed(await asyncio.wait_for(reader.read(65536), self.timeout))
                    reply = parser.gets()
                if isinstance(reply, hiredis.ReplyError):
                    writer.close()
                    raise ConnectionError(f"redis handshake failed: {reply}")
        self._reader, self._writer = reader, writer
        self._read_task = asyncio.get_running_loop().create_task(self._read_loop(reader, parser))

    async def _ensure(self) -> None:
        if self._writer is not None:
            return
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

    def _reset(self, exc: BaseException) -> None:
        """Drop the connection and fail everything in flight (their order is unknown now)."""
        writer, self._writer, self._reader = self._writer, None, None
        if self._read_task is not None and self._read_task is not asyncio.current_task():
            self._read_task.cancel()
        self._read_task = None
        if writer is not None:
            writer.close()
        self._outbox.clear()
        while self._waiters:
            fut, _ = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(exc)

    async def _read_loop(self, reader: asyncio.StreamReader, parser: hiredis.Reader) -> None:
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    raise ConnectionError("redis closed the connection")
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    fut, _ = self._waiters.popleft()
                    if fut.done():  # cancelled by its caller: skip, keep delivering the rest
                        continue
                    if isinstance(reply, hiredis.ReplyError):
                        fut.set_exception(RespError(str(reply)))
                    else:
                        fut.set_result(reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._reset(ConnectionError(f"redis connection lost: {exc!r}"))

    # --- commands -----------------------------------------------------------------------------------
    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._writer is None or not self._outbox:
            return
        data = b"".join(self._outbox)
        self._outbox.clear()
        self._writer.write(data)

    def _arm_watchdog(self) -> None:
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_later(self.timeout / 2, self._check_timeouts)

    def _check_timeouts(self) -> None:
        self._watchdog = None
        if not self._waiters:
            return
        _, started = self._waiters[0]
        if time.monotonic() - started > self.timeout:
            self._reset(TimeoutError(f"redis did not answer within {self.timeout}s"))
            return
        self._arm_watchdog()

    async def execute(self, *args: bytes | str | int) -> Reply:
        return await self.execute_raw(encode(*args))

    async def execute_raw(self, command: bytes) -> Reply:
        """Send one already RESP-encoded command (hot paths pre-encode their fixed parts)."""
        if len(self._waiters) >= self.max_pending:
            raise ConnectionError("redis client saturated (too many commands in flight)")
        if self._writer is None:
            await self._ensure()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Reply] = loop.create_future()
        self._outbox.append(command)
        self._waiters.append((fut, time.monotonic()))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        self._arm_watchdog()
        return await fut

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._reset(ConnectionError("client closed"))


class RespError(Exception):
    """An error reply from Redis (e.g. NOSCRIPT); affects only its own command."""
