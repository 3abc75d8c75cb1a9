"""The one settings object, read from the environment (and `.env`), through `get_settings()`.

Standard variable names are honoured where they exist (`DATABASE_URL`, `REDIS_URL`,
`OPENAI_API_KEY`, `OPENAI_BASE_URL`, `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`, AWS's own);
everything else is `LESSONLOOP_<GROUP>_<FIELD>` or, for the top-level ones, `LESSONLOOP_<FIELD>`.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_COMMON = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(**_COMMON, env_prefix="LESSONLOOP_DB_")

    url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "LESSONLOOP_DB_URL"),
        description="PostgreSQL (with pgvector) URL; unset = start the embedded server.",
    )
    pool_min: int = Field(default=2, description="Connections the pool keeps open.")
    pool_max: int = Field(default=20, description="Most connections the pool opens.")
    connect_timeout: float = Field(
        default=1.0, gt=0,
        description="Seconds an API request waits for a pooled connection before it is answered 503 with "
                    "Retry-After: with PostgreSQL down, a learner's answer, cold lesson start or completion is "
                    "refused after this long (a warm start needs no connection). A healthy pool lends a "
                    "connection in microseconds; a wait this long means the server is away or the pool is "
                    "exhausted, and waiting longer only queues requests behind it.")
    worker_connect_timeout: float = Field(
        default=5.0, gt=0,
        description="Seconds a worker (and a CLI tool) waits for a pooled connection before the job fails "
                    "(arq retries it): background work waits out a burst — factory batches staging one skill "
                    "in turn hold a connection each — rather than fail a batch whose LLM calls are paid for.")
    reconnect_max_s: float = Field(
        default=1.0, gt=0,
        description="Longest pause between the pool's attempts to reconnect to a server that went away, so "
                    "requests are served again within about this long once it is back. psycopg_pool's own "
                    "backoff doubles from 1 s without a ceiling (after a 16 s outage the pool stayed away 13 s "
                    "longer); each failed attempt logs one warning.")
    plan_cache_mode: Literal["auto", "force_generic_plan", "force_custom_plan"] = Field(
        default="force_generic_plan",
        description="PostgreSQL `plan_cache_mode` of pooled connections. psycopg prepares a query from its "
                    "5th run on a connection; a generic plan is then reused instead of planned per run (the "
                    "cold-path query: 0.6 ms instead of 0.9). Every repeated query here is an index probe "
                    "whose plan does not depend on the values.")


class RedisSettings(BaseSettings):
    model_config = SettingsConfigDict(**_COMMON, env_prefix="LESSONLOOP_REDIS_")

    url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "LESSONLOOP_REDIS_URL"),
        description="Playlist store (may be Redis Cluster); unset = start the embedded server.",
    )
    queue_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("LESSONLOOP_QUEUE_REDIS_URL", "LESSONLOOP_REDIS_QUEUE_URL"),
        description="Job queues and shared breaker state (single, non-cluster Redis); unset = `url`.",
    )
    socket_timeout: float = Field(default=2.0, description="Seconds before a Redis command times out.")
    cluster: bool = Field(
        default=False,
        description="The playlist store is a Redis Cluster (ElastiCache cluster mode); `url` is a seed node.")


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(**_COMMON, env_prefix="LESSONLOOP_SERVING_")

    lesson_size: int = Field(default=5, description="Items per lesson.")
    playlist_depth: int = Field(default=3, description="Lessons the curator keeps queued per learner.")
    refill_below: int = Field(default=1, description="Refill when fewer lessons than this remain queued.")
    max_answer_chars: int = Field(default=500, description="Longest answer accepted.")
    max_body_bytes: int = Field(default=64 * 1024, description="Largest request body accepted.")
    rate_per_learner: float = Field(
        default=20.0, description="Requests/s one token subject may make per API process (burst 2×); 0 = off.")
    rate_per_ip: float = Field(
        default=1000.0, description="Requests/s one client address may make per API process (burst 2×); 0 = off.")
    forwarded_allow_ips: str = Field(
        default="127.0.0.1,::1",
        description="Proxies trusted to say who the client is: comma-separated addresses or networks (CIDR), or "
                    "`*`. From these peers uvicorn takes the client address from X-Forwarded-For (the rightmost "
                    "entry that is not itself a trusted proxy), so per-address limits and logs see the client, not "
                    "the load balancer; from any other peer the header is ignored. Production: the VPC's range "
                    "(the load balancer's nodes). Default: uvicorn's, the local host.")
    server_timing_cpu_wait: bool = Field(
        default=False,
        description="Add `cpuwait;dur=<ms>` to the lesson start's Server-Timing: how long the API process was "
                    "runnable but waiting for a CPU during the request (Linux run-queue time). A diagnostic for "
                    "benchmarks on shared machines; costs two small /proc reads per lesson start.")


class CuratorSettings(BaseSettings):
    model_config = SettingsConfigDict(**_COMMON, env_prefix="LESSONLOOP_CURATOR_")

    target_low: float = Field(default=0.70, description="Lowest predicted success aimed at per item.")
    target_high: float = Field(default=0.85, description="Highest predicted success aimed at per item.")
    refill_coalesce_ms: int = Field(default=100, description="Refill triggers within this window compute once.")
    model_params: str | None = Field(default=None, description="Path of fitted learner-model params.")
    index_refresh_s: float = Field(default=300.0, description="Seconds between reloads of a course's bank index.")
    population_refresh_s: float = Field(
        default=300.0, description="Seconds a course's skill populations are used before a reload "
        "(curator/populations.py); in between, each process adds the answers it records itself. A reload "
        "takes the copy shared in Redis; once that is this old, one process recomputes it (an aggregate over "
        "every item state of the course in PostgreSQL: measured 1.5 s per 100,000 questions).")
    batch_max: int = Field(default=500, description="Most learners one batch refill plans at once.")
    batch_window_ms: float = Field(
        default=5.0, description="Single refill triggers arriving within this window are planned as one batch.")
    policy: str = Field(
        default="adaptive",
        description="Item selection: 'adaptive' (the planner); 'random' and 'fixed' are the baselines of "
                    "`lessonloop model simulate` (random unseen questions; curriculum order).")


class FactorySettings(BaseSettings):
    model_config = SettingsConfigDict(**_COMMON, env_prefix="LESSONLOOP_FACTORY_")

    batch_size: int = Field(default=10, description="Items asked for per LLM call.")
    batch_timeout_s: int = Field(default=180, description="A batch running longer is retried by arq.")
    ingest_at: str = Field(default="03:00", description="Daily ingestion time (HH:MM, UTC) of the cron job.")
    max_job_count: int = Field(default=1000, description="Most items one generation job may request.")
    max_topic_chars: int = Field(default=200, description="Longest topic a designer may type.")
    concurrency: int = Field(
        default=32,
        description="Batches one factory worker runs at once (arq max_jobs); ~20 keep 6,000 items/min flowing "
                    "at 1.5 s per call (docs/factory.md, Measured).",
    )
    batch_lease_s: float = Field(
        default=30.0,
        description="A running batch's lease: its worker renews it every third of this; a batch not renewed "
                    "for this long has lost its worker and is run again (the job resumes where it left off).",
    )
    call_timeout: float = Field(default=4.0, description="Seconds before an LLM call counts as failed.")
    near_duplicate_threshold: float = Field(
        default=0.92, description="Cosine similarity at or above which an item is a near duplicate."
    )
    embedding: str = Field(
        default="hashing", description="Embedding model: 'hashing' (built in), 'minilm' (local), 'openai'."
    )
    openai_api_key: str | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    anthropic_api_key: str | None = Field(default=None, validation_alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(default=None, validation_alias="ANTHROPIC_BASE_URL")

    # --- routing (factory/router.py; docs/factory.md) ---
    tiers: list[dict[str, object]] | None = Field(
        default=None,
        description=(
            "Model tiers as JSON, in fallback order: [{name, provider ('openai'|'anthropic'|'offline'), "
            "model, base_url?, api_key_env?, price_in?, price_out? (USD per 1M tokens; default from "
            "`prices`), max_complexity? (0-1; the tier only takes batches at or below it), rpm?, tpm?}]. "
            "Unset = derived from the API keys present; no key = the offline tier only."
        ),
    )
    openai_model: str = Field(default="gpt-4.1", description="Strong OpenAI model of the derived tiers.")
    openai_small_model: str = Field(default="gpt-4.1-mini", description="Cheap OpenAI model of the derived tiers.")
    anthropic_model: str = Field(default="claude-sonnet-4-5", description="Anthropic model of the derived tiers.")
    anthropic_small_model: str = Field(
        default="claude-haiku-4-5", description="Cheap Anthropic model of the derived tiers (used without OpenAI)."
    )
    prices: dict[str, list[float]] = Field(
        default_factory=lambda: {
            "gpt-4.1": [2.00, 8.00],
            "gpt-4.1-mini": [0.40, 1.60],
            "claude-sonnet-4-5": [3.00, 15.00],
            "claude-haiku-4-5": [1.00, 5.00],
        },
        description="USD per 1M tokens [input, output] by model, for tiers that give no price; check your contract.",
    )
    simple_max_complexity: float = Field(
        default=0.4, description="Derived tiers send batches at or below this complexity to the cheap model."
    )
    max_output_tokens: int = Field(default=4096, description="max_tokens of one generation call.")
    # --- resilience (factory/resilience.py) ---
    retry_attempts: int = Field(default=3, description="HTTP attempts per call on one tier (tenacity owns them).")
    retry_initial_s: float = Field(default=0.5, description="First exponential backoff wait.")
    retry_max_s: float = Field(default=8.0, description="Longest exponential backoff wait.")
    retry_jitter_s: float = Field(default=0.5, description="Random jitter added to each backoff wait.")
    max_retry_after_s: float = Field(
        default=30.0, description="A Retry-After longer than this escalates to the next tier instead of waiting."
    )
    repair_attempts: int = Field(
        default=1, description="Repair requests per tier after a malformed, refused or truncated reply."
    )
    breaker_fail_max: int = Field(default=5, description="Consecutive failures (or slow calls) that open a breaker.")
    breaker_reset_s: float = Field(default=30.0, description="Seconds an open breaker waits before one probe.")
    # --- budgets and rate limits (factory/budget.py) ---
    rate_window_s: int = Field(default=60, description="Length of the shared rate-limit window (rpm/tpm).")
    rate_limit_max_wait_s: float = Field(
        default=65.0, description="Longest wait for a rate-limit window to turn before escalating."
    )
    # --- review policy (factory/risk.py) ---
    auto_accept_tiers: list[str] = Field(
        default_factory=list, description="Tiers whose low-risk items are auto-accepted; empty = review everything."
    )
    auto_accept_max_risk: float = Field(default=0.0, description="Highest item risk the auto-accept policy accepts.")


DEV_TOKEN_SECRET = "lessonloop-dev-secret-change-me-0123456789"
"""The default HS256 secret. It is public (it is in this file), so anyone can mint any role with it:
`lessonloop serve`, `up` and `token` accept it only on the embedded local setup
(shared.auth.dev_secret_refusal)."""


def loopback_host(host: str | None) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(**_COMMON, env_prefix="LESSONLOOP_")

    token_secret: str = Field(
        default=DEV_TOKEN_SECRET, min_length=32,
        description="HS256 signing secret of bearer tokens, at least 32 characters. The default is public and "
                    "only accepted on the embedded local setup: with DATABASE_URL/REDIS_URL pointing elsewhere, "
                    "or an API listening beyond loopback, `lessonloop serve` refuses to start without one.",
    )
    token_ttl_s: int = Field(default=24 * 3600, description="Lifetime of tokens minted by `lessonloop token`.")
    token_issuer: str = Field(default="lessonloop", description="`iss` claim minted into and required of HS256 tokens.")
    token_audience: str | None = Field(
        default=None, description="`aud` claim minted into and required of HS256 tokens, if any.")
    jwks_url: str | None = Field(
        default=None,
        description="JWKS URL of an external identity provider: RS256 tokens are verified with its keys, which "
                    "the API fetches at start-up and refreshes in the background (never on a request). https; "
                    "http only to a loopback host.")
    jwks_issuer: str | None = Field(
        default=None, description="`iss` claim the identity provider's tokens must carry; required with `jwks_url`.")
    jwks_audience: str | None = Field(
        default=None,
        description="`aud` claim the identity provider's tokens must carry: the audience it issues this API's "
                    "tokens for (often its client id); required with `jwks_url`.")
    jwks_role_claim: str = Field(
        default="role",
        description="Claim of the identity provider's tokens that carries the role: a string, or a list of "
                    "strings of which the most privileged known role wins (admin > designer > learner; other "
                    "values are ignored). A name with dots (`realm_access.roles`) walks nested objects when no "
                    "claim has that exact name. HS256 tokens always use `role`.")
    default_role: Literal["learner"] | None = Field(
        default=None,
        description="Role of a verified token whose role claim names no known role (or is missing). Unset: such "
                    "a token is refused with 403 naming the claim. `learner` suits an identity provider that "
                    "marks only staff.")
    jwks_refresh_s: float = Field(default=300.0, gt=0, description="Seconds between background JWKS refreshes.")
    jwks_retry_s: float = Field(
        default=10.0, gt=0,
        description="Least seconds between two JWKS fetches: how soon a signing key first seen in a token (an "
                    "unknown `kid`, answered 401 at once) is fetched, and the retry pace while the IdP is down.")
    jwks_timeout_s: float = Field(default=5.0, gt=0, description="Seconds one JWKS fetch may take.")

    @model_validator(mode="after")
    def _identity_provider(self) -> AuthSettings:
        if not self.jwks_url:
            return self
        url = urlsplit(self.jwks_url)
        if url.scheme != "https" and not (url.scheme == "http" and loopback_host(url.hostname)):
            raise ValueError("LESSONLOOP_JWKS_URL must be an https URL (http only to a loopback host)")
        if not self.jwks_issuer:
            raise ValueError("LESSONLOOP_JWKS_ISSUER must be set with LESSONLOOP_JWKS_URL: the `iss` of the "
                             "identity provider's tokens")
        if not self.jwks_audience:
            raise ValueError("LESSONLOOP_JWKS_AUDIENCE must be set with LESSONLOOP_JWKS_URL: the `aud` the "
                             "identity provider issues this API's tokens with")
        return self


DEV_PORTAL_SECRET = "lessonloop-dev-portal-secret-change-me"
"""The default portal session secret: public like DEV_TOKEN_SECRET, refused on the same terms."""


class PortalSettings(BaseSettings):
    model_config = SettingsConfigDict(**_COMMON, env_prefix="LESSONLOOP_PORTAL_")

    session_secret: str = Field(
        default=DEV_PORTAL_SECRET,
        description="Secret the portal's session cookie is encrypted with and CSRF tokens are signed with "
                    "(set it in production; changing it signs everyone out).",
    )
    secure_cookies: bool = Field(
        default=False, description="Mark the session and CSRF cookies Secure (set true when served over https)."
    )
    session_max_age_s: int = Field(default=12 * 3600, description="Lifetime of a portal sign-in.")
    login_max_attempts: int = Field(
        default=5, description="Wrong passwords allowed per user id and IP address within the window."
    )
    login_window_s: int = Field(default=15 * 60, description="Window of the wrong-password throttle, in seconds.")
    bulk_max_risk: float = Field(
        default=0.2, description="Highest risk an item may have to be accepted by a bulk accept."
    )
    bulk_max_items: int = Field(default=200, description="Most items one bulk accept may decide.")


class WorkerSettings(BaseSettings):
    """The worker processes (`lessonloop worker factory|curator`)."""

    model_config = SettingsConfigDict(**_COMMON, env_prefix="LESSONLOOP_WORKER_")

    factory_metrics_port: int = Field(
        default=9110, ge=0, le=65535,
        description="Port of a factory worker's Prometheus endpoint (`/metrics`); 0 = none.")
    curator_metrics_port: int = Field(
        default=9120, ge=0, le=65535,
        description="Port of a curator worker's Prometheus endpoint (`/metrics`); 0 = none.")
    metrics_port_span: int = Field(
        default=10, ge=1,
        description="A worker whose port is taken (another worker of its kind on the same host) serves on the "
                    "next free one of this many; with none free it runs without an endpoint (logged).")
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Address the workers' endpoint listens on ('0.0.0.0' in a container, for the scraper).")
    restart_max_pause_s: float = Field(
        default=15.0, gt=0,
        description="A worker that lost a store starts again in-process after 1 s, doubling up to this while "
                    "it keeps failing to start; a worker that had started begins again at 1 s.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(**_COMMON, env_prefix="LESSONLOOP_")

    data_dir: Path = Field(default=Path(".lessonloop"), description="Embedded servers' data folder.")
    progress_backend: str = Field(default="postgres", description="'postgres' or 'dynamodb'.")
    progress_table: str = Field(default="lessonloop-progress", description="DynamoDB progress table.")
    log_level: str = Field(default="INFO", description="Root log level.")

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    curator: CuratorSettings = Field(default_factory=CuratorSettings)
    factory: FactorySettings = Field(default_factory=FactorySettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    portal: PortalSettings = Field(default_factory=PortalSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)

    @property
    def embedded(self) -> bool:
        """True when either store is unset and the project starts its own servers."""
        return self.database.url is None or self.redis.url is None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
