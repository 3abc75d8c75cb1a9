"""Generation jobs end to end: the HTTP API, the real factory worker (arq, in burst mode; a real
subprocess for the kill test), the fake provider server for the LLM tiers, real PostgreSQL and Redis.
Status and counts, cancel, partial and failed jobs, the tier fall 1 → 2 → 3, budgets, deadlines,
cost by provider, and a worker killed mid-job."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from arq.constants import health_check_key_suffix

from factory.offline.curriculum_file import load_curriculum
from loadtests.factory_bench import Worker, verify_job
from loadtests.fake_llm import FakeLLMServer
from shared import constants
from shared.db import courses
from shared.runtime import Endpoints
from tests.helpers import api_client, run_worker, staff

COURSE = "spanish-a1-b1"


@pytest.fixture
def tiers(fake: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> FakeLLMServer:
    """Tier 1 `strong` (OpenAI protocol), tier 2 `backup` (Anthropic protocol), both on the fake; fast retries."""
    monkeypatch.setenv("LESSONLOOP_FACTORY_TIERS", json.dumps([
        {"name": "strong", "provider": "openai", "model": "fake-strong", "base_url": fake.base_url,
         "price_in": 2.0, "price_out": 8.0},
        {"name": "backup", "provider": "anthropic", "model": "fake-backup", "base_url": fake.url,
         "price_in": 3.0, "price_out": 15.0},
    ]))
    for name, value in {"OPENAI_API_KEY": "test", "ANTHROPIC_API_KEY": "test",
                        "LESSONLOOP_FACTORY_RETRY_INITIAL_S": "0.01", "LESSONLOOP_FACTORY_RETRY_MAX_S": "0.05",
                        "LESSONLOOP_FACTORY_RETRY_JITTER_S": "0.01"}.items():
        monkeypatch.setenv(name, value)
    return fake


def post(client: Any, **spec: Any) -> dict[str, Any]:
    r = client.post("/v1/generation-jobs", json={"course": COURSE, **spec}, headers=staff())
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/v1/generation-jobs/{r.json()['id']}"
    job: dict[str, Any] = r.json()
    return job


def get(client: Any, job_id: str) -> dict[str, Any]:
    r = client.get(f"/v1/generation-jobs/{job_id}", headers=staff())
    assert r.status_code == 200, r.text
    job: dict[str, Any] = r.json()
    return job


def staged_tiers(client: Any, job_id: str) -> set[str]:
    items = client.get("/v1/staging", params={"job": job_id, "limit": 500}, headers=staff()).json()
    return {i["provenance"].get("tier") for i in items}


def assert_counts_add_up(job: dict[str, Any]) -> None:
    c = job["counts"]
    assert c["staged"] + c["duplicates"] + c["invalid"] == c["generated"]
    detail = job["batches"]["detail"]
    assert sum(b["count"] for b in detail) == c["requested"]
    for key in ("generated", "invalid", "duplicates", "staged"):
        assert sum(b[key] for b in detail) == c[key]
    assert job["cost_usd"] == pytest.approx(sum(b["cost_usd"] for b in detail), abs=1e-6)


def test_a_job_goes_from_queued_to_succeeded_with_counts_and_cost_by_provider(
        curriculum: dict[str, Any], tiers: FakeLLMServer) -> None:
    with api_client() as client:
        job = post(client, skills=["greetings", "numbers"], count=25)
        assert job["status"] == "queued" and job["counts"]["requested"] == 25
        assert job["batches"] == {"total": 4, "done": 0}
        run_worker("factory")
        job = get(client, job["id"])
        assert job["status"] == "succeeded" and job["finished_at"] is not None
        assert job["counts"]["generated"] == 25 and job["counts"]["staged"] > 0
        assert_counts_add_up(job)
        [by_model] = job["cost_by_model"]
        assert (by_model["provider"], by_model["model"], by_model["tier"]) == ("openai", "fake-strong", "strong")
        assert by_model["calls"] == 4 and by_model["tokens_in"] > 0 and by_model["tokens_out"] > 0
        assert by_model["cost_usd"] == pytest.approx(job["cost_usd"], abs=1e-6) and job["cost_usd"] > 0
        assert staged_tiers(client, job["id"]) == {"strong"}


def test_the_tier_fall_one_two_three_through_the_worker(curriculum: dict[str, Any], tiers: FakeLLMServer) -> None:
    tiers.set_fault("server_error", model="fake-strong")
    with api_client() as client:
        # Tier 1 down: the backup provider serves, and its cost is recorded under its own name.
        job = get(client, post(client, skills=["greetings"], count=10)["id"])
        run_worker("factory")
        job = get(client, job["id"])
        assert job["status"] == "succeeded" and staged_tiers(client, job["id"]) == {"backup"}
        models = {(c["provider"], c["model"]): c for c in job["cost_by_model"]}
        assert models[("anthropic", "fake-backup")]["cost_usd"] > 0
        assert models[("openai", "fake-strong")]["cost_usd"] == 0  # failed calls cost nothing
        kinds = [(f["tier"], f["kind"]) for f in job["batches"]["detail"][0]["failures"]]
        assert ("strong", "server_error") in kinds
        # Tiers 1 and 2 down: the offline rules finish the job.
        tiers.set_fault("overloaded", model="fake-backup", retry_after=None)
        job = post(client, skills=["greetings"], count=10)
        run_worker("factory")
        job = get(client, job["id"])
        assert job["status"] == "succeeded" and job["counts"]["generated"] == 10
        assert staged_tiers(client, job["id"]) == {"offline"}
        failed_tiers = {f["tier"] for f in job["batches"]["detail"][0]["failures"]}
        assert {"strong", "backup"} <= failed_tiers


def test_partial_and_failed_jobs(curriculum: dict[str, Any], clean: Endpoints,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LESSONLOOP_FACTORY_TIERS", "[]")  # the offline rules only
    course = load_curriculum()["course"]
    unknown = {"id": "made-up-skill", "name": "Made up", "level": "A1", "description": "No material exists."}

    async def add_skill() -> None:
        async with await psycopg.AsyncConnection.connect(clean.database_url) as conn:
            await courses.save_curriculum(conn, {"course": course, "skills": [unknown]})
            await conn.commit()

    asyncio.run(add_skill())
    with api_client() as client:
        failed = post(client, skills=["made-up-skill"], count=10)
        partial = post(client, skills=["greetings", "made-up-skill"], count=20)
        run_worker("factory")
        failed, partial = get(client, failed["id"]), get(client, partial["id"])
        assert failed["status"] == "failed" and failed["counts"]["staged"] == 0
        assert failed["batches"]["detail"][0]["failures"], "a failed batch says why"
        assert partial["status"] == "partial" and partial["counts"]["staged"] > 0
        assert [b["status"] for b in partial["batches"]["detail"]] == ["done", "failed"]
        assert_counts_add_up(partial)


def test_cancel_stops_the_remaining_batches(curriculum: dict[str, Any], clean: Endpoints) -> None:
    with api_client() as client:
        job = post(client, skills=["greetings", "numbers"], count=40)
        r = client.post(f"/v1/generation-jobs/{job['id']}/cancel", headers=staff())
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        with redis.Redis.from_url(clean.queue_redis_url) as r_client:
            assert r_client.exists(constants.job_cancel_key(job["id"]))  # batches in flight stop calling
        run_worker("factory")
        job = get(client, job["id"])
        assert job["status"] == "cancelled" and job["counts"]["generated"] == 0
        assert {b["status"] for b in job["batches"]["detail"]} == {"cancelled"}
        assert client.get("/v1/staging", params={"job": job["id"]}, headers=staff()).json() == []
        again = client.post(f"/v1/generation-jobs/{job['id']}/cancel", headers=staff())
        assert again.status_code == 409 and "already finished" in again.json()["detail"]
        missing = client.post("/v1/generation-jobs/00000000-0000-0000-0000-000000000000/cancel", headers=staff())
        assert missing.status_code == 404


def test_the_budget_is_never_overrun_by_concurrent_batches(curriculum: dict[str, Any], tiers: FakeLLMServer) -> None:
    tiers.set_latency(0.3)  # calls overlap: all 12 batches run at once
    with api_client() as client:
        job = post(client, skills=["greetings", "numbers", "family"], count=120, budget_usd=0.12)
        run_worker("factory")
        job = get(client, job["id"])
    assert job["status"] == "succeeded" and job["counts"]["generated"] == 120
    assert 0 < job["cost_usd"] <= 0.12
    kinds = {f["kind"] for b in job["batches"]["detail"] for f in b["failures"]}
    assert "budget_exceeded" in kinds  # the rest fell to the free offline tier
    assert tiers.stats()["max_in_flight"] >= 2


def test_a_job_finishes_by_its_deadline_when_the_providers_are_slow(
        curriculum: dict[str, Any], tiers: FakeLLMServer) -> None:
    tiers.set_latency(6.0)  # longer than the deadline and than call_timeout
    with api_client() as client:
        job = post(client, skills=["greetings", "numbers"], count=30, deadline_s=2)
        run_worker("factory")
        job = get(client, job["id"])
        assert job["status"] == "succeeded" and job["counts"]["generated"] == 30
        assert staged_tiers(client, job["id"]) == {"offline"}
    took = (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["created_at"])).total_seconds()
    assert took < 2 + 1.5, f"the job took {took:.1f}s past a 2 s deadline"
    kinds = {f["kind"] for b in job["batches"]["detail"] for f in b["failures"]}
    assert "deadline" in kinds


def test_a_worker_killed_mid_job_is_resumed_with_zero_lost_and_zero_duplicated(
        curriculum: dict[str, Any], clean: Endpoints, fake: FakeLLMServer, tmp_path: Path) -> None:
    fake.set_latency(0.8)  # so the kill lands with batches in flight
    env = {"LESSONLOOP_FACTORY_BATCH_LEASE_S": "1.5", "LESSONLOOP_FACTORY_CONCURRENCY": "4"}
    first = Worker(clean, fake, tmp_path, name="first", **env)
    t0 = time.monotonic()
    try:
        first.wait_ready(clean.queue_redis_url)
        t_ready = time.monotonic()
        with api_client() as client:
            job_id = post(client, skills=["greetings", "numbers", "family", "days-time"], count=120)["id"]
            deadline = time.monotonic() + 30
            # kill when some batches are done AND some are claimed and in flight (their rerun is the point)
            while (job := get(client, job_id))["batches"]["done"] < 4 or running_batches(clean, job_id) < 1:
                assert time.monotonic() < deadline, job
                time.sleep(0.05)
    finally:
        first.kill()
    t_kill = time.monotonic()
    assert job["status"] == "running" and job["batches"]["done"] < job["batches"]["total"]
    with redis.Redis.from_url(clean.queue_redis_url) as r:
        r.delete(constants.GENERATION_QUEUE + health_check_key_suffix)
    second = Worker(clean, fake, tmp_path, name="second", **env)
    try:
        second.wait_ready(clean.queue_redis_url)
        with api_client() as client:
            deadline = time.monotonic() + 40
            while (job := get(client, job_id))["status"] == "running":
                assert time.monotonic() < deadline, diagnose(clean, job, second)
                time.sleep(0.1)
    finally:
        second.stop()
    print(f"ready {t_ready - t0:.1f}s, killed at {t_kill - t0:.1f}s, done at {time.monotonic() - t0:.1f}s")
    assert job["status"] == "succeeded"
    checks = verify_job(clean.database_url, job_id)
    assert checks["zero_lost"] and checks["zero_duplicated"], checks
    assert checks["batches_rerun"] >= 1 and checks["rows"] == checks["generated"] == 120


def running_batches(eps: Endpoints, job_id: str) -> int:
    with psycopg.connect(eps.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM generation_batches WHERE job_id = %s AND status = 'running'",
                           (job_id,)).fetchone()
    return int(row[0]) if row else 0


def diagnose(eps: Endpoints, job: dict[str, Any], worker: Worker) -> str:
    """What a stuck job looks like: its batches, the database's sessions, the worker's log."""
    with psycopg.connect(eps.database_url) as conn:
        sessions = conn.execute("SELECT pid, state, wait_event_type, wait_event, left(query, 80) "
                                "FROM pg_stat_activity WHERE datname = current_database()").fetchall()
    batches = [(b["batch_no"], b["status"], b["attempts"]) for b in job["batches"]["detail"]]
    return f"batches {batches}\nsessions {sessions}\nworker log:\n{worker.log_path.read_text()[-3000:]}"
