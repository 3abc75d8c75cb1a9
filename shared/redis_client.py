"""Redis connections: the playlist store and the queue/breaker Redis (one server locally, two roles
in production). Pools block at their cap instead of raising (redis-py's default pool raises)."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis
from arq.connections import ArqRedis, create_pool
from arq.connections import RedisSettings as ArqRedisSettings

from shared.settings import RedisSettings

MAX_CONNECTIONS = 64


def async_client(url: str, cfg: RedisSettings, *, cluster: bool = False) -> aioredis.Redis:
    """A client for `url`; with `cluster`, a cluster client routing each command by its key's slot."""
    if cluster:
        return aioredis.RedisCluster.from_url(  # type: ignore[return-value]
            url, socket_timeout=cfg.socket_timeout, socket_connect_timeout=cfg.socket_timeout)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=cfg.socket_timeout,
        socket_timeout=cfg.socket_timeout, socket_connect_timeout=cfg.socket_timeout,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns (and closes) its pool


def sync_client(url: str, cfg: RedisSettings) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=cfg.socket_timeout, socket_connect_timeout=cfg.socket_timeout)


def arq_settings(url: str, cfg: RedisSettings) -> ArqRedisSettings:
    settings = ArqRedisSettings.from_dsn(url)
    settings.conn_timeout = max(1, int(cfg.socket_timeout))
    settings.conn_retries = 2
    settings.conn_retry_delay = 1
    return settings


async def arq_pool(url: str, cfg: RedisSettings) -> ArqRedis:
    return await create_pool(arq_settings(url, cfg))
