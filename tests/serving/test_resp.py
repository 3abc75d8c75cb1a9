"""The warm path's RESP client (serving.resp) against the real Redis: replies reach their own
callers in order, an error reply or a cancelled caller affects nobody else, a dropped connection
fails what was in flight and the next command reconnects, a silent server times out, and a full
client pushes back instead of queueing without bound."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

import pytest
import redis

from serving.resp import RespClient, RespError
from shared.runtime import Endpoints


def _run(eps: Endpoints, body: Callable[[RespClient], Awaitable[Any]], **kw: Any) -> Any:
    async def main() -> Any:
        client = RespClient(eps.redis_url, **kw)
        try:
            return await body(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_concurrent_commands_each_get_their_own_reply(clean: Endpoints) -> None:
    async def body(c: RespClient) -> None:
        replies = await asyncio.gather(*(c.execute("ECHO", f"m{i}") for i in range(2000)))
        assert replies == [f"m{i}".encode() for i in range(2000)]
        assert await c.execute("PING") == b"PONG"

    _run(clean, body)


def test_an_error_reply_fails_only_its_own_command(clean: Endpoints) -> None:
    async def body(c: RespClient) -> None:
        await c.execute("SET", "a-string", "x")
        results = await asyncio.gather(c.execute("ECHO", "before"), c.execute("LPOP", "a-string"),
                                       c.execute("ECHO", "after"), return_exceptions=True)
        assert results[0] == b"before" and results[2] == b"after"
        assert isinstance(results[1], RespError) and str(results[1]).startswith("WRONGTYPE")

    _run(clean, body)


def test_a_cancelled_caller_does_not_break_the_batch(clean: Endpoints) -> None:
    async def body(c: RespClient) -> None:
        await c.execute("PING")  # connected
        tasks = [asyncio.ensure_future(c.execute("ECHO", f"v{i}")) for i in range(10)]
        await asyncio.sleep(0)  # every command is sent or queued
        tasks[4].cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(done[4], asyncio.CancelledError)
        assert [d for i, d in enumerate(done) if i != 4] == [f"v{i}".encode() for i in range(10) if i != 4]
        assert await c.execute("ECHO", "next") == b"next"

    _run(clean, body)


def test_a_dropped_connection_fails_in_flight_commands_and_the_next_reconnects(clean: Endpoints) -> None:
    async def body(c: RespClient) -> None:
        await c.execute("CLIENT", "SETNAME", "resp-under-test")
        blocked = asyncio.ensure_future(c.execute("BLPOP", "never-filled", 5))
        await asyncio.sleep(0.1)
        admin = redis.Redis.from_url(clean.redis_url)
        try:
            killed = next(cl for cl in admin.client_list() if cl.get("name") == "resp-under-test")
            admin.client_kill_filter(_id=killed["id"])
        finally:
            admin.close()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(blocked, 2)
        assert await c.execute("PING") == b"PONG"  # a new connection

    _run(clean, body)


def test_a_silent_server_times_out_and_the_client_recovers(clean: Endpoints) -> None:
    async def body(c: RespClient) -> None:
        blocked = asyncio.ensure_future(c.execute("BLPOP", "never-filled", 3))
        queued = asyncio.ensure_future(c.execute("PING"))  # stuck behind it on the same connection
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(blocked, 2)
        with pytest.raises(TimeoutError):
            await queued
        assert await c.execute("PING") == b"PONG"

    _run(clean, body, timeout=0.3)


def test_a_full_client_refuses_at_once(clean: Endpoints) -> None:
    async def body(c: RespClient) -> None:
        await c.execute("PING")
        blocked = [asyncio.ensure_future(c.execute("BLPOP", "never-filled", 0.5)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(ConnectionError, match="saturated"):
            await c.execute("PING")
        assert await asyncio.gather(*blocked) == [None, None]
        assert await c.execute("PING") == b"PONG"

    _run(clean, body, max_pending=2)


def test_a_refused_handshake_names_the_problem(clean: Endpoints) -> None:
    async def main() -> None:
        client = RespClient(f"unix://:wrong-password@{urlparse(clean.redis_url).path}")
        with pytest.raises(ConnectionError, match="handshake failed"):
            await client.execute("PING")
        await client.aclose()

    asyncio.run(main())


def test_an_unreachable_server_is_a_connection_error(tmp_path: Any) -> None:
    async def main() -> None:
        client = RespClient(f"unix://{tmp_path}/nothing-here.sock", timeout=0.5)
        with pytest.raises(ConnectionError, match="redis unavailable"):
            await client.execute("PING")
        await client.aclose()

    asyncio.run(main())
