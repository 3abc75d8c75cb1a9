"""Writing learners' upcoming lessons into their Redis lists, atomically.

One script call per learner replaces the whole list and sets its TTL: a reader pops either the old
list or the new one, never a half-written one. Each call touches one learner's keys only (one hash
slot), so it works on Redis Cluster; a batch sends all its calls in one pipelined round trip, encoded
here rather than by redis-py (its per-argument packing and per-reply timeouts cost the curator more
CPU than Redis spends running the scripts). The script returns the elements it replaced (lessons
never popped: the caller deletes their planned rows) and refuses to write for a learner who was just
erased (`constants.erased_key`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import redis.asyncio as aioredis
from redis._parsers.hiredis import NOT_ENOUGH_DATA
from redis.exceptions import NoScriptError, ResponseError

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


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


Call = tuple[str, str, bytes]
"""One learner's script call: playlist key, erasure tombstone key, the elements joined by newlines."""


class PlaylistWriter:
    def __init__(self, r: aioredis.Redis) -> None:
        self.redis = r
        self._sha: str | None = None

    async def replace_many(self, playlists_: list[tuple[str, str, list[bytes | str]]], *,
                           ttl_s: int = constants.PLAYLIST_TTL_S) -> list[tuple[bool, list[str]]]:
        """For each (learner, course, elements): (written, lesson ids of the replaced elements)."""
        calls = [(constants.playlist_key(learner, course), constants.erased_key(learner),
                  b"\n".join([e if isinstance(e, bytes) else e.encode() for e in elements]))
                 for learner, course, elements in playlists_]
        replies: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for _ in (1, 2):
            if not todo:
                break
            if self._sha is None:
                self._sha = await self.redis.script_load(REPLACE_SCRIPT)
            retry = []
            for k, reply in zip(todo, await self._run(self._sha, [calls[k] for k in todo], ttl_s), strict=True):
                if isinstance(reply, NoScriptError):  # Redis restarted or flushed its scripts: the call did not run
                    retry.append(k)
                elif isinstance(reply, BaseException):
                    raise reply
                else:
                    replies[k] = reply
            if retry:
                self._sha = None
            todo = retry
        if todo:
            raise NoScriptError("the playlist script vanished twice in a row")
        return [(bool(written), [lesson_id_of(e) for e in old]) for written, old in replies]

    async def _run(self, sha: str, calls: list[Call], ttl_s: int) -> list[Any]:
        """The calls' replies in order, an error reply as its exception (each call stands alone)."""
        if not calls:
            return []
        if isinstance(self.redis, aioredis.RedisCluster):
            # redis-py refuses scripts in cluster pipelines: send them concurrently instead (the
            # cluster client routes each by its slot); one learner's keys share one slot.
            return list(await asyncio.gather(*[self.redis.evalsha(sha, 2, key, erased, ttl_s, joined)
                                               for key, erased, joined in calls], return_exceptions=True))
        head = b"*7\r\n" + _bulk(b"EVALSHA") + _bulk(sha.encode()) + _bulk(b"2")
        ttl = _bulk(str(ttl_s).encode())
        payload = b"".join([head + _bulk(key.encode()) + _bulk(erased.encode()) + ttl + _bulk(joined)
                            for key, erased, joined in calls])
        pool = self.redis.connection_pool
        conn = await pool.get_connection()
        try:  # a failed send or read disconnects the connection (redis-py does): the pool reconnects it
            await conn.send_packed_command(payload, check_health=False)
            return await _read_replies(conn, len(calls))
        finally:
            await pool.release(conn)


async def _read_replies(conn: Any, n: int) -> list[Any]:
    """n replies from a redis-py connection, an error reply as its exception. With hiredis (a
    dependency) they are taken straight from its reader, all that arrived per socket read: redis-py's
    `read_response` costs a timeout scope and three coroutine frames per reply, most of the
    pipeline's client CPU once the send is done."""
    parser = conn._parser
    reader = getattr(parser, "_reader", None)
    if reader is None or not hasattr(reader, "gets"):  # redis-py's own parser: one reply at a time
        replies: list[Any] = []
        for _ in range(n):
            try:
                replies.append(await conn.read_response())
            except ResponseError as exc:  # this call's error reply; the connection stays in step
                replies.append(exc)
        return replies
    replies = []
    try:
        async with asyncio.timeout(conn.socket_timeout):
            while len(replies) < n:
                reply = reader.gets()  # hiredis returns an error reply as its exception object
                if reply is NOT_ENOUGH_DATA:
                    await parser.read_from_socket()
                else:
                    replies.append(reply)
    except BaseException:  # a half-read pipeline leaves the connection out of step: drop it
        await conn.disconnect(nowait=True)
        raise
    return replies


async def replace_playlist(r: aioredis.Redis, learner_id: str, course_id: str,
                           lessons: list[dict[str, Any]], *, ttl_s: int = constants.PLAYLIST_TTL_S) -> list[str]:
    """Replace one learner's list with these lessons; returns the ids of the lessons it replaced."""
    written, old = (await PlaylistWriter(r).replace_many(
        [(learner_id, course_id, [playlists.encode(ls) for ls in lessons])], ttl_s=ttl_s))[0]
    return old if written else []


async def queued(r: aioredis.Redis, learner_id: str, course_id: str) -> int:
    return int(await r.llen(constants.playlist_key(learner_id, course_id)))
