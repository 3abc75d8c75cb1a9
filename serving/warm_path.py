"""The warm path: one Redis round trip pops the learner's next lesson and checks its questions
against the retired set of the learner's bucket (both keys share a hash slot; see shared.constants)."""

from __future__ import annotations

import logging
import time

import redis
import redis.asyncio as aioredis

from shared import constants

log = logging.getLogger(__name__)

# KEYS[1] playlist, KEYS[2] the bucket's retired set. Returns {element or '', remaining, retired ids}.
POP_SCRIPT = """
local v = redis.call('LPOP', KEYS[1])
if not v then return {'', 0, {}} end
local remaining = redis.call('LLEN', KEYS[1])
local retired = {}
local sep = string.find(v, '|', 1, true)
if sep then
  for qid in string.gmatch(string.sub(v, 1, sep - 1), '[^,]+') do
    if redis.call('ZSCORE', KEYS[2], qid) then retired[#retired + 1] = qid end
  end
end
return {v, remaining, retired}
"""

OUTAGE_BACKOFF_S = 1.0
"""After a Redis error, go straight to the cold path for this long instead of waiting on timeouts."""


class WarmPath:
    def __init__(self, r: aioredis.Redis) -> None:
        self._script = r.register_script(POP_SCRIPT)
        self._skip_until = 0.0

    async def pop(self, learner_id: str, course_id: str) -> tuple[bytes, list[str], int] | None:
        """(element, retired question ids in it, lessons left) or None on a miss or a Redis outage."""
        if time.monotonic() < self._skip_until:
            return None
        bucket = constants.learner_bucket(learner_id)
        keys = [constants.playlist_key(learner_id, course_id), constants.retired_key(bucket)]
        try:
            element, remaining, retired = await self._script(keys=keys)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self._skip_until = time.monotonic() + OUTAGE_BACKOFF_S
            log.warning("warm path unavailable, serving cold: %s", type(exc).__name__)
            return None
        if not element:
            return None
        return element, [r.decode() for r in retired], int(remaining)
