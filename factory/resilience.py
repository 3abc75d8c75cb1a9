"""The one retry owner (tenacity) and the circuit breakers every worker shares (pybreaker + Redis).

Why tenacity owns every retry: the SDKs retry by themselves by default (2 retries each), and a
second layer on top multiplies attempts (3 tenacity × 3 SDK = 9 calls) while neither layer sees the
whole picture. Only here do we know the job's deadline, the remaining budget and the breaker state,
so only here may a retry be decided; the SDKs run with ``max_retries=0``.

Retries cover transport trouble only (:class:`~factory.providers.base.TransportError`: 429, 5xx,
529, timeouts, lost connections). Waits grow exponentially with jitter, except that a
``Retry-After`` from the provider is honoured as sent (plus a little jitter). A wait that would pass
the job's deadline, or a ``Retry-After`` longer than ``max_retry_after_s``, stops the retries and the
router escalates to the next tier instead of sleeping.

Breakers: one ``pybreaker.CircuitBreaker`` per provider and model, its state in Redis
(``CircuitRedisStorage`` under :data:`shared.constants.BREAKER_NAMESPACE`) so all workers open and
close it together. It opens after ``fail_max`` consecutive failures, where a call slower than
``call_timeout`` is a failure (``asyncio.timeout`` raises inside the breaker). An open breaker makes
the router skip the tier at once; after ``reset_timeout`` exactly one worker (holding
:func:`shared.constants.breaker_probe_key`) sends the half-open probe. pybreaker's ``call_async``
needs Tornado, so under asyncio the await sits inside ``with breaker.calling():``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import pybreaker
import redis
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, stop_any
from tenacity.stop import stop_base
from tenacity.wait import wait_base, wait_exponential_jitter

from factory.providers.base import CallTimeout, RequestRejected, TierSkipped, TransportError
from shared import constants

log = logging.getLogger(__name__)
T = TypeVar("T")

MIN_CALL_S = 0.2
"""A retry is pointless when less than this would be left of the deadline after its wait."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    initial_s: float = 0.5
    max_s: float = 8.0
    jitter_s: float = 0.5
    max_retry_after_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Any) -> RetryPolicy:
        return cls(
            attempts=settings.retry_attempts,
            initial_s=settings.retry_initial_s,
            max_s=settings.retry_max_s,
            jitter_s=settings.retry_jitter_s,
            max_retry_after_s=settings.max_retry_after_s,
        )


class wait_retry_after(wait_base):
    """Wait what the provider's ``Retry-After`` asked (plus ≤10% jitter), else the fallback."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after) + random.uniform(0, min(0.25, 0.1 * float(retry_after)))
        return float(self.fallback(retry_state))


class stop_past_deadline(stop_base):
    """Stop when the coming wait would leave less than MIN_CALL_S before the deadline."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.deadline is not None and time.time() + retry_state.upcoming_sleep + MIN_CALL_S >= self.deadline


class stop_long_retry_after(stop_base):
    """Stop when the provider asks for a longer wait than we are willing to sleep."""

    def __init__(self, max_s: float) -> None:
        self.max_s = max_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        return retry_after is not None and retry_after > self.max_s


