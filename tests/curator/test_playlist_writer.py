"""The playlist write is atomic: a concurrent reader sees the old list or the new one, never a mix
or a partial list; an erased learner's playlist is never written, nor one whose reset mark changed since
the writer read it."""

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


def test_a_flushed_script_cache_is_reloaded_and_every_call_runs_once(clean: Endpoints) -> None:
    async def run() -> None:
        r = aioredis.Redis.from_url(clean.redis_url)
        writer = PlaylistWriter(r)
        batch = [(f"learner-{k}", "course-1", [_element(1, k)]) for k in range(20)]
        assert all(written for written, _ in await writer.replace_many(batch))
        await r.script_flush()  # as a Redis restart would: the cached sha now fails with NOSCRIPT
        replies = await writer.replace_many([(lid, cid, [_element(2, k)]) for k, (lid, cid, _) in enumerate(batch)])
        assert replies == [(True, [f"{1:08d}-0000-4000-8000-{k:012d}"]) for k in range(20)]
        for k, (lid, cid, _) in enumerate(batch):
            assert await r.lrange(constants.playlist_key(lid, cid), 0, -1) == [_element(2, k).encode()]
        await r.aclose()

    asyncio.run(run())


def test_a_reset_since_the_marks_were_read_refuses_the_write(clean: Endpoints) -> None:
    async def run() -> None:
        r = aioredis.Redis.from_url(clean.redis_url)
        writer = PlaylistWriter(r)
        pairs = [("learner-1", "course-1"), ("learner-2", "course-1")]
        marks = await writer.marks(pairs)
        assert marks == [b"", b""]
        await r.set(constants.reset_key("learner-1", "course-1"), b"m1", ex=60)  # learner-1 resets
        replies = await writer.replace_many([(lid, cid, [_element(1, k)]) for k, (lid, cid) in enumerate(pairs)],
                                            marks=marks)
        assert [written for written, _ in replies] == [False, True]
        assert not await r.exists(constants.playlist_key("learner-1", "course-1"))
        assert await writer.marks(pairs) == [b"m1", b""]
        # read after the reset, the mark lets the write through (and by default it is read just before)
        assert (await writer.replace_many([("learner-1", "course-1", [_element(2, 0)])], marks=[b"m1"]))[0][0]
        assert (await writer.replace_many([("learner-1", "course-1", [_element(3, 0)])]))[0][0]
        await r.aclose()

    asyncio.run(run())
