"""The warm path: one Redis round trip pops the learner's next lesson and checks its questions
against the retired set of the learner's bucket (both keys share a hash slot; see shared.constants)."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable
from typing import Any

from serving.resp import RespClient, RespError, encode
from serving.resp_cluster import ClusterRespClient
from shared import constants, metrics

log = logging.getLogger(__name__)

# KEYS[1] playlist, KEYS[2] the bucket's retired set. Returns {lesson JSON or '', remaining, retired ids}:
# the element's question-id header (shared.playlists) is checked here and cut off, so the API gets
# exactly the bytes it sends.
POP_SCRIPT = """
local v = redis.call('LPOP', KEYS[1])
if not v then return {'', 0, {}} end
local remaining = redis.call('LLEN', KEYS[1])
local retired = {}
local sep = string.find(v, '|', 1, true)
if not sep then return {v, remaining, retired} end
for qid in string.gmatch(string.sub(v, 1, sep - 1), '[^,]+') do
  if redis.call('ZSCORE', KEYS[2], qid) then retired[#retired + 1] = qid end
end
return {string.sub(v, sep + 1), remaining, retired}
"""

OUTAGE_BACKOFF_S = 1.0
"""After a Redis error, go straight to the cold path for this long instead of waiting on timeouts."""


POP_SHA = hashlib.sha1(POP_SCRIPT.encode()).hexdigest()
# The fixed head of `EVALSHA <sha> 2 <playlist> <retired>`, encoded once.
_POP_HEAD = b"*5\r\n" + encode("EVALSHA", POP_SHA, 2)[len(b"*3\r\n"):]


def _bulk(s: str) -> bytes:
    b = s.encode()
    return b"$%d\r\n%s\r\n" % (len(b), b)


class WarmPath:
    """Pops through the pipelining RESP client: one EVALSHA per lesson start, many per socket write."""

    def __init__(self, redis_url: str, *, cluster: bool = False, timeout: float = 1.0) -> None:
        self.client: RespClient | ClusterRespClient = (
            ClusterRespClient(redis_url, timeout=timeout) if cluster else RespClient(redis_url, timeout=timeout))
        self._cluster = cluster
        self._skip_until = 0.0

    def _send(self, key: str, command: bytes) -> Awaitable[Any]:
        if self._cluster:
            return self.client.execute_for_key(key, command)  # type: ignore[union-attr]
        return self.client.execute_raw(command)  # type: ignore[union-attr]

    async def _load_and_pop(self, key: str, command: bytes) -> Any:
        await self._send(key, encode("SCRIPT", "LOAD", POP_SCRIPT))
        return await self._send(key, command)

    async def pop(self, learner_id: str, course_id: str) -> tuple[bytes, list[str], int] | None:
        """(lesson JSON, retired question ids in it, lessons left) or None on a miss or a Redis outage."""
        if time.monotonic() < self._skip_until:
            return None
        playlist, retired_set = constants.pop_keys(learner_id, course_id)
        command = _POP_HEAD + _bulk(playlist) + _bulk(retired_set)
        t0 = time.perf_counter()
        try:
            try:
                body, remaining, retired = await self._send(playlist, command)
            except RespError as exc:  # a Redis that restarted or failed over has no scripts yet
                if not str(exc).startswith("NOSCRIPT"):
                    raise
                body, remaining, retired = await self._load_and_pop(playlist, command)
        except (ConnectionError, TimeoutError, OSError, RespError) as exc:
            self._skip_until = time.monotonic() + OUTAGE_BACKOFF_S
            log.warning("warm path unavailable, serving cold: %s", type(exc).__name__)
            return None
        metrics.POP_SECONDS.observe(time.perf_counter() - t0)
        if not body:
            return None
        return body, [r.decode() for r in retired] if retired else [], int(remaining)

    async def aclose(self) -> None:
        await self.client.aclose()
