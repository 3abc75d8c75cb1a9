"""`lessonloop model simulate`: simulated learners drive the real lesson API with real curator workers.

Each simulated learner has hidden knowledge per skill (a logit ``k``): P(correct on question q of
skill s) = sigmoid(k[s] - d[q]) with d the question's hidden difficulty. Practising a skill raises
``k`` (diminishing returns) at the learner's own pace (learning rates vary between learners,
log-normally) — six times less when its prerequisites are not known yet. Every item answered on other
skills lets what was learned decay towards a floor (forgetting by interference), more slowly the more
the skill has been practised (the spacing effect: practice makes memories stable). A skill is
*mastered* when sigmoid(k) >= 0.8 (80% on a question of average difficulty). Some learners already
know some skills (learned long ago: stable).

The same population (same seeds) learns a synthetic course three times, each in its own copy of the
course, with only the curator's selection policy changed (`CuratorSettings.policy`):

* ``adaptive`` — the curator (curator/planner.py);
* ``random`` — random unseen questions of the course (what the cold path would serve without a model);
* ``fixed`` — curriculum order, a fixed number of items per skill, then round again.

Every lesson goes through the HTTP API in process (litestar TestClient): start (warm pops of what the
curator worker wrote), answer each item, complete (which fires the refill); a real curator arq worker
(`lessonloop.workers` settings) runs in the same event loop. Learners take their lessons concurrently.
Reported per policy: the items a learner needed to master 80% of the skills
(mean; learners who never got there count the whole budget) and the mastery reached after fixed
numbers of items.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import random
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

POLICIES = ("adaptive", "random", "fixed")
MASTERY_P = 0.8
MASTERY_K = math.log(MASTERY_P / (1 - MASTERY_P))
GOAL_FRACTION = 0.8
"""A learner has reached mastery of the course when this share of its skills is mastered."""


@dataclass(frozen=True)
class SimConfig:
    learners: int = 20
    items: int = 400
    skills: int = 12
    per_skill: int = 60
    seed: int = 11
    learn_rate: float = 0.45
    """Mean gain in k per item practised, far from the ceiling."""
    learn_spread: float = 0.4
    """Sigma of the log-normal spread of learners' learning rates."""
    forget_rate: float = 0.004
    """Share of (k - floor) lost per item answered on another skill, for a never-practised skill..."""
    stability_per_item: float = 0.5
    """...divided by (1 + this x items practised on it)."""
    prior_known: float = 0.25
    prior_practice: int = 10
    """Items' worth of stability a skill known beforehand starts with."""
    checkpoints: tuple[int, ...] = (100, 200, 400)


