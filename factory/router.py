"""Routing one batch across model tiers, resiliently: the entry point of the generation workers.

``Router.generate_batch`` scores the batch's complexity with plain rules, builds the tier chain
(the configured tiers, in order, that accept that complexity; the offline tier always closes it),
and walks it::

    tier 1 (e.g. cheap model for simple batches, strong model for complex ones)
      └─ on failure ─► tier 2 (strong model / backup provider) ─► … ─► offline rules (never fails)

On each LLM tier a call passes, in order: the job's cancel flag, the deadline, the shared breaker
(open = skip the tier at once), the shared rate limit (wait for the window, capped by the deadline),
the budget reservation (worst case, refunded after), then the call itself under
``asyncio.timeout(call_timeout)``. Transport errors are retried by tenacity
(:mod:`factory.resilience`); unusable replies (malformed, schema-violating, refused, truncated, or
without a single valid item) get ``repair_attempts`` follow-up requests carrying the errors, then
the batch escalates. Items are validated one by one: valid ones are returned with provenance and
warnings, invalid ones with their reasons — a batch is never retried for one bad item.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import redis
import redis.asyncio

from factory.budget import (
    MICRO,
    Budget,
    BudgetExceeded,
    RateLimiter,
    RateLimitExceeded,
    cost_micro,
    worst_case_micro,
)
from factory.prompts import render_generation, render_repair
from factory.providers.anthropic import AnthropicProvider
from factory.providers.base import (
    BatchRequest,
    BatchResult,
    BatchSpec,
    CallRecord,
    CompletionRequest,
    CompletionResponse,
    ItemProvenance,
    Provider,
    ProviderError,
    ReplyError,
    RequestRejected,
    SchemaViolation,
    TierSkipped,
    check_reply,
)
from factory.providers.offline import OfflineProvider
from factory.providers.openai import OpenAIProvider
from factory.resilience import Breakers, DeadlineReached, RetryPolicy, retry_call
from factory.schemas import QUESTION_TYPES, batch_schema
from factory.validation import validate_item
from shared import constants
from shared.settings import FactorySettings

__all__ = [
    "BatchRequest",
    "BatchResult",
    "Complexity",
    "ItemProvenance",
    "Router",
    "Tier",
    "complexity",
    "load_tiers",
]

PROVIDERS = ("openai", "anthropic", "offline")
SCHEMA_NAME = "question_batch"
SDK_TIMEOUT_MARGIN_S = 1.0
"""The SDK's own timeout sits just above ours, so asyncio.timeout (which the breaker sees) fires first."""

# --- tiers ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tier:
    name: str
    provider: str
    model: str
    base_url: str | None = None
    api_key: str | None = None
    price_in: float = 0.0  # USD per 1M input tokens
    price_out: float = 0.0  # USD per 1M output tokens
    max_complexity: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_tokens_param: str = "max_completion_tokens"

    @property
    def paid(self) -> bool:
        return self.provider != "offline"


def _derived_tiers(s: FactorySettings) -> list[dict[str, Any]]:
    tiers: list[dict[str, Any]] = []
    if s.openai_api_key:
        tiers.append({"name": "openai-small", "provider": "openai", "model": s.openai_small_model,
                      "max_complexity": s.simple_max_complexity})
        tiers.append({"name": "openai", "provider": "openai", "model": s.openai_model})
    if s.anthropic_api_key:
        if not s.openai_api_key:
            tiers.append({"name": "anthropic-small", "provider": "anthropic", "model": s.anthropic_small_model,
                          "max_complexity": s.simple_max_complexity})
        tiers.append({"name": "anthropic", "provider": "anthropic", "model": s.anthropic_model})
    return tiers


