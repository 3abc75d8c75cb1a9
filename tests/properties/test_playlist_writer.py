"""Property test of curator/playlist_writer.replace_playlist against real Redis: any interleaving of
concurrent replaces, pops and reads never exposes a partial list — every read is a suffix of exactly
one of the written lists (the pops eat its head), and every popped lesson is one that was written."""

from __future__ import annotations

import asyncio
import itertools
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curator.playlist_writer import replace_playlist
from shared import constants, playlists
from shared.redis_client import async_client
from shared.runtime import Endpoints
from shared.settings import get_settings

COURSE = "spanish-a1-b1"
counter = itertools.count()


def lesson(n: int, size: int) -> dict[str, object]:
    return {"lesson_id": str(uuid.UUID(int=n)), "course": COURSE, "source": "warm",
            "items": [{"item_id": f"{n}-{k}", "question_id": str(uuid.UUID(int=n * 100 + k + 1)), "skill": "s",
                       "type": "cloze", "prompt": f"p{n}-{k}"} for k in range(size)]}


ops = st.lists(st.sampled_from(["replace", "pop", "read"]), min_size=3, max_size=30)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.integers(1, 5), min_size=0, max_size=6), min_size=1, max_size=6), ops)
def test_readers_only_ever_see_one_whole_written_list(stores: Endpoints, lists: list[list[int]],
                                                       schedule: list[str]) -> None:
    written = [[lesson(next(counter), size) for size in sizes] for sizes in lists]
    encoded = [[playlists.encode(ls) for ls in w] for w in written]
    learner = f"prop-{uuid.uuid4().hex[:8]}"
    key = constants.playlist_key(learner, COURSE)
    seen: list[list[bytes]] = []
    popped: list[bytes] = []

    async def run() -> None:
        r = async_client(stores.redis_url, get_settings().redis)
        try:
            replaces = iter(written)

            async def step(op: str) -> None:
                await asyncio.sleep(0)
                if op == "replace":
                    w = next(replaces, None)
                    if w is not None:
                        await replace_playlist(r, learner, COURSE, w)
                elif op == "pop":
                    if (v := await r.lpop(key)) is not None:
                        popped.append(v)
                else:
                    seen.append(await r.lrange(key, 0, -1))

            await asyncio.gather(*(step(op) for op in [*schedule, *["replace"] * len(written)]),
                                 *(step("read") for _ in range(5)))
            seen.append(await r.lrange(key, 0, -1))
            await r.delete(key)
        finally:
            await r.aclose()

    asyncio.run(run())
    for snapshot in seen:
        suffix_of = [e for e in encoded if len(e) >= len(snapshot) and e[len(e) - len(snapshot):] == snapshot]
        assert not snapshot or suffix_of, "a read saw a list that is no written list's suffix"
    every = {x for e in encoded for x in e}
    assert all(p in every for p in popped)
