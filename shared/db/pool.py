"""The psycopg 3 connection pool (async for the API and workers, sync for CLI tools); every connection
knows pgvector's `vector` type (the schema must be migrated first).

When PostgreSQL goes away, an API request waits `DatabaseSettings.connect_timeout` for a
connection (a worker `worker_connect_timeout`) and gets `PoolTimeout` (the API answers 503 +
Retry-After); the pool keeps trying to reconnect, at most `reconnect_max_s` apart, so it lends
connections again within about that long once the server is back.
"""

from __future__ import annotations

import select
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from pgvector.psycopg import register_vector, register_vector_async
from psycopg import AsyncConnection, Connection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from psycopg_pool.base import AttemptWithBackoff

from shared.settings import DatabaseSettings

SET_PLAN_CACHE_MODE = "SELECT set_config('plan_cache_mode', %s, false)"


def _configure_async(cfg: DatabaseSettings) -> Callable[[AsyncConnection[Any]], Awaitable[None]]:
    async def configure(conn: AsyncConnection[Any]) -> None:
        await register_vector_async(conn)
        await conn.execute(SET_PLAN_CACHE_MODE, (cfg.plan_cache_mode,))
        await conn.commit()  # hand the connection back idle

    return configure


async def _check_if_stirred(conn: AsyncConnection[Any]) -> None:
    """The pool's liveness check (a round trip), only when the idle connection's socket has something
    to read. A healthy idle connection has nothing pending; a server that restarted, or a backend that
    was terminated, left an error message or end-of-file on it, which the kernel reports without a
    round trip. Checking every checkout instead cost a round trip each (three per answer)."""
    try:
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN)
        stirred = bool(poller.poll(0))
    except (OSError, ValueError):  # no usable socket: let the real check decide
        stirred = True
    if stirred or conn.closed:
        await AsyncConnectionPool.check_connection(conn)


def _configure(cfg: DatabaseSettings) -> Callable[[Connection[Any]], None]:
    def configure(conn: Connection[Any]) -> None:
        register_vector(conn)
        conn.execute(SET_PLAN_CACHE_MODE, (cfg.plan_cache_mode,))
        conn.commit()

    return configure


class _CappedBackoff(AttemptWithBackoff):
    """psycopg_pool's reconnection backoff (1 s, doubling until `reconnect_timeout`) with a ceiling."""

    def __init__(self, *, timeout: float, ceiling: float) -> None:
        super().__init__(timeout=timeout)
        self.ceiling = ceiling

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, self.ceiling)


class Pool(AsyncConnectionPool):
    """An `AsyncConnectionPool` whose reconnection attempts are at most `reconnect_max_s` apart.

    psycopg_pool retries a failed connection attempt after 1, 2, 4, 8… s, with no setting for a
    ceiling: after a 16 s outage the next attempt could come 13 s after the server was back, every
    request failing meanwhile. Each new attempt series starts here (psycopg_pool's `_add_connection`
    is given the backoff it would otherwise create); tests/serving/test_degradation.py measures the
    recovery, so a psycopg_pool release that changes this hook fails there."""

    def __init__(self, *args: Any, reconnect_max_s: float, **kwargs: Any) -> None:
        self.reconnect_max_s = reconnect_max_s
        super().__init__(*args, **kwargs)

    async def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        if attempt is None:
            attempt = _CappedBackoff(timeout=self.reconnect_timeout, ceiling=self.reconnect_max_s)
        await super()._add_connection(attempt, growing=growing)


async def open_async_pool(url: str, cfg: DatabaseSettings, *, min_size: int | None = None,
                          timeout: float | None = None) -> AsyncConnectionPool:
    """The async pool; a checkout waits `timeout` (default `cfg.connect_timeout`, the API's) for a connection."""
    pool = Pool(
        url,
        min_size=cfg.pool_min if min_size is None else min_size,
        max_size=cfg.pool_max,
        timeout=cfg.connect_timeout if timeout is None else timeout,
        kwargs={"row_factory": dict_row, "autocommit": False},
        open=False,
        # A server restart leaves broken connections in the pool: check them as they are lent (cheaply).
        check=_check_if_stirred,
        reconnect_timeout=3600,
        reconnect_max_s=cfg.reconnect_max_s,
        configure=_configure_async(cfg),
    )
    await pool.open(wait=False)
    return pool


@asynccontextmanager
async def autocommit_connection(pool: AsyncConnectionPool) -> AsyncIterator[AsyncConnection[Any]]:
    """A pooled connection in autocommit mode, for a request whose statements are each atomic on their
    own: no BEGIN and COMMIT round trips. The connection goes back to the pool in the default mode."""
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        try:
            yield conn
        finally:
            if not conn.closed:
                await conn.set_autocommit(False)


def open_sync_pool(url: str, cfg: DatabaseSettings) -> ConnectionPool:
    pool = ConnectionPool(
        url,
        min_size=1,
        max_size=cfg.pool_max,
        timeout=cfg.worker_connect_timeout,
        kwargs={"row_factory": dict_row, "autocommit": False},
        open=False,
        check=ConnectionPool.check_connection,
        configure=_configure(cfg),
    )
    pool.open(wait=True)
    return pool
