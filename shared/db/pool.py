"""The psycopg 3 connection pool (async for the API and workers, sync for CLI tools); every connection
knows pgvector's `vector` type (the schema must be migrated first)."""

from __future__ import annotations

import select
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from pgvector.psycopg import register_vector, register_vector_async
from psycopg import AsyncConnection, Connection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

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


async def open_async_pool(url: str, cfg: DatabaseSettings, *, min_size: int | None = None) -> AsyncConnectionPool:
    pool = AsyncConnectionPool(
        url,
        min_size=cfg.pool_min if min_size is None else min_size,
        max_size=cfg.pool_max,
        timeout=cfg.connect_timeout,
        kwargs={"row_factory": dict_row, "autocommit": False},
        open=False,
        # A server restart leaves broken connections in the pool: check them as they are lent (cheaply).
        check=_check_if_stirred,
        reconnect_timeout=3600,
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
        timeout=cfg.connect_timeout,
        kwargs={"row_factory": dict_row, "autocommit": False},
        open=False,
        check=ConnectionPool.check_connection,
        configure=_configure(cfg),
    )
    pool.open(wait=True)
    return pool
