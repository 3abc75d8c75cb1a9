"""Per-job budgets and cross-worker rate limits, both atomic in Redis (Lua).

Budget: a job's remaining money lives in micro-dollars at :func:`shared.constants.job_budget_key`.
Before every call a worker reserves the call's *worst-case* cost (every prompt byte billed as an
input token — a token is never shorter than a byte — plus ``max_tokens`` output tokens) with one
script that checks and decrements together; after the call it refunds what the call did not use.
So any number of concurrent workers can never spend more than the budget. A reservation that does
not fit raises :class:`BudgetExceeded`, and the router falls to the offline tier (which is free).
The key is created by the first reservation (``SET`` if absent, with a TTL) from the job's budget;
the job runner may create it earlier with the same value.

Rate limits: one fixed window per provider and model (:func:`shared.constants.rate_limit_key`),
shared by every worker, counting requests and tokens. A request that does not fit waits for the
next window — unless that wait passes the deadline or ``max_wait``, in which case it raises
:class:`RateLimitExceeded` and the router escalates.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass

import redis.asyncio

from shared import constants

MICRO = 1_000_000

_RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
local left = tonumber(redis.call('GET', KEYS[1]))
local amount = tonumber(ARGV[1])
if left < amount then
  return {0, left}
end
return {1, redis.call('DECRBY', KEYS[1], amount)}
"""

_REFUND = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return false
"""

_ADMIT = """
local used_req = tonumber(redis.call('HGET', KEYS[1], 'req') or '0')
local used_tok = tonumber(redis.call('HGET', KEYS[1], 'tok') or '0')
local max_req = tonumber(ARGV[1])
local max_tok = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
if max_req >= 0 and used_req + 1 > max_req then
  return 0
end
if max_tok >= 0 and used_tok > 0 and used_tok + tokens > max_tok then
  return 0
end
redis.call('HINCRBY', KEYS[1], 'req', 1)
redis.call('HINCRBY', KEYS[1], 'tok', tokens)
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

_ADJUST = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HINCRBY', KEYS[1], 'tok', ARGV[1])
end
return false
"""


def usd_to_micro(usd: float) -> int:
    """Micro-dollars, rounded up (a reservation never under-counts)."""
    return math.ceil(usd * MICRO - 1e-9)


def worst_case_micro(prompt_bytes: int, max_tokens: int, price_in: float, price_out: float) -> int:
    """Most a call can cost: prices are USD per 1M tokens, so per token they are micro-dollars."""
    return math.ceil(prompt_bytes * price_in + max_tokens * price_out)


def cost_micro(tokens_in: int, tokens_out: int, price_in: float, price_out: float) -> int:
    return math.ceil(tokens_in * price_in + tokens_out * price_out)


class BudgetExceeded(Exception):
    """A call's worst-case cost does not fit in what is left of the job's budget."""

    def __init__(self, job_id: str, needed: int, left: int) -> None:
        super().__init__(
            f"job {job_id}: a call may cost ${needed / MICRO:.6f} but only ${max(left, 0) / MICRO:.6f} is left"
        )
        self.job_id, self.needed, self.left = job_id, needed, left


class RateLimitExceeded(Exception):
    """The shared rate-limit window is full and waiting for the next one is not allowed."""


@dataclass
class Reservation:
    budget: Budget | None
    key: str | None
    amount: int
    settled: bool = False

    async def settle(self, actual: int) -> None:
        """Refund ``amount - actual`` (or charge the excess, should a call cost more)."""
        if self.settled or self.budget is None or self.key is None:
            return
        self.settled = True
        if self.amount != actual:
            await self.budget.redis.eval(_REFUND, 1, self.key, str(self.amount - actual))  # type: ignore[misc]


class Budget:
    def __init__(self, redis_async: redis.asyncio.Redis, *, ttl_s: int = constants.JOB_BUDGET_TTL_S) -> None:
        self.redis = redis_async
        self._ttl_s = ttl_s

    async def reserve(self, job_id: str, amount: int, *, limit_usd: float | None) -> Reservation:
        """Reserve ``amount`` micro-dollars of the job's budget, or raise :class:`BudgetExceeded`.

        ``limit_usd`` None means the job has no budget: nothing is stored or checked.
        """
        if limit_usd is None:
            return Reservation(None, None, amount)
        key = constants.job_budget_key(job_id)
        ok, left = await self.redis.eval(  # type: ignore[misc]
            _RESERVE, 1, key, str(amount), str(usd_to_micro(limit_usd)), str(self._ttl_s)
        )
        if not ok:
            raise BudgetExceeded(job_id, amount, int(left))
        return Reservation(self, key, amount)

    async def remaining(self, job_id: str) -> int | None:
        """Micro-dollars left (None when the job's budget was never set)."""
        value = await self.redis.get(constants.job_budget_key(job_id))
        return None if value is None else int(value)


@dataclass
class RateTicket:
    key: str | None
    tokens: int


class RateLimiter:
    def __init__(self, redis_async: redis.asyncio.Redis, *, window_s: int) -> None:
        self.redis = redis_async
        self.window_s = max(1, int(window_s))

    async def acquire(
        self,
        provider: str,
        model: str,
        *,
        rpm: int | None,
        tpm: int | None,
        tokens: int,
        deadline: float | None,
        max_wait: float,
    ) -> RateTicket:
        """Count one request of ``tokens`` (estimated) tokens in the current shared window.

        ``rpm``/``tpm`` are per window (per minute with the default 60 s window); None = no limit.
        """
        if rpm is None and tpm is None:
            return RateTicket(None, tokens)
        waited = 0.0
        while True:
            now = time.time()
            window = int(now // self.window_s)
            key = constants.rate_limit_key(provider, model, window)
            admitted = await self.redis.eval(  # type: ignore[misc]
                _ADMIT, 1, key, str(-1 if rpm is None else rpm), str(-1 if tpm is None else tpm), str(tokens),
                str(self.window_s * 2),
            )
            if admitted:
                return RateTicket(key, tokens)
            wait = (window + 1) * self.window_s - now + random.uniform(0.005, 0.05)
            if waited + wait > max_wait or (deadline is not None and now + wait >= deadline):
                raise RateLimitExceeded(
                    f"{provider}:{model}: rate limit reached for this {self.window_s}s window; "
                    f"the next one starts in {wait:.1f}s"
                )
            await asyncio.sleep(wait)
            waited += wait

    async def adjust(self, ticket: RateTicket, actual_tokens: int) -> None:
        """Replace the estimate by the tokens the call really used."""
        if ticket.key is not None and actual_tokens != ticket.tokens:
            await self.redis.eval(_ADJUST, 1, ticket.key, str(actual_tokens - ticket.tokens))  # type: ignore[misc]
