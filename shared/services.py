"""The long-lived clients a process holds, opened and closed by its lifespan (API) or on_startup /
on_shutdown (workers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from arq.connections import ArqRedis
from psycopg_pool import AsyncConnectionPool

from shared.auth import TokenVerifier
from shared.db.pool import open_async_pool
from shared.ratelimit import TokenBuckets
from shared.redis_client import arq_pool, async_client
from shared.runtime import Endpoints
from shared.settings import Settings


@dataclass
class Services:
    settings: Settings
    endpoints: Endpoints
    pool: AsyncConnectionPool
    redis: aioredis.Redis
    """The playlist store."""
    arq: ArqRedis
    """The queue Redis (job queues, breaker state, budgets)."""
    verifier: TokenVerifier
    subject_limits: TokenBuckets
    """Per-learner (per token subject) rate limit."""
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def open(cls, settings: Settings, endpoints: Endpoints, *, pool_timeout: float | None = None) -> Services:
        """`pool_timeout`: how long a checkout waits for a connection (default: the API's,
        `settings.database.connect_timeout`; workers pass `worker_connect_timeout`)."""
        pool = await open_async_pool(endpoints.database_url, settings.database, timeout=pool_timeout)
        return cls(
            settings=settings, endpoints=endpoints, pool=pool,
            redis=async_client(endpoints.redis_url, settings.redis, cluster=settings.redis.cluster),
            arq=await arq_pool(endpoints.queue_redis_url, settings.redis),
            verifier=TokenVerifier(settings.auth),
            subject_limits=TokenBuckets(settings.serving.rate_per_learner),
        )

    async def close(self) -> None:
        await self.pool.close()
        await self.redis.aclose()
        await self.arq.aclose()
