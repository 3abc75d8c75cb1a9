"""Writing learners' upcoming lessons into their Redis lists, atomically.

One script call per learner replaces the whole list and sets its TTL: a reader pops either the old
list or the new one, never a half-written one. Each call touches one learner's keys only (one hash
slot), so it works on Redis Cluster; a batch sends all its calls in one pipelined round trip. The
script returns the elements it replaced (lessons never popped: the caller deletes their planned rows)
and refuses to write for a learner who was just erased (`constants.erased_key`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from shared import constants, playlists

# KEYS[1] playlist, KEYS[2] erasure tombstone; ARGV[1] ttl, ARGV[2] the elements joined by "\n" (an
# element never holds a raw newline: ids, then JSON), so a call packs four arguments, not one per
# lesson. -> {written, lesson ids of the old elements}
REPLACE_SCRIPT = r"""
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, {}} end
local old = redis.call('LRANGE', KEYS[1], 0, -1)
for i, e in ipairs(old) do  -- reply with the lesson ids only (they lead each element's JSON)
  local at = string.find(e, '|{"lesson_id":"', 1, true)
  if at then old[i] = string.sub(e, at + 15, at + 50) end
end
redis.call('DEL', KEYS[1])
local joined = ARGV[2]
if joined ~= '' then
  local start = 1
  while true do
    local nl = string.find(joined, '\n', start, true)
    if not nl then
      redis.call('RPUSH', KEYS[1], string.sub(joined, start))
      break
    end
    redis.call('RPUSH', KEYS[1], string.sub(joined, start, nl - 1))
    start = nl + 1
  end
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return {1, old}
"""
_LESSON_ID = b'|{"lesson_id":"'


def lesson_id_of(element: bytes) -> str:
    """The lesson id of a replaced element as the script returns it: the id itself, or (for an element
    whose JSON does not lead with the id) the whole element."""
    if len(element) == 36:
        return element.decode()
    pos = element.find(_LESSON_ID)
    if pos >= 0:
        start = pos + len(_LESSON_ID)
        return element[start:start + 36].decode()
    _, body = playlists.split(element)
    return str(json.loads(body)["lesson_id"])


class PlaylistWriter:
    def __init__(self, r: aioredis.Redis) -> None:
        self.redis = r
        self._sha: str | None = None

    async def replace_many(self, playlists_: list[tuple[str, str, list[bytes | str]]], *,
                           ttl_s: int = constants.PLAYLIST_TTL_S) -> list[tuple[bool, list[str]]]:
        """For each (learner, course, elements): (written, lesson ids of the replaced elements)."""
        if not playlists_:
            return []
        calls = [(constants.playlist_key(learner, course), constants.erased_key(learner), ttl_s,
                  b"\n".join(e if isinstance(e, bytes) else e.encode() for e in elements))
                 for learner, course, elements in playlists_]
        for attempt in (1, 2):
            if self._sha is None:
                self._sha = await self.redis.script_load(REPLACE_SCRIPT)
            try:
                replies = await self._run(self._sha, calls)
            except NoScriptError:
                # Redis restarted or flushed its script cache: every call failed alike, none ran
                self._sha = None
                if attempt == 2:
                    raise
                continue
            return [(bool(written), [lesson_id_of(e) for e in old]) for written, old in replies]
        raise AssertionError("unreachable")

    async def _run(self, sha: str, calls: list[tuple[str, str, int, bytes]]) -> list[Any]:
        if isinstance(self.redis, aioredis.RedisCluster):
            # redis-py refuses scripts in cluster pipelines: send them concurrently instead (the
            # cluster client routes each by its slot); one learner's keys share one slot.
            return list(await asyncio.gather(*[self.redis.evalsha(sha, 2, *call) for call in calls]))
        async with self.redis.pipeline(transaction=False) as pipe:
            for call in calls:
                pipe.evalsha(sha, 2, *call)
            return list(await pipe.execute())


async def replace_playlist(r: aioredis.Redis, learner_id: str, course_id: str,
                           lessons: list[dict[str, Any]], *, ttl_s: int = constants.PLAYLIST_TTL_S) -> list[str]:
    """Replace one learner's list with these lessons; returns the ids of the lessons it replaced."""
    written, old = (await PlaylistWriter(r).replace_many(
        [(learner_id, course_id, [playlists.encode(ls) for ls in lessons])], ttl_s=ttl_s))[0]
    return old if written else []


async def queued(r: aioredis.Redis, learner_id: str, course_id: str) -> int:
    return int(await r.llen(constants.playlist_key(learner_id, course_id)))
