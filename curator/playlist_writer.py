"""Writing a learner's upcoming lessons into their Redis list, atomically.

One MULTI/EXEC on one key replaces the whole list and sets its TTL: a reader pops either the old
list or the new one, never a half-written one. One key per call, so it works on Redis Cluster.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from shared import constants, playlists


async def replace_playlist(r: aioredis.Redis, learner_id: str, course_id: str,
                           lessons: list[dict[str, Any]], *, ttl_s: int = constants.PLAYLIST_TTL_S) -> None:
    key = constants.playlist_key(learner_id, course_id)
    async with r.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        if lessons:
            pipe.rpush(key, *[playlists.encode(ls) for ls in lessons])
            pipe.expire(key, ttl_s)
        await pipe.execute()


async def queued(r: aioredis.Redis, learner_id: str, course_id: str) -> int:
    return int(await r.llen(constants.playlist_key(learner_id, course_id)))
