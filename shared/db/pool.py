"""The psycopg 3 connection pool (async for the API and workers, sync for CLI tools); every connection
knows pgvector's `vector` type (the schema must be migrated first)."""

from __future__ import annotations

from typing import Any

from pgvector.psycopg import register_vector, register_vector_async
from psycopg import AsyncConnection, Connection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from shared.settings import DatabaseSettings


async def _configure_async(conn: AsyncConnection[Any]) -> None:
    await register_vector_async(conn)
    await conn.commit()  # the type lookup opened a transaction; hand the connection back idle


def _configure(conn: Connection[Any]) -> None:
    register_vector(conn)
    conn.commit()


async def open_async_pool(url: str, cfg: DatabaseSettings, *, min_size: int | None = None) -> AsyncConnectionPool:
    pool = AsyncConnectionPool(
        url,
        min_size=cfg.pool_min if min_size is None else min_size,
        max_size=cfg.pool_max,
        timeout=cfg.connect_timeout,
        kwargs={"row_factory": dict_row, "autocommit": False},
        open=False,
        # A server restart leaves broken connections in the pool; check each one as it is lent.
        check=AsyncConnectionPool.check_connection,
        reconnect_timeout=3600,
        configure=_configure_async,
    )
    await pool.open(wait=False)
    return pool


def open_sync_pool(url: str, cfg: DatabaseSettings) -> ConnectionPool:
    pool = ConnectionPool(
        url,
        min_size=1,
        max_size=cfg.pool_max,
        timeout=cfg.connect_timeout,
        kwargs={"row_factory": dict_row, "autocommit": False},
        open=False,
        check=ConnectionPool.check_connection,
        configure=_configure,
    )
    pool.open(wait=True)
    return pool
