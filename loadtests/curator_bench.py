"""Curator throughput and refill lag, measured on real stores.

    python -m loadtests.curator_bench [--quick]

Seeds its own data — a synthetic course of 50 skills with a 100k-question bank and N learners with
model state and seen questions, all by COPY — into the stores it is given (``run(database_url=...,
redis_url=...)``), or into embedded ones started in a separate folder under /tmp (never ./.lessonloop).
Then measures:

* learners/s planned and written by `refill_many` in batches (one SQL round trip for states, one for
  seen, in-memory bank index, one COPY, one pipelined Redis write), wall clock and per CPU-second of
  this process (the curator's own core; PostgreSQL and Redis run in their own processes);
* the same one learner at a time;
* refill lag: triggers offered at a fixed rate through the real path (`shared.queues.enqueue_refill`:
  stable job id, coalescing defer) to a curator worker in its own process; lag = trigger → the new
  playlist visible in Redis.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

COURSE = "bench-course"
N_SKILLS = 50
N_QUESTIONS = 100_000
LEVELS = ("A1", "A2", "B1", "B2")


# --- seeding ------------------------------------------------------------------------------------
def _curriculum(rng: random.Random) -> dict[str, Any]:
    skills = []
    for i in range(N_SKILLS):
        prereqs = []
        if i >= 3:
            prereqs = sorted({f"s{i - 1:02d}", f"s{rng.randrange(0, i - 1):02d}"})
        skills.append({"id": f"s{i:02d}", "name": f"Skill {i}", "level": LEVELS[min(3, i * 4 // N_SKILLS)],
                       "prerequisites": prereqs})
    return {"course": {"id": COURSE, "name": "Bench course", "language": "es"}, "skills": skills}


def seed(database_url: str, learners: int, *, seed_: int = 7) -> list[str]:
    """Course, bank and learners (skill states, course states, seen questions); returns learner ids."""
    from curator.learner_model import TYPICAL_LOGIT, LearnerModel
    from curator.scheduler import ReviewScheduler
    from shared.db.courses import LEVEL_RANKS

    rng = random.Random(seed_)
    model = LearnerModel.load()
    cur = _curriculum(rng)
    rank = {s["id"]: LEVEL_RANKS[s["level"]] for s in cur["skills"]}
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM learner_seen WHERE course_id = %s", (COURSE,))
        conn.execute("DELETE FROM learner_skill_state WHERE course_id = %s", (COURSE,))
        conn.execute("DELETE FROM learner_course_state WHERE course_id = %s", (COURSE,))
        conn.execute("DELETE FROM answer_events WHERE course_id = %s", (COURSE,))
        conn.execute("DELETE FROM lessons WHERE course_id = %s", (COURSE,))
        conn.execute("DELETE FROM questions WHERE course_id = %s", (COURSE,))
        conn.execute("DELETE FROM skills WHERE course_id = %s", (COURSE,))
        conn.execute("DELETE FROM courses WHERE id = %s", (COURSE,))
        conn.execute("INSERT INTO courses (id, name, language) VALUES (%s, %s, %s)", (COURSE, "Bench course", "es"))
        for pos, s in enumerate(cur["skills"]):
            conn.execute("INSERT INTO skills (course_id, id, name, level, level_rank, prerequisites, position) "
                         "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                         (COURSE, s["id"], s["name"], s["level"], rank[s["id"]], s["prerequisites"], pos))
        qids: dict[str, list[str]] = {s["id"]: [] for s in cur["skills"]}
        with conn.cursor() as c, c.copy("COPY questions (id, course_id, skill_id, level_rank, type, content, "
                                        "content_hash, item_state) FROM STDIN") as copy:
            for k in range(N_QUESTIONS):
                sid = cur["skills"][k % N_SKILLS]["id"]
                qid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                qids[sid].append(qid)
                item = model.new_item_state(rank[sid])
                item["b"] += rng.gauss(0, 0.8)
                item["n"] = rng.randrange(0, 60)
                item["nc"] = int(item["n"] * rng.uniform(0.4, 0.9))
                content = {"prompt": f"Question {k} of {sid}: choose the right form.", "answer": "a",
                           "choices": ["a", "b", "c", "d"]}
                copy.write_row((qid, COURSE, sid, rank[sid], "multiple_choice", json.dumps(content), f"h{k}",
                                json.dumps(item)))
        now = datetime.now(UTC)
        sched = ReviewScheduler()
        card = sched.new_card(now)
        ids = [f"bench-{i:06d}" for i in range(learners)]
        with conn.cursor() as c, c.copy("COPY learner_course_state (learner_id, course_id, state) FROM STDIN") as copy:
            for lid in ids:
                st = model.new_learner_state()
                st["n"] = rng.randrange(0, 300)
                st["nc"] = int(st["n"] * 0.7)
                st["theta"] = rng.gauss(0, 0.7)
                copy.write_row((lid, COURSE, json.dumps(st)))
        skill_ids = [s["id"] for s in cur["skills"]]
        with conn.cursor() as c, c.copy("COPY learner_skill_state (learner_id, course_id, skill_id, state, card, "
                                        "mastery, attempts, correct, due_at, last_seen_at) FROM STDIN") as copy:
            for lid in ids:
                for sid in skill_ids[:rng.randrange(0, 16)]:  # practised a prefix of the curriculum
                    st = model.new_skill_state(rank[sid])
                    attempts = rng.randrange(1, 30)
                    mastery = rng.betavariate(4, 2)
                    st[TYPICAL_LOGIT] = math.log(mastery / (1 - mastery)) + 0.4  # as the answer path keeps it
                    copy.write_row((lid, COURSE, sid, json.dumps(st), json.dumps(card), mastery,
                                    attempts, int(attempts * 0.7), now + timedelta(hours=rng.uniform(-48, 96)),
                                    now - timedelta(hours=rng.uniform(0, 200))))
        with conn.cursor() as c, c.copy("COPY learner_seen (learner_id, course_id, question_id) FROM STDIN") as copy:
            for lid in ids:
                picked = set()
                for _ in range(rng.randrange(0, 60)):
                    picked.add(rng.choice(qids[rng.choice(skill_ids[:16])]))
                for q in picked:
                    copy.write_row((lid, COURSE, q))
        conn.commit()
        conn.execute("ANALYZE")
    return ids


# --- measurements ------------------------------------------------------------------------------
async def _throughput(endpoints: Any, ids: list[str], *, batch: int, one_at_a_time: int) -> dict[str, Any]:
    from curator.learner_model import LearnerModel
    from curator.refill import CuratorDeps, refill_many
    from curator.tasks import tune_gc
    from shared.services import Services
    from shared.settings import get_settings

    tune_gc()  # as the curator worker runs
    settings = get_settings()
    services = await Services.open(settings, endpoints)
    try:
        deps = CuratorDeps(settings=settings, pool=services.pool, playlist_redis=services.redis,
                           model=LearnerModel.load(), rng=random.Random(1))
        t0 = time.perf_counter()
        index = await deps.index.get(COURSE)
        index_s = time.perf_counter() - t0
        assert index is not None and index.questions == N_QUESTIONS
        # warm up connections and code paths
        await refill_many(deps, [(lid, COURSE) for lid in ids[:batch]])
        pairs = [(lid, COURSE) for lid in ids]
        w0, c0 = time.perf_counter(), time.process_time()
        lessons = 0
        for i in range(0, len(pairs), batch):
            lessons += sum((await refill_many(deps, pairs[i:i + batch])).values())
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        one = pairs[:one_at_a_time]
        w1, c1 = time.perf_counter(), time.process_time()
        for p in one:
            await refill_many(deps, [p])
        wall1, cpu1 = time.perf_counter() - w1, time.process_time() - c1
        sample = await services.redis.lrange(f"ll:pl:{{b0}}:x:{COURSE}", 0, 0)  # noqa: F841 (connection check)
        return {
            "index_load_s": round(index_s, 2),
            "batch_size": batch,
            "learners_batched": len(pairs),
            "lessons_written": lessons,
            "batched_learners_per_s": round(len(pairs) / wall),
            "batched_learners_per_cpu_s": round(len(pairs) / cpu),
            "one_at_a_time_learners_per_s": round(len(one) / wall1),
            "one_at_a_time_learners_per_cpu_s": round(len(one) / cpu1),
        }
    finally:
        await services.close()


async def _lag(endpoints: Any, ids: list[str], *, rate: float, seconds: float) -> dict[str, Any]:
    from shared import constants, queues
    from shared.redis_client import arq_pool, async_client
    from shared.settings import get_settings

    settings = get_settings()
    arq = await arq_pool(endpoints.queue_redis_url, settings.redis)
    r = async_client(endpoints.redis_url, settings.redis)
    env = {**os.environ, "DATABASE_URL": endpoints.database_url, "REDIS_URL": endpoints.redis_url,
           "LESSONLOOP_QUEUE_REDIS_URL": endpoints.queue_redis_url, "LESSONLOOP_LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen([sys.executable, "-m", "loadtests.curator_bench", "--worker"], env=env,
                              cwd=str(Path(__file__).resolve().parent.parent))
    try:
        await arq.delete(constants.REFILL_QUEUE)
        # wait until the worker is up and has loaded the index: one refill through the queue
        probe = ids[-1]
        await r.delete(constants.playlist_key(probe, COURSE))
        await queues.enqueue_refill(arq, probe, COURSE, coalesce_ms=0)
        deadline = time.monotonic() + 120
        while not await r.exists(constants.playlist_key(probe, COURSE)):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("curator worker did not start")
            await asyncio.sleep(0.05)
        n = int(rate * seconds)
        learners = ids[:n]
        async with r.pipeline(transaction=False) as pipe:
            for lid in learners:
                pipe.delete(constants.playlist_key(lid, COURSE))
            await pipe.execute()
        sent: dict[str, float] = {}
        lags: list[float] = []

        async def produce() -> None:
            start = time.perf_counter()
            for k, lid in enumerate(learners):
                delay = start + k / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent[lid] = time.perf_counter()
                await queues.enqueue_refill(arq, lid, COURSE, coalesce_ms=settings.curator.refill_coalesce_ms)

        async def watch() -> None:
            pending: set[str] = set()
            done: set[str] = set()
            end = time.perf_counter() + seconds + 30
            while len(done) < n and time.perf_counter() < end:
                pending = {lid for lid in sent if lid not in done}
                if pending:
                    order = list(pending)
                    async with r.pipeline(transaction=False) as pipe:
                        for lid in order:
                            pipe.exists(constants.playlist_key(lid, COURSE))
                        found = await pipe.execute()
                    now = time.perf_counter()
                    for lid, ok in zip(order, found, strict=True):
                        if ok:
                            done.add(lid)
                            lags.append(now - sent[lid])
                await asyncio.sleep(0.002)

        await asyncio.gather(produce(), watch())
        lags.sort()

        def pct(q: float) -> float:
            return round(lags[min(len(lags) - 1, int(q * len(lags)))] * 1000, 1) if lags else float("nan")

        return {"offered_per_s": rate, "triggers": n, "refilled": len(lags),
                "coalesce_ms": settings.curator.refill_coalesce_ms,
                "lag_p50_ms": pct(0.50), "lag_p99_ms": pct(0.99), "lag_max_ms": pct(1.0)}
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
        await arq.aclose()
        await r.aclose()


def run(quick: bool = False, *, database_url: str | None = None, redis_url: str | None = None,
        queue_redis_url: str | None = None, data_dir: str | Path | None = None) -> dict[str, Any]:
    """Seed, measure, return the figures. Stores: the URLs given, else embedded ones under /tmp."""
    from lessonloop.workers import install_event_loop
    from shared.db import migrate
    from shared.runtime import EmbeddedServices, Endpoints, use_endpoints
    from shared.settings import get_settings

    embedded = None
    if database_url is None or redis_url is None:
        folder = Path(data_dir or Path(tempfile.gettempdir()) / "lessonloop-curator-bench")
        embedded = EmbeddedServices(folder)
        eps = embedded.start()
        database_url, redis_url = database_url or eps.database_url, redis_url or eps.redis_url
    endpoints = Endpoints(database_url, redis_url, queue_redis_url or redis_url)
    try:
        with use_endpoints(endpoints):
            migrate.upgrade(database_url)
            n = 5_000 if quick else 30_000
            t0 = time.perf_counter()
            ids = seed(database_url, n)
            seed_s = time.perf_counter() - t0
            out: dict[str, Any] = {"quick": quick, "skills": N_SKILLS, "questions": N_QUESTIONS, "learners": n,
                                   "seed_s": round(seed_s, 1), "cores": os.cpu_count()}
            policy = asyncio.get_event_loop_policy()
            install_event_loop()  # as the curator worker runs
            try:
                out.update(asyncio.run(_throughput(endpoints, ids, batch=get_settings().curator.batch_max,
                                                   one_at_a_time=500 if quick else 3_000)))
                out.update(asyncio.run(_lag(endpoints, ids, rate=200.0, seconds=5 if quick else 30)))
            finally:
                asyncio.set_event_loop_policy(policy)
            return out
    finally:
        if embedded is not None:
            embedded.stop()


def _worker() -> None:
    from arq.worker import run_worker

    from curator.tasks import worker_settings
    from lessonloop.workers import install_event_loop
    from shared.redis_client import arq_settings
    from shared.settings import get_settings

    settings = get_settings()
    assert settings.redis.url is not None
    install_event_loop()
    run_worker(worker_settings(arq_settings(settings.redis.queue_url or settings.redis.url, settings.redis)))  # type: ignore[arg-type]


if __name__ == "__main__":
    if "--worker" in sys.argv:
        _worker()
    else:
        print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