# --- the synthetic course ------------------------------------------------------------------------
def course_skills(cfg: SimConfig) -> list[dict[str, Any]]:
    """A prerequisite tree: skill i needs skill (i-1)//2 (and i-1 every third skill)."""
    out = []
    for i in range(cfg.skills):
        pre = set()
        if i:
            pre.add(f"k{(i - 1) // 2:02d}")
            if i % 3 == 0:
                pre.add(f"k{i - 1:02d}")
        out.append({"id": f"k{i:02d}", "level": "A1" if i < cfg.skills // 2 else "A2", "prerequisites": sorted(pre)})
    return out


def seed_course(database_url: str, course_id: str, cfg: SimConfig) -> dict[str, float]:
    """Create (or re-create) the course and its bank; returns question id -> hidden difficulty."""
    from curator.learner_model import LearnerModel
    from shared.db.courses import LEVEL_RANKS

    rng = random.Random(cfg.seed)
    model = LearnerModel.load()
    skills = course_skills(cfg)
    difficulty: dict[str, float] = {}
    with psycopg.connect(database_url) as conn:
        for table in ("learner_seen", "learner_skill_state", "learner_course_state", "answer_events", "lessons",
                      "questions", "skills"):
            conn.execute(f"DELETE FROM {table} WHERE course_id = %s", (course_id,))  # fixed table names
        conn.execute("DELETE FROM courses WHERE id = %s", (course_id,))
        conn.execute("INSERT INTO courses (id, name, language) VALUES (%s, %s, 'es')", (course_id, "Simulation"))
        for pos, s in enumerate(skills):
            conn.execute("INSERT INTO skills (course_id, id, name, level, level_rank, prerequisites, position) "
                         "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                         (course_id, s["id"], s["id"], s["level"], LEVEL_RANKS[s["level"]], s["prerequisites"], pos))
        with conn.cursor() as cur, cur.copy("COPY questions (id, course_id, skill_id, level_rank, type, content, "
                                            "content_hash, item_state) FROM STDIN") as copy:
            for s in skills:
                for k in range(cfg.per_skill):
                    qid = str(uuid.uuid4())  # ids differ per copy; hidden difficulties are the same
                    difficulty[qid] = rng.gauss(0.0, 0.9)
                    content = {"prompt": f"{s['id']} #{k}", "answer": "a", "choices": ["a", "b", "c", "d"]}
                    copy.write_row((qid, course_id, s["id"], LEVEL_RANKS[s["level"]], "multiple_choice",
                                    json.dumps(content), f"{course_id}-{qid}",
                                    json.dumps(model.new_item_state(LEVEL_RANKS[s["level"]]))))
        conn.commit()
    return difficulty


# --- simulated learners ---------------------------------------------------------------------------
@dataclass
class SimLearner:
    id: str
    k: dict[str, float]
    floor: dict[str, float]
    prereqs: dict[str, list[str]]
    rng: random.Random
    rate: float = 0.45
    practised: dict[str, int] = field(default_factory=dict)
    items: int = 0
    reached_at: int | None = None
    history: dict[int, float] = field(default_factory=dict)

    def p_correct(self, skill: str, d: float) -> float:
        return 1.0 / (1.0 + math.exp(-(self.k[skill] - d)))

    def mastered_share(self) -> float:
        return sum(1 for v in self.k.values() if v >= MASTERY_K) / len(self.k)

    def answer(self, skill: str, d: float, cfg: SimConfig) -> bool:
        correct = self.rng.random() < self.p_correct(skill, d)
        ready = all(self.k[p] >= MASTERY_K for p in self.prereqs[skill])
        gain = self.rate * (1.0 if ready else 1.0 / 6) / (1.0 + math.exp(self.k[skill] - 3.0))
        for s in self.k:  # forgetting of everything else, slower for well-practised skills
            if s != skill and self.k[s] > self.floor[s]:
                self.k[s] -= (cfg.forget_rate / (1.0 + cfg.stability_per_item * self.practised[s])
                              * (self.k[s] - self.floor[s]))
        self.k[skill] += gain
        self.practised[skill] += 1
        self.items += 1
        if self.reached_at is None and self.mastered_share() >= GOAL_FRACTION:
            self.reached_at = self.items
        if self.items in cfg.checkpoints:
            self.history[self.items] = self.mastered_share()
        return correct


def population(cfg: SimConfig, prefix: str) -> list[SimLearner]:
    skills = course_skills(cfg)
    prereqs = {s["id"]: s["prerequisites"] for s in skills}
    out = []
    for i in range(cfg.learners):
        rng = random.Random(cfg.seed * 1000 + i)
        k: dict[str, float] = {}
        practised: dict[str, int] = {}
        for s in skills:  # prior knowledge: some skills known, more likely when the prerequisites are
            known = all(k[p] >= MASTERY_K for p in s["prerequisites"]) and rng.random() < cfg.prior_known
            k[s["id"]] = rng.gauss(2.2, 0.4) if known else rng.gauss(-2.0, 0.5)
            practised[s["id"]] = cfg.prior_practice if known else 0
        rate = cfg.learn_rate * math.exp(rng.gauss(0.0, cfg.learn_spread) - cfg.learn_spread ** 2 / 2)
        out.append(SimLearner(id=f"{prefix}-{i:03d}", k=k, floor={s: -2.5 for s in k}, prereqs=prereqs,
                              rng=random.Random(cfg.seed * 7919 + i), rate=rate, practised=practised))
    return out


# --- driving the API ------------------------------------------------------------------------------
async def _wait_for_refills(queue: Any, playlists_: Any, keys: list[str], deadline_s: float = 60.0) -> None:
    """Until the refill queue is empty, no refill is running (after the coalescing defer) and every
    active learner's playlist holds a lesson again (a worker may finish a trigger by handing its
    learner to a batch still being written)."""
    from shared import constants

    end = time.monotonic() + deadline_s
    drained_at: float | None = None
    await asyncio.sleep(0.11)
    while time.monotonic() < end:
        if await queue.zcard(constants.REFILL_QUEUE) == 0 and not [k async for k in queue.scan_iter(
                "arq:in-progress:*", count=1000)]:
            drained_at = drained_at or time.monotonic()
            lengths = await asyncio.gather(*(playlists_.llen(k) for k in keys))
            # a learner whose bank ran dry gets no lesson: don't wait on them for more than 2 s
            if all(n > 0 for n in lengths) or time.monotonic() - drained_at > 2.0:
                return
        await asyncio.sleep(0.01)
    raise TimeoutError("refills did not finish")


async def _run_policy(policy: str, cfg: SimConfig, course: str, difficulty: dict[str, float]) -> dict[str, Any]:
    from arq.worker import Worker
    from litestar.testing import AsyncTestClient

    from lessonloop.app import create_app
    from lessonloop.workers import KINDS
    from shared import constants, queues
    from shared.auth import mint_token
    from shared.redis_client import arq_pool, async_client
    from shared.runtime import resolve_endpoints
    from shared.settings import get_settings

    settings = get_settings()
    eps = resolve_endpoints(settings)[0]
    arq = await arq_pool(eps.queue_redis_url, settings.redis)
    playlist_redis = async_client(eps.redis_url, settings.redis)
    learners = population(cfg, f"sim-{policy}-{uuid.uuid4().hex[:6]}")
    worker = Worker(**{**KINDS["curator"](), "handle_signals": False, "poll_delay": 0.01})
    worker_task = asyncio.create_task(worker.main())
    started = time.perf_counter()
    sources: dict[str, int] = {"warm": 0, "cold": 0}
    try:
        async with AsyncTestClient(app=create_app(settings)) as client:
            headers = {ln.id: {"Authorization": f"Bearer {mint_token(settings.auth, sub=ln.id, role='learner')}"}
                       for ln in learners}

            async def lesson(ln: SimLearner) -> None:
                r = await client.post(f"/v1/courses/{course}/lessons", headers=headers[ln.id])
                r.raise_for_status()
                body = r.json()
                sources[body["source"]] += 1
                for item in body["items"]:
                    if ln.items >= cfg.items:
                        break
                    ok = ln.answer(item["skill"], difficulty[item["question_id"]], cfg)
                    a = await client.post(f"/v1/lessons/{body['lesson_id']}/answers", headers=headers[ln.id], json={
                        "item_id": item["item_id"], "answer": "a" if ok else "b",
                        "attempt_id": uuid.uuid4().hex, "response_ms": 3000 if ok else 9000})
                    a.raise_for_status()
                done = await client.post(f"/v1/lessons/{body['lesson_id']}/complete", headers=headers[ln.id])
                done.raise_for_status()

            def active_keys() -> list[str]:
                return [constants.playlist_key(ln.id, course) for ln in learners if ln.items < cfg.items]

            for ln in learners:  # every policy plans from the first lesson on
                await queues.enqueue_refill(arq, ln.id, course, coalesce_ms=0)
            await _wait_for_refills(arq, playlist_redis, active_keys())
            while any(ln.items < cfg.items for ln in learners):
                await asyncio.gather(*(lesson(ln) for ln in learners if ln.items < cfg.items))
                await _wait_for_refills(arq, playlist_redis, active_keys())
    finally:
        worker_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker_task
        await worker.close()
        await arq.aclose()
        await playlist_redis.aclose()
    reached = [ln.reached_at for ln in learners]
    return {
        "policy": policy,
        "items_to_mastery_mean": round(sum(r if r is not None else cfg.items for r in reached) / len(reached), 1),
        "reached_mastery": f"{sum(r is not None for r in reached)}/{len(reached)}",
        "mastery_after": {n: round(sum(ln.history.get(n, ln.mastered_share()) for ln in learners) / len(learners), 3)
                          for n in cfg.checkpoints if n <= cfg.items},
        "lessons": sources,
        "seconds": round(time.perf_counter() - started, 1),
    }


def run_policy(policy: str, cfg: SimConfig, database_url: str) -> dict[str, Any]:
    """One policy on its own copy of the course, through the API; returns its figures."""
    from shared.runtime import environ
    from shared.settings import get_settings

    course = f"sim-{policy}"
    difficulty = seed_course(database_url, course, cfg)
    # simulated learners answer at machine speed: the per-learner limit (an abuse guard) is off
    with environ({"LESSONLOOP_CURATOR_POLICY": policy, "LESSONLOOP_SERVING_RATE_PER_LEARNER": "0"}):
        get_settings.cache_clear()
        try:
            return asyncio.run(_run_policy(policy, cfg, course, difficulty))
        finally:
            get_settings.cache_clear()


def simulate(cfg: SimConfig, policies: tuple[str, ...] = POLICIES) -> dict[str, Any]:
    """Run every policy on the configured stores (embedded ones under /tmp when none are configured)."""
    from shared.db import migrate
    from shared.runtime import EmbeddedServices, use_endpoints
    from shared.settings import get_settings

    settings = get_settings()
    embedded = None
    if settings.database.url is None or settings.redis.url is None:
        embedded = EmbeddedServices(Path(tempfile.gettempdir()) / "lessonloop-simulate")
    try:
        with use_endpoints(embedded.start()) if embedded else contextlib.nullcontext():
            database_url = get_settings().database.url
            assert database_url is not None
            migrate.upgrade(database_url)
            results = {p: run_policy(p, cfg, database_url) for p in policies}
    finally:
        if embedded is not None:
            embedded.stop()
    out: dict[str, Any] = {"config": {k: v for k, v in cfg.__dict__.items()}, "results": results}
    if "adaptive" in results and "random" in results:
        a, r = results["adaptive"]["items_to_mastery_mean"], results["random"]["items_to_mastery_mean"]
        out["adaptive_vs_random_fewer_items"] = round(1 - a / r, 3)
    if "adaptive" in results and "fixed" in results:
        a, f = results["adaptive"]["items_to_mastery_mean"], results["fixed"]["items_to_mastery_mean"]
        out["adaptive_vs_fixed_fewer_items"] = round(1 - a / f, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lessonloop model simulate", description=__doc__.split("\n")[0])
    p.add_argument("--learners", type=int, default=SimConfig.learners)
    p.add_argument("--items", type=int, default=SimConfig.items, help="items per learner")
    p.add_argument("--seed", type=int, default=SimConfig.seed)
    p.add_argument("--policies", default=",".join(POLICIES))
    args = p.parse_args(argv)
    for noisy in ("httpx", "arq", "pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    cfg = SimConfig(learners=args.learners, items=args.items, seed=args.seed,
                    checkpoints=tuple(sorted({n for n in (100, 200, args.items) if n <= args.items})))
    print(json.dumps(simulate(cfg, tuple(args.policies.split(","))), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
