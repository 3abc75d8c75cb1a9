"""Session fixtures: real PostgreSQL (pgvector) and real Redis from the project's embedded runtime,
started once per session in a temporary folder; every test starts from empty tables and an empty
Redis (truncation + FLUSHALL). Factories create what a test needs and the next test's cleanup
removes it."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from shared.db import migrate
from shared.runtime import EmbeddedServices, Endpoints, environ, pid_alive, use_endpoints
from shared.settings import get_settings

TABLES = ("users", "learner_seen", "learner_skill_state", "learner_course_state", "answer_events", "lessons",
          "review_decisions", "questions", "questions_staging", "generation_batches", "generation_jobs",
          "skills", "courses")


SESSION_PREFIX = "lessonloop-test-"
OWNER_FILE = "owner.pid"


def reap_orphaned_sessions() -> None:
    """Stop the servers of earlier test sessions that were killed before their teardown (their
    servers outlive them: the pid file records the session that owns the folder) and remove them."""
    for folder in Path(tempfile.gettempdir()).glob(SESSION_PREFIX + "*"):
        try:
            owner = int((folder / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # a session from before owner files, or one still being set up
        if not pid_alive(owner):
            EmbeddedServices(folder).stop()
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def services_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: its rotation of old base folders must never touch a live server's data.
    reap_orphaned_sessions()
    path = Path(tempfile.mkdtemp(prefix=SESSION_PREFIX))
    (path / OWNER_FILE).write_text(str(os.getpid()))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def embedded(services_dir: Path) -> Iterator[EmbeddedServices]:
    svc = EmbeddedServices(services_dir)
    svc.start()
    yield svc
    svc.stop()


TEST_TOKEN_SECRET = "test-token-secret-" + secrets.token_hex(24)
"""The suite's stores are given by URL, as a deployment's are, so it has a token secret (and a portal
session secret) of its own: `lessonloop serve` refuses the public defaults on external stores
(shared.auth.dev_secret_refusal)."""


@pytest.fixture(scope="session")
def stores(embedded: EmbeddedServices) -> Iterator[Endpoints]:
    eps = embedded.start()
    migrate.upgrade(eps.database_url)
    with environ({"LESSONLOOP_TOKEN_SECRET": TEST_TOKEN_SECRET,
                  "LESSONLOOP_PORTAL_SESSION_SECRET": "test-portal-secret-" + secrets.token_hex(24)}), \
            use_endpoints(eps):
        yield eps


def wipe(eps: Endpoints) -> None:
    with psycopg.connect(eps.database_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    client = redis.Redis.from_url(eps.redis_url)
    try:
        client.flushall()
    finally:
        client.close()


@pytest.fixture
def clean(stores: Endpoints) -> Endpoints:
    """Empty tables and an empty Redis for this test."""
    wipe(stores)
    get_settings.cache_clear()
    return stores


def load_curriculum_into(eps: Endpoints, data: dict[str, Any]) -> None:
    from shared.db import courses

    async def load() -> None:
        async with await psycopg.AsyncConnection.connect(eps.database_url) as conn:
            await courses.save_curriculum(conn, data)
            await conn.commit()

    asyncio.run(load())


@pytest.fixture
def curriculum(clean: Endpoints) -> dict[str, Any]:
    """The sample curriculum, loaded."""
    from factory.offline.curriculum_file import load_curriculum

    data = load_curriculum()
    load_curriculum_into(clean, data)
    return data
