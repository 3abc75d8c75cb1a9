"""The chaos run's learners: an asyncio + httpx loop that behaves as a careful real client.

Each learner starts a lesson, answers every item with a client-generated ``attempt_id``, retries an
answer on 429/5xx/connection errors with the SAME ``attempt_id`` (honouring ``Retry-After``),
completes the lesson and starts the next; after a lesson a learner is sometimes replaced by a brand-new
one (first lesson cold). Everything the client saw is recorded — every request (kind, start, end,
status), every lesson served (when it was asked for, its question ids) and every acknowledged answer
(a 200, by attempt id) — so `loadtests.chaos` can check the server's promises against it.

The locust learners (loadtests/learners.py) give each retry a new attempt id, which is what a careless
client does; the chaos run needs the careful client, hence this loop.

`Probes` are learners the run drives itself around the store outages: while PostgreSQL is down the
load's learners are all retrying answers, so no lesson start would test the warm path without them.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis

from shared import constants

RETRYABLE = frozenset({429, 500, 502, 503, 504})
CONN_ERROR = 0
"""`status` of a request that got no HTTP response (connection refused or reset, timeout)."""


@dataclass(frozen=True, slots=True)
class Req:
    kind: str  # "start" | "answer" | "complete"
    start: float
    end: float
    status: int
    source: str = ""  # warm/cold for a lesson start


@dataclass(frozen=True, slots=True)
class Served:
    learner: str
    lesson_id: str
    source: str
    sent: float
    received: float
    question_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ack:
    learner: str
    attempt_id: str
    lesson_id: str
    item_id: str
    correct: bool
    duplicate: bool
    at: float


@dataclass
class LoadRecord:
    requests: list[Req] = field(default_factory=list)
    served: list[Served] = field(default_factory=list)
    acks: dict[str, Ack] = field(default_factory=dict)  # attempt id -> first 200 seen
    abandoned: list[tuple[str, str]] = field(default_factory=list)  # (learner, attempt id) never acknowledged
    learners: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)
    exhausted: int = 0  # 409 "no questions available": the learner has seen the whole bank


class LearnerLoad:
    """`learners` concurrent learners against `base_url` until `stop()`; run it in its own thread."""

    def __init__(self, base_url: str, course: str, mint: Callable[[str], str], *, learners: int,
                 new_learner_share: float = 0.25, think_s: tuple[float, float] = (0.05, 0.3),
                 timeout_s: float = 8.0, give_up_s: float = 90.0, seed: int = 7) -> None:
        self.base_url = base_url
        self.course = course
        self.mint = mint
        self.n = learners
        self.new_share = new_learner_share
        self.think_s = think_s
        self.timeout_s = timeout_s
        self.give_up_s = give_up_s
        self.rng = random.Random(seed)
        self.record = LoadRecord()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._run_id = uuid.uuid4().hex[:6]

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> LearnerLoad:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="chaos-learners", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 60.0) -> bool:
        """Ask every learner to stop after its current step (an answer in flight is retried until
        acknowledged); True if they all stopped in time."""
        self._stopping = True
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.n * 2, max_keepalive_connections=self.n * 2)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout_s, limits=limits) as client:
            await asyncio.gather(*(self._learner(client, i) for i in range(self.n)))

    # --- one learner -------------------------------------------------------------------------------
    def _new_identity(self, slot: int) -> tuple[str, dict[str, str]]:
        learner = f"chaos-{self._run_id}-{slot}-{uuid.uuid4().hex[:8]}"
        token = self.mint(learner)
        self.record.learners.add(learner)
        self.record.tokens.add(token)
        return learner, {"Authorization": f"Bearer {token}"}

    async def _learner(self, client: httpx.AsyncClient, slot: int) -> None:
        rng = random.Random(self.rng.random())
        learner, headers = self._new_identity(slot)
        await asyncio.sleep(rng.uniform(0, 0.5))
        while not self._stopping:
            lesson = await self._start(client, learner, headers, rng)
            if lesson is None:
                if self._stopping:
                    return
                learner, headers = self._new_identity(slot)  # the bank is exhausted for this learner
                continue
            for item in lesson["items"]:
                await asyncio.sleep(rng.uniform(*self.think_s))
                await self._answer(client, learner, headers, lesson["lesson_id"], item, rng)
            await self._call(client, "complete", f"/v1/lessons/{lesson['lesson_id']}/complete", headers, None, rng,
                             until_stopped=False)
            if rng.random() < self.new_share:
                learner, headers = self._new_identity(slot)

    async def _start(self, client: httpx.AsyncClient, learner: str, headers: dict[str, str],
                     rng: random.Random) -> dict[str, Any] | None:
        while not self._stopping:
            sent = time.time()
            r = await self._call(client, "start", f"/v1/courses/{self.course}/lessons", headers, None, rng,
                                 until_stopped=True)
            if r is None:
                return None
            if r.status_code == 200:
                lesson: dict[str, Any] = r.json()
                self.record.served.append(Served(
                    learner=learner, lesson_id=lesson["lesson_id"], source=lesson.get("source", "?"), sent=sent,
                    received=time.time(), question_ids=tuple(str(it["question_id"]) for it in lesson["items"])))
                if lesson["items"]:
                    return lesson
                continue
            if r.status_code == 409:
                self.record.exhausted += 1
                return None
            await asyncio.sleep(0.5)  # another 4xx: recorded as an error; try again
        return None

    async def _answer(self, client: httpx.AsyncClient, learner: str, headers: dict[str, str], lesson_id: str,
                      item: dict[str, Any], rng: random.Random) -> None:
        attempt_id = uuid.uuid4().hex
        choices = item.get("choices")
        body = {"item_id": item["item_id"], "attempt_id": attempt_id, "response_ms": rng.randint(800, 9000),
                "answer": str(rng.choice(choices)) if choices else rng.choice(["hola", "la casa", "tengo", "x"])}
        r = await self._call(client, "answer", f"/v1/lessons/{lesson_id}/answers", headers, body, rng,
                             until_stopped=False)
        if r is not None and r.status_code == 200:
            data = r.json()
            self.record.acks.setdefault(attempt_id, Ack(
                learner=learner, attempt_id=attempt_id, lesson_id=lesson_id, item_id=item["item_id"],
                correct=bool(data["correct"]), duplicate=bool(data.get("duplicate")), at=time.time()))
        else:
            self.record.abandoned.append((learner, attempt_id))

    async def _call(self, client: httpx.AsyncClient, kind: str, path: str, headers: dict[str, str],
                    body: dict[str, Any] | None, rng: random.Random, *, until_stopped: bool) -> httpx.Response | None:
        """POST, retrying the SAME request on 429/5xx/transport errors (Retry-After honoured, capped at
        2 s) until a final answer, `give_up_s`, or — for `until_stopped` calls — the load stopping."""
        deadline = time.monotonic() + self.give_up_s
        while True:
            t0 = time.time()
            try:
                r = await client.post(path, headers=headers, json=body)
            except httpx.TransportError:
                r = None
            status = CONN_ERROR if r is None else r.status_code
            source = r.headers.get("x-lesson-source", "") if r is not None and kind == "start" else ""
            self.record.requests.append(Req(kind, t0, time.time(), status, source))
            if r is not None and status not in RETRYABLE:
                return r
            if time.monotonic() > deadline or (until_stopped and self._stopping):
                return r
            wait = 0.2
            if r is not None and r.headers.get("retry-after", "").isdigit():
                wait = min(float(r.headers["retry-after"]), 2.0)
            await asyncio.sleep(wait * rng.uniform(0.5, 1.0))


class Probes:
    """`count` new learners, driven by the chaos run (not a thread): `prepare` gives each a cold
    lesson — which queues its refill — and waits until the curator has written every one's playlist;
    `start_warm` has each with a precomputed lesson left ask for it. Recorded in `record` like the
    load's own requests."""

    PREFIX = "chaos-probe-"

    def __init__(self, base_url: str, course: str, mint: Callable[[str], str], record: LoadRecord,
                 redis_url: str, *, count: int) -> None:
        self.base_url, self.course, self.mint, self.record = base_url, course, mint, record
        self.redis_url = redis_url
        self.count = count
        self.headers: dict[str, dict[str, str]] = {}  # learner -> headers
        self.refilled_s: float | None = None
        """Seconds from the cold starts to every probe's playlist written; None: not all within the wait."""
        self.starts: list[dict[str, Any]] = []

    def prepare(self, timeout: float, *, wait: Callable[[float], None] = time.sleep) -> None:
        for i in range(self.count):
            learner = f"{self.PREFIX}{i}-{uuid.uuid4().hex[:8]}"
            token = self.mint(learner)
            self.record.learners.add(learner)
            self.record.tokens.add(token)
            self.headers[learner] = {"Authorization": f"Bearer {token}"}
            self._start(learner)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if all(self.queued(learner) for learner in self.headers):
                self.refilled_s = round(time.monotonic() - t0, 2)
                return
            wait(0.2)

    def start_warm(self) -> None:
        for learner in self.headers:
            if self.queued(learner):
                r = self._start(learner)
                self.starts.append({"learner": learner, "status": CONN_ERROR if r is None else r.status_code,
                                    "source": r.headers.get("x-lesson-source", "") if r is not None else ""})

    def queued(self, learner: str) -> int:
        """Lessons precomputed for `learner` (0 if Redis does not answer)."""
        client = redis.Redis.from_url(self.redis_url, socket_timeout=2)
        try:
            return int(client.llen(constants.playlist_key(learner, self.course)))
        except redis.RedisError:
            return 0
        finally:
            client.close()

    def summary(self) -> dict[str, Any]:
        return {"learners": len(self.headers), "refilled_after_redis_s": self.refilled_s, "starts": len(self.starts),
                "warm": sum(1 for p in self.starts if p["status"] == 200 and p["source"] == "warm"),
                "refused": [p for p in self.starts if p["status"] != 200 or p["source"] != "warm"]}

    def _start(self, learner: str) -> httpx.Response | None:
        sent = time.time()
        try:
            r = httpx.post(f"{self.base_url}/v1/courses/{self.course}/lessons", headers=self.headers[learner],
                           timeout=10)
        except httpx.HTTPError:
            r = None
        status = CONN_ERROR if r is None else r.status_code
        self.record.requests.append(Req("start", sent, time.time(), status,
                                        r.headers.get("x-lesson-source", "") if r is not None else ""))
        if r is not None and r.status_code == 200:
            lesson = r.json()
            self.record.served.append(Served(
                learner=learner, lesson_id=lesson["lesson_id"], source=lesson.get("source", "?"), sent=sent,
                received=time.time(), question_ids=tuple(str(it["question_id"]) for it in lesson["items"])))
        return r
