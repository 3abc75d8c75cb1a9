"""Writing learners' upcoming lessons into their Redis lists, atomically.

One script call per learner replaces the whole list and sets its TTL: a reader pops either the old
list or the new one, never a half-written one. Each call touches one learner's keys only (one hash
slot), so it works on Redis Cluster; a batch sends all its calls in one pipelined round trip, encoded
here rather than by redis-py (its per-argument packing and per-reply timeouts cost the curator more
CPU than Redis spends running the scripts). The script returns the elements it replaced (lessons
never popped: the caller deletes their planned rows) and refuses to write for a learner who was just
erased (`constants.erased_key`), or who reset the course since the caller read its reset mark
(`constants.reset_key`, read by `marks` before the plan's model was read).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import redis.asyncio as aioredis
from redis._parsers.hiredis import NOT_ENOUGH_DATA
from redis.exceptions import NoScriptError, ResponseError

from shared import constants, playlists

# KEYS[1] playlist, KEYS[2] erasure tombstone, KEYS[3] reset mark; ARGV[1] ttl, ARGV[2] the elements
# joined by "\n" (an element never holds a raw newline: ids, then JSON), so a call packs a fixed number
# of arguments, not one per lesson; ARGV[3] the reset mark as the caller read it ('' for none).
# -> {written, lesson ids of the old elements}
REPLACE_SCRIPT = r"""
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, {}} end
if (redis.call('GET', KEYS[3]) or '') ~= ARGV[3] then return {0, {}} end
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


Call = tuple[str, str, str, bytes, bytes]
"""One learner's script call: playlist key, erasure tombstone key, reset mark key, the elements joined
by newlines, the reset mark as read."""


class PlaylistWriter:
    def __init__(self, r: aioredis.Redis) -> None:
        self.redis = r
        self._sha: str | None = None

    async def marks(self, pairs: list[tuple[str, str]]) -> list[bytes]:
        """The reset mark of each (learner, course) now (b"" for none), in one pipelined round trip.
        A refill reads them before it reads the learners' models and hands them to `replace_many`."""
        keys = [constants.reset_key(learner, course) for learner, course in pairs]
        if not keys:
            return []
        if isinstance(self.redis, aioredis.RedisCluster):
            replies = await asyncio.gather(*[self.redis.get(k) for k in keys])
        else:
            payload = b"".join([b"*2\r\n" + _bulk(b"GET") + _bulk(k.encode()) for k in keys])
            replies = await self._send(payload, len(keys))
        out = []
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
            out.append(reply or b"")
        return out

    async def replace_many(self, playlists_: list[tuple[str, str, list[bytes | str]]], *,
                           ttl_s: int = constants.PLAYLIST_TTL_S,
                           marks: list[bytes] | None = None) -> list[tuple[bool, list[str]]]:
        """For each (learner, course, elements): (written, lesson ids of the replaced elements). Not
        written for a learner erased, or whose reset mark is no longer the one in `marks` (read by
        `marks` before the plan's model was read; default: read now)."""
        if marks is None:
            marks = await self.marks([(learner, course) for learner, course, _ in playlists_])
        calls = [(constants.playlist_key(learner, course), constants.erased_key(learner),
                  constants.reset_key(learner, course),
                  b"\n".join([e if isinstance(e, bytes) else e.encode() for e in elements]), mark)
                 for (learner, course, elements), mark in zip(playlists_, marks, strict=True)]
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
            return list(await asyncio.gather(*[self.redis.evalsha(sha, 3, key, erased, reset, ttl_s, joined, mark)
                                               for key, erased, reset, joined, mark in calls],
                                             return_exceptions=True))
        head = b"*9\r\n" + _bulk(b"EVALSHA") + _bulk(sha.encode()) + _bulk(b"3")
        ttl = _bulk(str(ttl_s).encode())
        payload = b"".join([head + _bulk(key.encode()) + _bulk(erased.encode()) + _bulk(reset.encode()) + ttl
                            + _bulk(joined) + _bulk(mark) for key, erased, reset, joined, mark in calls])
        return await self._send(payload, len(calls))

    async def _send(self, payload: bytes, n: int) -> list[Any]:
        """Send packed commands on one pooled connection; their `n` replies in order."""
        pool = self.redis.connection_pool
        conn = await pool.get_connection()
        try:  # a failed send or read disconnects the connection (redis-py does): the pool reconnects it
            await conn.send_packed_command(payload, check_health=False)
            return await _read_replies(conn, n)
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