async def retry_call(
    fn: Callable[[int], Awaitable[T]],
    *,
    policy: RetryPolicy,
    deadline: float | None,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """Run ``fn(attempt_number)``, retrying :class:`TransportError` under ``policy``.

    Anything else (a rejected request, a skipped tier, a bad reply) is raised at once; so is the
    last transport error when the attempts, the deadline or an over-long Retry-After stop the loop.
    """

    def before_sleep(rs: RetryCallState) -> None:
        exc = rs.outcome.exception() if rs.outcome else None
        if on_retry is not None and exc is not None:
            on_retry(exc, rs.upcoming_sleep)

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(TransportError),
        stop=stop_any(stop_after_attempt(policy.attempts), stop_past_deadline(deadline),
                      stop_long_retry_after(policy.max_retry_after_s)),
        wait=wait_retry_after(
            wait_exponential_jitter(multiplier=policy.initial_s, max=policy.max_s, exp_base=2, jitter=policy.jitter_s)
        ),
        before_sleep=before_sleep,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await fn(attempt.retry_state.attempt_number)
    raise AssertionError("unreachable: tenacity either returns or reraises")  # pragma: no cover


class DeadlineReached(Exception):
    """The call was cut short by the job's deadline, not by the provider's slowness."""


def _counts_for_breaker(exc: BaseException) -> bool:
    """pybreaker ``exclude`` hook: only transport errors and rejected requests trip a breaker."""
    return not isinstance(exc, (TransportError, RequestRejected))


class _LogListener(pybreaker.CircuitBreakerListener):
    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        log.warning("breaker %s: %s -> %s", cb.name, getattr(old_state, "name", None), new_state.name)


class Breakers:
    """One Redis-backed breaker per provider and model, shared by every worker using that Redis."""

    def __init__(
        self, redis_sync: redis.Redis, *, fail_max: int, reset_timeout: float, probe_ttl_s: float
    ) -> None:
        self._redis = redis_sync
        self._fail_max = fail_max
        self._reset_timeout = reset_timeout
        self._probe_ttl_ms = max(1, int(probe_ttl_s * 1000))
        self._breakers: dict[tuple[str, str], pybreaker.CircuitBreaker] = {}

    def get(self, provider: str, model: str) -> pybreaker.CircuitBreaker:
        key = (provider, model)
        if key not in self._breakers:
            storage = pybreaker.CircuitRedisStorage(
                pybreaker.STATE_CLOSED,
                self._redis,
                namespace=constants.breaker_storage_namespace(provider, model),
            )
            self._breakers[key] = pybreaker.CircuitBreaker(
                fail_max=self._fail_max,
                reset_timeout=self._reset_timeout,
                exclude=[_counts_for_breaker],
                listeners=[_LogListener()],
                state_storage=storage,
                name=constants.breaker_name(provider, model),
                throw_new_error_on_trip=False,
            )
        return self._breakers[key]

    def state(self, provider: str, model: str) -> str:
        """'closed', 'open' or 'half-open', as every worker sees it."""
        return str(self.get(provider, model).current_state)

    def admit(self, provider: str, model: str) -> bool:
        """Raise ``TierSkipped('breaker_open')`` unless a call may go; True when it is the probe.

        Closed: go. Open before ``reset_timeout``: skip at once (no waiting). Open after it, or
        half-open: only the worker that takes the probe key goes; the others skip.
        """
        breaker = self.get(provider, model)
        state = breaker.current_state
        if state == pybreaker.STATE_CLOSED:
            return False
        if state == pybreaker.STATE_OPEN:
            opened_at = breaker._state_storage.opened_at
            elapsed = (datetime.now(UTC) - opened_at).total_seconds() if opened_at else self._reset_timeout
            if elapsed < self._reset_timeout:
                raise TierSkipped("breaker_open", f"breaker {breaker.name} is open")
        probe = constants.breaker_probe_key(provider, model)
        if not self._redis.set(probe, "1", nx=True, px=self._probe_ttl_ms):
            raise TierSkipped("breaker_open", f"breaker {breaker.name} is half-open; another worker probes")
        return True

    @contextmanager
    def slot(self, provider: str, model: str) -> Iterator[bool]:
        """Admit one call (see :meth:`admit`) and give the probe key back when it is done."""
        probing = self.admit(provider, model)
        try:
            yield probing
        finally:
            if probing:
                self._redis.delete(constants.breaker_probe_key(provider, model))

    async def call(
        self, provider: str, model: str, fn: Callable[[], Awaitable[T]], *, timeout: float, capped: bool = False
    ) -> T:
        """Await ``fn()`` inside the breaker, failing it (as a slow call) after ``timeout`` seconds.

        Call it within :meth:`slot`. ``capped`` says the timeout was shortened by the job's
        deadline: running out of it then raises :class:`DeadlineReached`, which does not count
        against the provider.
        """
        breaker = self.get(provider, model)
        try:
            with breaker.calling():
                try:
                    async with asyncio.timeout(timeout):
                        return await fn()
                except TimeoutError:
                    if capped:
                        raise DeadlineReached(f"the job's deadline came during the call ({timeout:.1f}s)") from None
                    raise CallTimeout(f"no reply within {timeout:.1f}s (slow call)") from None
        except pybreaker.CircuitBreakerError as exc:
            raise TierSkipped("breaker_open", f"breaker {breaker.name}: {exc}") from None