def load_tiers(settings: FactorySettings) -> list[Tier]:
    """The tiers in fallback order, always ending with the offline tier.

    ``settings.tiers`` when set, else derived from the API keys present (none = offline only).
    Raises ``ValueError`` naming the entry and field at fault.
    """
    import os

    raw = settings.tiers if settings.tiers is not None else _derived_tiers(settings)
    tiers: list[Tier] = []
    for i, entry in enumerate(raw):
        where = f"tiers[{i}]"
        try:
            name, provider, model = str(entry["name"]), str(entry["provider"]), str(entry.get("model", "rules"))
        except KeyError as exc:
            raise ValueError(f"{where}.{exc.args[0]}: required") from None
        if provider not in PROVIDERS:
            raise ValueError(f"{where}.provider: expected one of {PROVIDERS}, got {provider!r}")
        if any(t.name == name for t in tiers):
            raise ValueError(f"{where}.name: duplicate tier name {name!r}")
        price = settings.prices.get(model, [0.0, 0.0])
        key_env = entry.get("api_key_env")
        if key_env:
            api_key = os.environ.get(str(key_env))
        else:
            api_key = {"openai": settings.openai_api_key, "anthropic": settings.anthropic_api_key}.get(provider)
        default_url = {"openai": settings.openai_base_url, "anthropic": settings.anthropic_base_url}.get(provider)
        mc = entry.get("max_complexity")
        tiers.append(
            Tier(
                name=name,
                provider=provider,
                model=model,
                base_url=str(entry["base_url"]) if entry.get("base_url") else default_url,
                api_key=api_key,
                price_in=float(entry.get("price_in", price[0])),
                price_out=float(entry.get("price_out", price[1])),
                max_complexity=None if mc is None else float(mc),
                rpm=None if entry.get("rpm") is None else int(entry["rpm"]),
                tpm=None if entry.get("tpm") is None else int(entry["tpm"]),
                max_tokens_param=str(entry.get("max_tokens_param", "max_completion_tokens")),
            )
        )
    if not any(t.provider == "offline" for t in tiers):
        tiers.append(Tier(name="offline", provider="offline", model="rules"))
    return tiers


# --- complexity -------------------------------------------------------------------------------------

LEVEL_WEIGHT = {"A1": 0.0, "A2": 0.08, "B1": 0.2, "B2": 0.3, "C1": 0.4, "C2": 0.45}
TYPE_WEIGHT = {"multiple_choice": 0.0, "cloze": 0.1, "translation": 0.2}
PRODUCTIVE_TYPES = frozenset({"cloze", "translation"})
SCENARIO_WORDS = re.compile(r"\b(scenario|dialog(ue)?|role[- ]?play|conversation|story|debate|interview)\b",
                            re.IGNORECASE)


@dataclass(frozen=True)
class Complexity:
    score: float
    factors: dict[str, float] = field(default_factory=dict)


def complexity(req: BatchRequest) -> Complexity:
    """A rule-based score in [0, 1]: 0 = simple variation (A1 multiple choice on one skill),
    high = a complex scenario (B2 translation over several skills on a long, specific topic)."""
    levels = [req.level] if req.level else [s.get("level") for s in req.skills if s.get("level")]
    f_level = max((LEVEL_WEIGHT.get(str(lv).upper(), 0.2) for lv in levels), default=0.1)
    types = req.types or list(QUESTION_TYPES)
    f_types = max(TYPE_WEIGHT.get(t, 0.1) for t in types) + (0.05 if len(set(types)) > 1 else 0.0)
    # Producing language (cloze, translation) gets harder faster with the level than recognising it.
    f_productive = 0.5 * f_level if PRODUCTIVE_TYPES & set(types) else 0.0
    f_skills = 0.1 * min(max(len(req.skills) - 1, 0), 3)
    topic = (req.topic or "").strip()
    f_topic = 0.0
    if topic:
        words = topic.split()
        f_topic += 0.1 * min(len(topic) / 120, 1.0)
        f_topic += 0.05 if len(words) >= 6 else 0.0
        f_topic += 0.05 if any(w[:1].isupper() or any(c.isdigit() for c in w) for w in words[1:]) else 0.0
        f_topic += 0.1 if SCENARIO_WORDS.search(topic) else 0.0
    factors = {"level": f_level, "types": f_types, "productive": f_productive, "skills": f_skills, "topic": f_topic}
    return Complexity(round(min(1.0, sum(factors.values())), 4), factors)


# --- one batch ------------------------------------------------------------------------------------------


class _Escalate(Exception):
    """Leave this tier for the next one (the failure is already recorded)."""

    def __init__(self, kind: str, *, stop: bool = False, paid_done: bool = False) -> None:
        super().__init__(kind)
        self.kind, self.stop, self.paid_done = kind, stop, paid_done


