"""The playlist write is atomic: a concurrent reader sees the old list or the new one, never a mix
or a partial list; an erased learner's playlist is never written."""

from __future__ import annotations

import asyncio
import json

import redis.asyncio as aioredis

from curator.playlist_writer import PlaylistWriter
from shared import constants
from shared.runtime import Endpoints


def _element(gen: int, k: int) -> str:
    lid = f"{gen:08d}-0000-4000-8000-{k:012d}"
    return f"q{gen}-{k}|" + json.dumps({"lesson_id": lid, "items": [{"question_id": f"q{gen}-{k}"}]})


def test_concurrent_reader_never_sees_a_partial_list(clean: Endpoints) -> None:
    async def run() -> None:
        r = aioredis.Redis.from_url(clean.redis_url)
        reader_conn = aioredis.Redis.from_url(clean.redis_url)
        writer = PlaylistWriter(r)
        key = constants.playlist_key("learner-1", "course-1")
        stop = asyncio.Event()
        seen_lists = 0

        async def read() -> None:
            nonlocal seen_lists
            while not stop.is_set():
                got = await reader_conn.lrange(key, 0, -1)
                if got:
                    gens = {e.split(b"|")[0].split(b"-")[0] for e in got}
                    assert len(got) == 3 and len(gens) == 1, got  # whole, from one write
                    seen_lists += 1

        task = asyncio.create_task(read())
        try:
            replaced: list[str] = []
            for gen in range(300):
                (written, old), = await writer.replace_many(
                    [("learner-1", "course-1", [_element(gen, k) for k in range(3)])])
                assert written
                if gen:
                    assert old == [f"{gen - 1:08d}-0000-4000-8000-{k:012d}" for k in range(3)]
                replaced.extend(old)
        finally:
            stop.set()
            await task
        assert seen_lists > 0
        assert 0 < await r.ttl(key) <= constants.PLAYLIST_TTL_S
        await r.set(constants.erased_key("learner-1"), b"1", ex=60)
        (written, old), = await writer.replace_many([("learner-1", "course-1", [_element(999, 0)])])
        assert not written and old == []
        assert len(await r.lrange(key, 0, -1)) == 3  # untouched
        await r.aclose()
        await reader_conn.aclose()

    asyncio.run(run())
