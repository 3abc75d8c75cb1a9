"""The psycopg 3 connection pool (async for the API and workers, sync for CLI tools); every connection
knows pgvector's `vector` type (the schema must be migrated first)."""

from __future__ import annotations

import time
import weakref
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


RECHECK_IDLE_S = 1.0
"""A pooled connection is checked (one round trip) before it is lent only if it has been idle this long."""
_returned: weakref.WeakKeyDictionary[AsyncConnection[Any], float] = weakref.WeakKeyDictionary()


async def _check_if_idle(conn: AsyncConnection[Any]) -> None:
    """The pool's liveness check, skipped for a connection handed back less than RECHECK_IDLE_S ago.

    A server restart leaves every pooled connection broken, and they then sit idle while it is down:
    those are all checked before use. Under load connections come straight back into use, and a check
    each time costs a round trip per checkout (three per answer). A connection that broke in the last
    second fails its one request — as one breaking between a check and its use always could."""
    if time.monotonic() - _returned.get(conn, float("-inf")) >= RECHECK_IDLE_S:
        await AsyncConnectionPool.check_connection(conn)


async def _stamp_returned(conn: AsyncConnection[Any]) -> None:
    _returned[conn] = time.monotonic()


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
        # A server restart leaves broken connections in the pool: check those idle a while as they are lent.
        check=_check_if_idle,
        reset=_stamp_returned,
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