@dataclass
class _Run:
    req: BatchRequest
    prompt_version: str
    failures: list[dict[str, Any]] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    invalid: list[tuple[dict[str, Any] | None, str]] = field(default_factory=list)
    cost_micro: int = 0

    def fail(self, tier: Tier, kind: str, message: str) -> None:
        self.failures.append({
            "tier": tier.name, "provider": tier.provider, "model": tier.model, "kind": kind,
            "message": message, "at": datetime.now(UTC).isoformat(),
        })

    def call(self, tier: Tier, attempt: int, outcome: str, resp: CompletionResponse | None, cost: int,
             latency: float) -> None:
        self.cost_micro += cost
        self.calls.append(CallRecord(
            tier=tier.name, provider=tier.provider, model=tier.model, prompt_version=self.prompt_version,
            attempt=attempt, outcome=outcome, latency_s=round(latency, 4),
            tokens_in=resp.tokens_in if resp else 0, tokens_out=resp.tokens_out if resp else 0,
            cost_usd=cost / MICRO,
        ))


class Router:
    """Routes batches over the configured tiers; one per worker process (it holds SDK clients)."""

    def __init__(self, settings: FactorySettings, redis_sync: redis.Redis, redis_async: redis.asyncio.Redis) -> None:
        self.settings = settings
        self.tiers = load_tiers(settings)
        self.policy = RetryPolicy.from_settings(settings)
        self.breakers = Breakers(
            redis_sync,
            fail_max=settings.breaker_fail_max,
            reset_timeout=settings.breaker_reset_s,
            probe_ttl_s=settings.call_timeout * 2 + 1,
        )
        self.budget = Budget(redis_async)
        self.rates = RateLimiter(redis_async, window_s=settings.rate_window_s)
        self._redis = redis_async
        self._providers: dict[str, Provider] = {}

    def chain(self, score: float) -> list[Tier]:
        """The tiers a batch of this complexity tries, in order (the offline tier always last)."""
        eligible = [t for t in self.tiers if t.paid and (t.max_complexity is None or score <= t.max_complexity)]
        return eligible + [t for t in self.tiers if not t.paid][:1]

    def provider(self, tier: Tier) -> Provider:
        if tier.name not in self._providers:
            timeout = self.settings.call_timeout + SDK_TIMEOUT_MARGIN_S
            if tier.provider == "openai":
                self._providers[tier.name] = OpenAIProvider(
                    api_key=tier.api_key, base_url=tier.base_url, timeout=timeout,
                    max_tokens_param=tier.max_tokens_param,
                )
            elif tier.provider == "anthropic":
                self._providers[tier.name] = AnthropicProvider(
                    api_key=tier.api_key, base_url=tier.base_url, timeout=timeout
                )
            else:
                self._providers[tier.name] = OfflineProvider()
        return self._providers[tier.name]

    async def aclose(self) -> None:
        providers, self._providers = self._providers, {}
        for provider in providers.values():
            await provider.aclose()

    async def generate_batch(self, req: BatchRequest) -> BatchResult:
        """Generate one batch: valid items with provenance, invalid ones with reasons, all failures.

        Never raises for provider trouble (it is recorded in ``failures``); raises ``ValueError``
        only for a request naming an unknown question type.
        """
        unknown = sorted(set(req.types) - set(QUESTION_TYPES))
        if unknown:
            raise ValueError(f"types: unknown question type(s) {unknown}; expected some of {QUESTION_TYPES}")
        types = [t for t in QUESTION_TYPES if t in set(req.types)] if req.types else list(QUESTION_TYPES)
        cx = complexity(req)
        prompt = render_generation(
            course=req.course, skills=req.skills, level=req.level, topic=req.topic,
            types=types, count=req.count, language=req.language,
        )
        spec = BatchSpec(skills=req.skills, types=types, count=req.count, level=req.level,
                         language=req.language, seed=f"{req.job_id}:{req.batch_no}")
        base = CompletionRequest(
            model="", system=prompt.system, messages=[{"role": "user", "content": prompt.user}],
            schema=batch_schema(types), schema_name=SCHEMA_NAME, max_tokens=self.settings.max_output_tokens,
            timeout=self.settings.call_timeout + SDK_TIMEOUT_MARGIN_S, spec=spec,
        )
        run = _Run(req, prompt.version)
        paid_done = False
        for tier in self.chain(cx.score):
            if tier.paid and paid_done:
                continue
            try:
                items = await self._run_tier(tier, replace(base, model=tier.model), run)
            except _Escalate as esc:
                if esc.stop:
                    break
                paid_done = paid_done or esc.paid_done
                continue
            return BatchResult(items=items, invalid=run.invalid, failures=run.failures,
                               cost_usd=run.cost_micro / MICRO, calls=run.calls, complexity=cx.score,
                               tier=tier.name)
        return BatchResult(items=[], invalid=run.invalid, failures=run.failures, cost_usd=run.cost_micro / MICRO,
                           calls=run.calls, complexity=cx.score, tier=None)

    # --- one tier -----------------------------------------------------------------------------------

    async def _run_tier(
        self, tier: Tier, creq: CompletionRequest, run: _Run
    ) -> list[tuple[dict[str, Any], ItemProvenance, tuple[str, ...]]]:
        repairs = 0
        first_call = len(run.calls)
        while True:
            resp = await self._call(tier, creq, run)
            try:
                raw_items = check_reply(resp, creq.schema)
                valid, invalid = self._validate(raw_items, run.req)
                if not valid:
                    reasons = tuple(reason for _, reason in invalid) or ("the reply holds no item",)
                    raise SchemaViolation("no valid item in the reply", raw=resp.text, errors=reasons)
            except ReplyError as exc:
                run.fail(tier, exc.kind, exc.message)
                if isinstance(exc, SchemaViolation):
                    run.invalid.extend((item, f"[{tier.name}] {reason}") for item, reason in
                                       (self._validate(_items_of(resp), run.req)[1]))
                if repairs >= (self.settings.repair_attempts if tier.paid else 0):  # rules don't improve
                    raise _Escalate(exc.kind) from None
                repairs += 1
                repair = render_repair(exc.kind, exc.message, exc.errors, run.req.count)
                creq = replace(creq, messages=[
                    *creq.messages,
                    {"role": "assistant", "content": exc.raw or "(empty reply)"},
                    {"role": "user", "content": repair},
                ])
                continue
            run.invalid.extend(invalid)
            tier_calls = run.calls[first_call:]
            provenance = ItemProvenance(
                provider=tier.provider, model=resp.model or tier.model, tier=tier.name,
                prompt_version=run.prompt_version, attempts=len(run.calls), repairs=repairs,
                cost_usd=sum(c.cost_usd for c in tier_calls),
                tokens_in=sum(c.tokens_in for c in tier_calls), tokens_out=sum(c.tokens_out for c in tier_calls),
            )
            return [(item, provenance, warnings) for item, warnings in valid]

    def _validate(
        self, raw_items: list[Any], req: BatchRequest
    ) -> tuple[list[tuple[dict[str, Any], tuple[str, ...]]], list[tuple[dict[str, Any] | None, str]]]:
        skills = {s.get("id"): s for s in req.skills}
        allowed = set(req.types) if req.types else set(QUESTION_TYPES)
        valid: list[tuple[dict[str, Any], tuple[str, ...]]] = []
        invalid: list[tuple[dict[str, Any] | None, str]] = []
        for item in raw_items:
            if not isinstance(item, dict):
                invalid.append((None, f"item: expected a JSON object, got {json.dumps(item)[:80]}"))
                continue
            if len(valid) >= req.count:
                invalid.append((item, "items: more items than the batch asked for"))
                continue
            skill = skills.get(item.get("skill"))
            if skill is None:
                invalid.append((item, f"skill: {item.get('skill')!r} is not one of the batch's skills"))
                continue
            if item.get("type") not in allowed:
                invalid.append((item, f"type: {item.get('type')!r} was not asked for"))
                continue
            verdict = validate_item(item, skill=skill, level=req.level)
            if verdict.valid:
                valid.append((item, verdict.warnings))
            else:
                invalid.append((item, "; ".join(verdict.errors)))
        return valid, invalid

    async def _call(self, tier: Tier, creq: CompletionRequest, run: _Run) -> CompletionResponse:
        """One logical call on a tier: retried by tenacity, guarded by breaker, rate limit and budget."""
        req = run.req
        await self._check_cancel(tier, run)
        try:
            provider = self.provider(tier)
        except Exception as exc:
            run.fail(tier, "config_error", f"{type(exc).__name__}: {exc}")
            raise _Escalate("config_error") from None
        if not tier.paid:
            started = time.perf_counter()
            try:
                resp = await provider.complete(creq)
            except Exception as exc:
                run.fail(tier, "offline_error", f"{type(exc).__name__}: {exc}")
                raise _Escalate("offline_error") from None
            run.call(tier, 1, "ok", resp, 0, time.perf_counter() - started)
            return resp
        prompt_bytes = len(creq.system.encode()) + sum(len(m["content"].encode()) for m in creq.messages) \
            + len(json.dumps(creq.schema).encode())
        worst = worst_case_micro(prompt_bytes, creq.max_tokens, tier.price_in, tier.price_out)

        async def attempt(n: int) -> CompletionResponse:
            if n > 1:
                await self._check_cancel(tier, run)
            call_timeout = self.settings.call_timeout
            remaining = None if req.deadline is None else req.deadline - time.time()
            if remaining is not None and remaining <= 0:
                raise TierSkipped("deadline", "the job's deadline has passed")
            with self.breakers.slot(tier.provider, tier.model):  # an open breaker skips the tier at once
                ticket = await self.rates.acquire(
                    tier.provider, tier.model, rpm=tier.rpm, tpm=tier.tpm,
                    tokens=prompt_bytes // 4 + creq.max_tokens, deadline=req.deadline,
                    max_wait=self.settings.rate_limit_max_wait_s,
                )
                reservation = await self.budget.reserve(req.job_id, worst, limit_usd=req.budget_usd)
                remaining = None if req.deadline is None else req.deadline - time.time()
                capped = remaining is not None and remaining < call_timeout
                timeout = max(0.05, min(call_timeout, remaining)) if remaining is not None else call_timeout
                started = time.perf_counter()
                try:
                    resp = await self.breakers.call(
                        tier.provider, tier.model, lambda: provider.complete(creq), timeout=timeout, capped=capped
                    )
                except asyncio.CancelledError:
                    await reservation.settle(0)
                    raise
                except Exception as exc:  # an SDK surprise is a recorded failure, never a crash
                    await reservation.settle(0)
                    await self.rates.adjust(ticket, 0)
                    if isinstance(exc, DeadlineReached):
                        exc = TierSkipped("deadline", str(exc))
                    elif not isinstance(exc, ProviderError):
                        exc = RequestRejected(f"unexpected {type(exc).__name__}: {exc}")
                    run.call(tier, n, exc.kind, None, 0, time.perf_counter() - started)
                    raise exc from None
            cost = cost_micro(resp.tokens_in, resp.tokens_out, tier.price_in, tier.price_out)
            await reservation.settle(cost)
            await self.rates.adjust(ticket, resp.tokens_in + resp.tokens_out)
            run.call(tier, n, "ok", resp, cost, resp.latency_s)
            return resp

        def on_retry(exc: BaseException, wait: float) -> None:
            if isinstance(exc, ProviderError):
                run.fail(tier, exc.kind, f"{exc.message} (retrying in {wait:.2f}s)")

        try:
            return await retry_call(attempt, policy=self.policy, deadline=req.deadline, on_retry=on_retry)
        except ProviderError as exc:
            run.fail(tier, exc.kind, exc.message)
            raise _Escalate(exc.kind, paid_done=exc.kind == "deadline") from None
        except BudgetExceeded as exc:
            run.fail(tier, "budget_exceeded", str(exc))
            raise _Escalate("budget_exceeded", paid_done=True) from None
        except RateLimitExceeded as exc:
            run.fail(tier, "rate_limit_wait", str(exc))
            raise _Escalate("rate_limit_wait") from None


    async def _check_cancel(self, tier: Tier, run: _Run) -> None:
        if await self._redis.exists(constants.job_cancel_key(run.req.job_id)):
            run.fail(tier, "cancelled", "the job was cancelled")
            raise _Escalate("cancelled", stop=True)


def _items_of(resp: CompletionResponse) -> list[Any]:
    data = resp.data
    if data is None:
        try:
            data = json.loads(resp.text)
        except (TypeError, ValueError):
            return []
    items = data.get("items") if isinstance(data, dict) else None
    return items if isinstance(items, list) else []
