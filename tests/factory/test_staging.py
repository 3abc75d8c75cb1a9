"""Staging a batch: de-duplication (exact and near; within the batch, against staging, against the
bank; concurrent batches of one skill), the one transaction, and a second run of a batch."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis
import redis.asyncio
from psycopg_pool import AsyncConnectionPool

from factory.batches import FactoryDeps, stage_result
from factory.jobs import create_job
from factory.risk import ReviewPolicy
from factory.router import BatchResult, ItemProvenance, Router
from review_portal.ingestion import ingest
from shared.db import jobs, staging
from shared.db.pool import open_async_pool
from shared.runtime import Endpoints
from shared.settings import Settings

T = TypeVar("T")
COURSE = "spanish-a1-b1"
PROV = ItemProvenance(provider="openai", model="fake-strong", tier="strong", prompt_version="generate_v1",
                      attempts=1, repairs=0, cost_usd=0.01, tokens_in=100, tokens_out=200)


def item(prompt: str, answer: str, skill: str = "greetings") -> dict[str, Any]:
    return {"type": "translation", "skill": skill, "prompt": f'Translate into Spanish: "{prompt}"', "answer": answer,
            "choices": None, "accepted_answers": [], "difficulty": "easy", "explanation": "A greeting."}


MORNING = item("Good morning, my friend, how are you today?", "Buenos días, amigo, ¿cómo estás hoy?")
MORNING_REWORDED = item("Good morning, my friend, how are you doing today?", "Buenos días, amigo, ¿cómo estás hoy?")
TRAIN = item("The train leaves at nine.", "El tren sale a las nueve.")
NIGHT = item("Good night and sleep well.", "Buenas noches y que duermas bien.")


def result(*items: dict[str, Any], cost: float = 0.01) -> BatchResult:
    return BatchResult(items=[(copy.deepcopy(i), PROV, ()) for i in items], invalid=[], failures=[], cost_usd=cost,
                       calls=[], complexity=0.0, tier="strong")


def run(eps: Endpoints, body: Callable[[FactoryDeps], Awaitable[T]], *, threshold: float = 0.92,
        policy: ReviewPolicy | None = None) -> T:
    """Run `body(deps)` with a pool, a router and the queue Redis, closed afterwards."""

    async def go() -> T:
        settings = Settings()
        settings.factory.near_duplicate_threshold = threshold
        pool: AsyncConnectionPool = await open_async_pool(eps.database_url, settings.database, min_size=1)
        sync_redis = redis.Redis.from_url(eps.queue_redis_url)
        async_redis = redis.asyncio.Redis.from_url(eps.queue_redis_url)
        deps = FactoryDeps(settings=settings, pool=pool, router=Router(settings.factory, sync_redis, async_redis),
                           policy=policy or ReviewPolicy(), redis=async_redis)
        try:
            return await body(deps)
        finally:
            await pool.close()
            await async_redis.aclose()
            sync_redis.close()

    return asyncio.run(go())


async def new_job(deps: FactoryDeps, count: int = 10, skills: tuple[str, ...] = ("greetings",)) -> dict[str, Any]:
    """A job whose batches are all claimed (as a worker would have)."""
    cfg = deps.settings.factory
    async with deps.pool.connection() as conn:
        async with conn.transaction():
            job_id, n = await create_job(conn, {"course": COURSE, "skills": list(skills), "count": count}, cfg,
                                         created_by="test")
        for b in range(n):
            await jobs.claim_batch(conn, job_id, b)
        await conn.commit()
        job = await jobs.get_job(conn, job_id)
    assert job is not None
    return job


async def stage(deps: FactoryDeps, job: dict[str, Any], batch_no: int, res: BatchResult,
                skill: str = "greetings") -> dict[str, Any]:
    skill_row = {"id": skill, "level": "A1"}
    return await stage_result(deps, job, {"batch_no": batch_no}, skill_row, res)


async def rows(deps: FactoryDeps, job: dict[str, Any]) -> list[dict[str, Any]]:
    async with deps.pool.connection() as conn:
        found = await staging.list_items(conn, job=job["id"], limit=500)
    return sorted(found, key=lambda r: (r["batch_no"], r["seq"]))


def test_exact_and_near_duplicates_within_one_batch_name_the_earlier_item(
        clean: Endpoints, curriculum: dict[str, Any]) -> None:
    async def body(deps: FactoryDeps) -> None:
        job = await new_job(deps, count=4)
        counts = await stage(deps, job, 0, result(MORNING, TRAIN, MORNING, MORNING_REWORDED))
        assert counts == {"generated": 4, "invalid": 0, "duplicates": 2, "staged": 2}
        staged = await rows(deps, job)
        assert [r["status"] for r in staged] == ["pending", "pending", "duplicate", "duplicate"]
        assert staged[2]["duplicate_of"] == {"kind": "exact", "match": "batch", "seq": 0, "similarity": 1.0}
        near = staged[3]["duplicate_of"]
        assert near["kind"] == "near" and near["match"] == "batch" and near["seq"] == 0
        assert 0.92 <= near["similarity"] < 1.0

    run(clean, body)


def test_duplicates_of_staged_items_name_the_matching_row(clean: Endpoints, curriculum: dict[str, Any]) -> None:
    async def body(deps: FactoryDeps) -> None:
        job = await new_job(deps, count=20)
        await stage(deps, job, 0, result(MORNING, TRAIN))
        await stage(deps, job, 1, result(TRAIN, MORNING_REWORDED, NIGHT))
        first, second = (await rows(deps, job))[:2], (await rows(deps, job))[2:]
        by_prompt = {r["content"]["prompt"]: r for r in first}
        assert second[0]["duplicate_of"] == {"kind": "exact", "match": "staging",
                                             "id": str(by_prompt[TRAIN["prompt"]]["id"]), "similarity": 1.0}
        near = second[1]["duplicate_of"]
        assert near["kind"] == "near" and near["match"] == "staging"
        assert near["id"] == str(by_prompt[MORNING["prompt"]]["id"]) and near["similarity"] >= 0.92
        assert second[2]["status"] == "pending" and second[2]["duplicate_of"] is None

    run(clean, body)


def test_the_near_duplicate_threshold_is_configurable(clean: Endpoints, curriculum: dict[str, Any]) -> None:
    async def body(deps: FactoryDeps) -> None:
        job = await new_job(deps, count=20)
        await stage(deps, job, 0, result(MORNING))
        counts = await stage(deps, job, 1, result(MORNING_REWORDED))
        assert counts["staged"] == 1 and counts["duplicates"] == 0  # 0.97 similar, below 0.99

    run(clean, body, threshold=0.99)


def test_duplicates_of_bank_items_name_the_question(clean: Endpoints, curriculum: dict[str, Any]) -> None:
    async def body(deps: FactoryDeps) -> None:
        job = await new_job(deps, count=20)
        await stage(deps, job, 0, result(MORNING, TRAIN))  # auto-accepted by the policy below
        assert (await ingest(deps.pool))["ingested"] == 2
        async with deps.pool.connection() as conn:
            bank = {r["content"]["prompt"]: str(r["id"]) for r in await (await conn.execute(
                "SELECT id, content FROM questions")).fetchall()}
        counts = await stage(deps, job, 1, result(TRAIN, MORNING_REWORDED))
        assert counts["duplicates"] == 2
        exact, near = [r["duplicate_of"] for r in (await rows(deps, job))[2:]]
        assert exact == {"kind": "exact", "match": "bank", "id": bank[TRAIN["prompt"]], "similarity": 1.0}
        assert near["match"] == "bank" and near["id"] == bank[MORNING["prompt"]] and near["similarity"] >= 0.92

    run(clean, body, policy=ReviewPolicy.auto(tiers={"strong"}, max_risk=1.0))


def test_concurrent_batches_of_one_skill_de_duplicate_against_each_other(
        clean: Endpoints, curriculum: dict[str, Any]) -> None:
    async def body(deps: FactoryDeps) -> None:
        job = await new_job(deps, count=40)
        outcomes = await asyncio.gather(*(stage(deps, job, b, result(MORNING, TRAIN, NIGHT)) for b in range(4)))
        assert sum(o["staged"] for o in outcomes) == 3
        assert sum(o["duplicates"] for o in outcomes) == 9
        live = [r for r in await rows(deps, job) if r["status"] == "pending"]
        assert len({r["content_hash"] for r in live}) == len(live) == 3

    run(clean, body)


def test_a_second_run_of_a_batch_stages_nothing(clean: Endpoints, curriculum: dict[str, Any]) -> None:
    async def body(deps: FactoryDeps) -> None:
        job = await new_job(deps, count=10)
        assert (await stage(deps, job, 0, result(MORNING, TRAIN)))["staged"] == 2
        # The same batch run again (its first worker was presumed dead but finished): nothing more.
        assert await stage(deps, job, 0, result(NIGHT, TRAIN, MORNING)) == {"skipped": "batch no longer running"}
        assert len(await rows(deps, job)) == 2
        async with deps.pool.connection() as conn:
            done = await jobs.get_job(conn, job["id"])
        assert done is not None and done["status"] == "succeeded" and done["generated"] == 2

    run(clean, body)


def test_a_batch_cancelled_in_flight_stages_nothing_but_its_cost_is_charged(
        clean: Endpoints, curriculum: dict[str, Any]) -> None:
    async def body(deps: FactoryDeps) -> None:
        job = await new_job(deps, count=20)
        async with deps.pool.connection() as conn:
            assert await jobs.cancel_job(conn, job["id"])
            await conn.commit()
        assert (await stage(deps, job, 1, result(MORNING, cost=0.25)))["skipped"]
        async with deps.pool.connection() as conn:
            after = await jobs.get_job(conn, job["id"])
            batches = await jobs.list_batches(conn, job["id"])
        assert after is not None and after["status"] == "cancelled" and float(after["cost_usd"]) == 0.25
        assert [b["status"] for b in batches] == ["cancelled", "cancelled"] and float(batches[1]["cost_usd"]) == 0.25
        assert await rows(deps, job) == []

    run(clean, body)


def test_nearest_many_matches_one_query_per_vector(clean: Endpoints, curriculum: dict[str, Any]) -> None:
    from factory.embeddings import get_embedder, item_text

    async def body(deps: FactoryDeps) -> None:
        job = await new_job(deps, count=20)
        await stage(deps, job, 0, result(MORNING, TRAIN, NIGHT))
        vectors = get_embedder().embed([item_text(i) for i in (MORNING_REWORDED, NIGHT, TRAIN)])
        async with deps.pool.connection() as conn:
            many = await staging.nearest_many(conn, COURSE, "greetings", list(vectors))
            one = [await staging.nearest(conn, COURSE, "greetings", v) for v in vectors]
            other_skill = await staging.nearest_many(conn, COURSE, "numbers", list(vectors))
        assert many == one and all(m is not None for m in many)
        assert [round(m["similarity"], 4) for m in many if m][1:] == [1.0, 1.0]
        assert other_skill == [None, None, None]

    run(clean, body)
