"""Every Redis key pattern, queue name and TTL the project uses — nowhere else builds a key.

Keys touched together by one command or script share a hash tag (`{...}`) so they live in one
slot on Redis Cluster. Playlists are tagged by *learner bucket* (a stable hash of the learner id
into `PLAYLIST_BUCKETS` buckets), not by the learner id itself, so that each bucket can hold its
own copy of the retired-question set: the pop script then reads the playlist and the retired set
in one slot, in one round trip, on a cluster as on a single Redis.
"""

from __future__ import annotations

import zlib

# --- queues (arq; on the queue Redis) -------------------------------------------------------
GENERATION_QUEUE = "arq:generation_jobs"
"""Generation batches; consumed by factory workers."""
REFILL_QUEUE = "arq:refill_check"
"""Playlist refills; consumed by curator workers (lower priority than anything user-facing)."""
INGESTION_QUEUE = "arq:ingestion"
"""Ingestion runs (cron or on demand); consumed by factory workers."""

# --- playlists (on the playlist Redis, possibly a cluster) -----------------------------------
PLAYLIST_BUCKETS = 1024
"""Hash-tag buckets for playlists; each holds a copy of the retired set (retiring writes all)."""
PLAYLIST_TTL_S = 7 * 24 * 3600
"""A learner's precomputed lessons expire after a week unread."""
RETIRED_TTL_S = PLAYLIST_TTL_S + 24 * 3600
"""Retired ids need filtering only while a playlist computed before retirement can exist."""


def learner_bucket(learner_id: str) -> int:
    """Stable bucket of a learner (crc32: the same in every process and language)."""
    return zlib.crc32(learner_id.encode()) % PLAYLIST_BUCKETS


def playlist_key(learner_id: str, course_id: str) -> str:
    """Redis list of precomputed lessons, oldest first (LPOP serves the next)."""
    return _playlist_key(learner_bucket(learner_id), learner_id, course_id)


def _playlist_key(bucket: int, learner_id: str, course_id: str) -> str:
    return f"ll:pl:{{b{bucket}}}:{learner_id}:{course_id}"


def retired_key(bucket: int) -> str:
    """Sorted set (question id -> retirement time) copied into every bucket's slot."""
    return f"ll:retired:{{b{bucket}}}"


def pop_keys(learner_id: str, course_id: str) -> tuple[str, str]:
    """The warm pop's two keys (playlist, the bucket's retired set), hashing the learner once."""
    bucket = learner_bucket(learner_id)
    return _playlist_key(bucket, learner_id, course_id), retired_key(bucket)


def erased_key(learner_id: str) -> str:
    """Tombstone set when a learner is erased: a refill already under way must not write their playlist
    again. Same hash slot as the learner's playlists, so the playlist write script can check it."""
    return f"ll:erased:{{b{learner_bucket(learner_id)}}}:{learner_id}"


ERASED_TTL_S = 120
"""Longer than any refill job can run (its arq timeout) plus the trigger coalescing window."""


def reset_key(learner_id: str, course_id: str) -> str:
    """A random mark set when the learner resets the course: a refill reads it before it reads the
    learner's model, and the playlist write script refuses to write if it changed meanwhile (the plan
    came from the model before the reset). Same hash slot as the learner's playlists."""
    return f"ll:reset:{{b{learner_bucket(learner_id)}}}:{learner_id}:{course_id}"


RESET_TTL_S = ERASED_TTL_S
"""Like the erasure tombstone: longer than a refill can run, so a refill that read no mark cannot
outlive one set after it started."""

# --- skill populations (on the playlist Redis; curator/populations.py) --------------------------
def populations_key(course_id: str) -> str:
    """JSON {"at": epoch seconds, "skills": {skill: population state}}: the course's populations as
    last computed by any process, so that each process need not aggregate the whole bank itself."""
    return f"ll:pop:{{{course_id}}}"


def populations_lock_key(course_id: str) -> str:
    """Held (SET NX with a TTL) by the one process recomputing a stale shared copy."""
    return f"ll:pop:{{{course_id}}}:computing"


POPULATIONS_LOCK_TTL_S = 120
"""Longer than an aggregate takes (measured 1.5 s per 100,000 questions)."""


# --- refill de-duplication --------------------------------------------------------------------
def refill_job_id(learner_id: str, course_id: str) -> str:
    """arq job id: a second trigger while one is queued is dropped by arq itself."""
    return f"refill:{learner_id}:{course_id}"


ARQ_JOB_KEY_PREFIX = "arq:job:"
"""arq's own key of a queued job (`arq.constants.job_key_prefix`); erasure deletes queued refills."""


# --- factory: shared breaker state, budgets, rate limits (on the queue Redis) -----------------
BREAKER_NAMESPACE = "ll:breaker"
"""Prefix of pybreaker's CircuitRedisStorage keys; one breaker per provider and model."""


def breaker_name(provider: str, model: str) -> str:
    return f"{provider}:{model}"


def breaker_storage_namespace(provider: str, model: str) -> str:
    """Namespace handed to pybreaker's CircuitRedisStorage; it appends `:pybreaker:<field>`."""
    return f"{BREAKER_NAMESPACE}:{breaker_name(provider, model)}"


def breaker_probe_key(provider: str, model: str) -> str:
    """Held (SET NX PX) by the one worker sending the half-open probe after the reset timeout."""
    return f"{BREAKER_NAMESPACE}:probe:{breaker_name(provider, model)}"


def job_budget_key(job_id: str) -> str:
    """Remaining budget of a job in micro-dollars, reserved atomically before each call."""
    return f"ll:budget:{job_id}"


def rate_limit_key(provider: str, model: str, window: int) -> str:
    """Requests/tokens used by all workers in one rate-limit window of a provider and model."""
    return f"ll:rate:{provider}:{model}:{window}"


def job_cancel_key(job_id: str) -> str:
    """Set when a job is cancelled; batches check it before each call."""
    return f"ll:cancel:{job_id}"


JOB_BUDGET_TTL_S = 7 * 24 * 3600
"""Budget counters outlive any job deadline."""

# --- serving ------------------------------------------------------------------------------------
LOGIN_ATTEMPTS_PREFIX = "ll:login"
"""Failed-login counters for throttling (portal)."""


def login_attempts_key(user_id: str, ip: str) -> str:
    """Counter of wrong passwords for one user id from one IP address (INCR; expires with the window)."""
    return f"{LOGIN_ATTEMPTS_PREFIX}:{user_id.lower()}:{ip}"
