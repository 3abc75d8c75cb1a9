"""What every provider speaks: the request and reply of one call, the batch dataclasses, the errors.

A provider makes exactly one HTTP call per ``complete`` and never retries (its SDK runs with
``max_retries=0``): retries, breakers, budgets and fallbacks belong to :mod:`factory.resilience`
and :mod:`factory.router`. A provider returns whatever the model said — truncated, refused or
malformed included — as a :class:`CompletionResponse`, because even a useless reply consumed
tokens that must be paid for; :func:`check_reply` then turns it into items or a :class:`ReplyError`.

Error taxonomy::

    ProviderError                   kind: a short label recorded in BatchResult.failures
    ├── TransportError              HTTP/transport trouble: consumes the retry budget (tenacity)
    │   ├── RateLimited             429 (carries Retry-After)
    │   ├── Overloaded              529 / 503 (carries Retry-After when sent)
    │   ├── ServerError             other 5xx
    │   ├── CallTimeout             slower than call_timeout (counts for the breaker)
    │   └── ConnectionFailed        connection refused/reset
    ├── RequestRejected             other 4xx (bad key, bad request): escalate, never retried
    ├── ReplyError                  the reply is unusable: consumes the repair budget, then escalate
    │   ├── MalformedReply          not JSON / no tool call
    │   ├── SchemaViolation         JSON that violates the batch schema, or no valid item at all
    │   ├── Refusal                 OpenAI message.refusal / Anthropic stop_reason "refusal"
    │   └── Truncated               finish_reason "length" / stop_reason "max_tokens"
    └── TierSkipped                 not called at all: breaker open, deadline, rate limit, budget
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from jsonschema import Draft202012Validator

# --- the batch contract used by the job runner ---------------------------------------------------


@dataclass
class BatchRequest:
    """One batch of a generation job, as the job runner hands it to :class:`factory.router.Router`."""

    job_id: str
    batch_no: int
    course: dict[str, Any]
    skills: list[dict[str, Any]]
    level: str | None
    topic: str | None
    types: list[str]
    count: int
    language: str
    deadline: float | None  # unix time
    budget_usd: float | None


@dataclass
class ItemProvenance:
    """Where an item came from. Cost and tokens are those of the batch call(s) on the tier that
    produced it (shared by every item of the batch — sum ``BatchResult.cost_usd``, not these)."""

    provider: str
    model: str
    tier: str
    prompt_version: str
    attempts: int
    repairs: int
    cost_usd: float
    tokens_in: int
    tokens_out: int


@dataclass
class CallRecord:
    """One HTTP call (or offline generation), successful or not."""

    tier: str
    provider: str
    model: str
    prompt_version: str
    attempt: int
    outcome: str  # "ok" or a failure kind
    latency_s: float
    tokens_in: int
    tokens_out: int
    cost_usd: float


@dataclass
class BatchResult:
    """Valid items with provenance and warnings, invalid items with reasons, and every failure."""

    items: list[tuple[dict[str, Any], ItemProvenance, tuple[str, ...]]]
    invalid: list[tuple[dict[str, Any] | None, str]]
    failures: list[dict[str, Any]]  # {tier, provider, model, kind, message, at}
    cost_usd: float
    calls: list[CallRecord] = field(default_factory=list)
    complexity: float = 0.0
    tier: str | None = None  # the tier that produced the items


# --- one call ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchSpec:
    """What a batch asks for, machine-readable: the offline tier (and the fake server) read it."""

    skills: list[dict[str, Any]]
    types: list[str]
    count: int
    level: str | None
    language: str
    seed: str


@dataclass
class CompletionRequest:
    model: str
    system: str
    messages: list[dict[str, str]]  # [{"role": "user"|"assistant", "content": ...}]
    schema: dict[str, Any]
    schema_name: str
    max_tokens: int
    timeout: float  # seconds; the SDK's own timeout (asyncio.timeout in resilience is the authority)
    spec: BatchSpec


@dataclass
class CompletionResponse:
    text: str  # the reply as text (a tool call's input is re-serialised)
    data: Any | None  # the parsed reply when the provider returned structured data, else None
    finish: str  # "stop", "length" or "refusal"
    refusal: str | None
    tokens_in: int
    tokens_out: int
    latency_s: float
    model: str


class Provider(Protocol):
    """One model endpoint. ``complete`` makes one call; it raises only :class:`TransportError` or
    :class:`RequestRejected`, and returns unusable replies for :func:`check_reply` to judge."""

    name: str

    async def complete(self, req: CompletionRequest) -> CompletionResponse: ...

    async def aclose(self) -> None: ...


# --- errors -------------------------------------------------------------------------------------


class ProviderError(Exception):
    kind = "provider_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransportError(ProviderError):
    kind = "transport"

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class RateLimited(TransportError):
    kind = "rate_limited"


class Overloaded(TransportError):
    kind = "overloaded"


class ServerError(TransportError):
    kind = "server_error"


class CallTimeout(TransportError):
    kind = "timeout"


class ConnectionFailed(TransportError):
    kind = "connection"


class RequestRejected(ProviderError):
    kind = "http_error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ReplyError(ProviderError):
    kind = "reply"

    def __init__(self, message: str, *, raw: str = "", errors: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.raw = raw
        self.errors = errors or (message,)


class MalformedReply(ReplyError):
    kind = "malformed"


class SchemaViolation(ReplyError):
    kind = "schema"


class Refusal(ReplyError):
    kind = "refusal"


class Truncated(ReplyError):
    kind = "truncated"


class TierSkipped(ProviderError):
    """The tier was not (or no longer) called; ``kind`` says why."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def status_error(status: int, message: str, retry_after: float | None) -> ProviderError:
    """Map an HTTP status to the taxonomy (shared by both SDK adapters)."""
    if status == 429:
        return RateLimited(message, status=status, retry_after=retry_after)
    if status in (503, 529):
        return Overloaded(message, status=status, retry_after=retry_after)
    if status >= 500 or status in (408, 409):
        return ServerError(message, status=status, retry_after=retry_after)
    return RequestRejected(message, status=status)


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date), if sent."""
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def check_reply(resp: CompletionResponse, schema: dict[str, Any]) -> list[Any]:
    """Return the reply's raw items, or raise the :class:`ReplyError` that describes it."""
    if resp.finish == "refusal":
        raise Refusal(f"the model refused: {resp.refusal or '(no reason given)'}", raw=resp.text)
    if resp.finish == "length":
        raise Truncated("the reply was cut off at max_tokens", raw=resp.text)
    data = resp.data
    if data is None:
        try:
            data = json.loads(resp.text)
        except (TypeError, ValueError) as exc:
            raise MalformedReply(f"the reply is not JSON: {exc}", raw=resp.text) from None
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or 'reply'}: {e.message}"
        for e in Draft202012Validator(_batch_envelope(schema)).iter_errors(data)
    ]
    if errors:
        shown = tuple(errors[:10])
        raise SchemaViolation(f"the reply violates the schema: {'; '.join(shown)}", raw=resp.text, errors=shown)
    items: list[Any] = data["items"]
    return items


def _batch_envelope(schema: dict[str, Any]) -> dict[str, Any]:
    """The batch schema with the items left open: each item is judged alone by validate_item, so
    one bad item is recorded as invalid instead of failing the whole batch."""
    envelope = dict(schema)
    props = dict(envelope.get("properties", {}))
    props["items"] = {"type": "array", "items": {"type": "object"}}
    envelope["properties"] = props
    return envelope
