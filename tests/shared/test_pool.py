"""The connection pools: every pooled connection is set up with the configured plan cache mode, and
an autocommit checkout goes back to the pool in the default (transactional) mode."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from shared.db.pool import autocommit_connection, open_async_pool
from shared.runtime import Endpoints
from shared.settings import DatabaseSettings


@pytest.mark.parametrize("mode", ["force_generic_plan", "auto"])
def test_pooled_connections_use_the_configured_plan_cache_mode(stores: Endpoints, mode: str) -> None:
    async def run() -> str:
        pool = await open_async_pool(stores.database_url, DatabaseSettings(plan_cache_mode=mode), min_size=1)
        try:
            async with pool.connection() as conn:
                row = await (await conn.execute("SHOW plan_cache_mode")).fetchone()
                return str(row["plan_cache_mode"])  # type: ignore[index]
        finally:
            await pool.close()

    assert asyncio.run(run()) == mode


def test_autocommit_checkout_commits_each_statement_and_is_undone_on_return(stores: Endpoints) -> None:
    async def run() -> tuple[bool, bool, bool]:
        pool = await open_async_pool(stores.database_url, DatabaseSettings(pool_max=1), min_size=1)
        try:
            async with autocommit_connection(pool) as conn:
                inside = conn.autocommit
                await conn.execute("CREATE TEMP TABLE t_autocommit (x int)")
                await conn.execute("INSERT INTO t_autocommit VALUES (1)")
                idle = conn.info.transaction_status.name == "IDLE"  # nothing left open to commit
            async with pool.connection() as conn:  # the one connection again: default mode restored
                return inside, idle, conn.autocommit
        finally:
            await pool.close()

    assert asyncio.run(run()) == (True, True, False)


def test_a_connection_broken_while_idle_is_replaced_before_it_is_lent(stores: Endpoints) -> None:
    """The liveness round trip runs only for a connection whose socket has something to read — as a
    terminated backend's (or a restarted server's) has: it is then found broken and replaced."""
    async def run() -> int:
        pool = await open_async_pool(stores.database_url, DatabaseSettings(pool_max=1), min_size=1)
        try:
            async with pool.connection() as conn:
                pid = conn.info.backend_pid
            async with await psycopg.AsyncConnection.connect(stores.database_url, autocommit=True) as admin:
                await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            await asyncio.sleep(0.2)  # the backend's exit reaching the socket
            async with pool.connection() as conn:
                row = await (await conn.execute("SELECT pg_backend_pid() AS pid")).fetchone()
                return int(row["pid"])  # type: ignore[index]
        finally:
            await pool.close()

    assert asyncio.run(run()) > 0
