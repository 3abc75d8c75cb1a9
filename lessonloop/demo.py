"""`make demo`: the whole loop end to end on the embedded services, through the real components.

generation job (HTTP) → factory worker → offline tier → staging → staff accepts (HTTP) → ingestion
→ simulated learners: first lesson cold (SQL) + refill → curator writes playlists → next lessons warm
(Redis pop) → answers → complete → next refill. Prints a summary and stops what it started.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import uuid
from typing import Any

import httpx

from lessonloop.stack import Stack, StackError
from shared.auth import mint_token
from shared.settings import get_settings

JOB_TIMEOUT_S = 90
REFILL_WAIT_S = 5.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Demo:
    def __init__(self, base_url: str) -> None:
        cfg = get_settings().auth
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.staff = {"Authorization": f"Bearer {mint_token(cfg, sub='demo-designer', role='designer')}"}
        self._cfg = cfg
        self.starts: list[tuple[str, float]] = []  # (source, client-side ms)
        self.answers = 0

    def call(self, method: str, path: str, headers: dict[str, str], **kw: Any) -> httpx.Response:
        r = self.http.request(method, path, headers=headers, **kw)
        if r.status_code >= 400:
            raise StackError(f"{method} {path} → {r.status_code}: {r.text[:300]}")
        return r

    def generate(self, course: str, skills: list[str], count: int) -> dict[str, Any]:
        spec = {"course": course, "skills": skills, "count": count}
        r = self.call("POST", "/v1/generation-jobs", self.staff, json=spec)
        location = r.headers["location"]
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while time.monotonic() < deadline:
            job = self.call("GET", location, self.staff).json()
            if job["status"] not in ("queued", "running"):
                return job
            time.sleep(0.3)
        raise StackError(f"generation job {location} did not finish within {JOB_TIMEOUT_S}s")

    def review(self, job_id: str) -> tuple[int, int]:
        accepted = rejected = 0
        while items := self.call("GET", "/v1/staging", self.staff,
                                 params={"job": job_id, "status": "pending", "limit": 200}).json():
            for item in items:
                # A reviewer's spot check: reject the riskiest few, accept the rest.
                if item["risk"] >= 0.5 and rejected < 3:
                    body = {"decision": "reject", "reason": "poor_quality"}
                    rejected += 1
                else:
                    body = {"decision": "accept"}
                    accepted += 1
                self.call("POST", f"/v1/staging/{item['id']}/decision", self.staff, json=body)
        return accepted, rejected

    def learner_session(self, learner: str, course: str, lessons: int, rng: random.Random) -> None:
        headers = {"Authorization": f"Bearer {mint_token(self._cfg, sub=learner, role='learner')}"}
        skill_p: dict[str, float] = {}
        for n in range(lessons):
            if n:
                self._wait_for_refill(learner)
            t0 = time.perf_counter()
            r = self.call("POST", f"/v1/courses/{course}/lessons", headers)
            self.starts.append((r.json()["source"], (time.perf_counter() - t0) * 1000))
            lesson = r.json()
            for item in lesson["items"]:
                p = skill_p.setdefault(item["skill"], rng.uniform(0.4, 0.9))
                key = self.call("GET", f"/v1/questions/{item['question_id']}", self.staff).json()["content"]["answer"]
                given = key if rng.random() < p else "no sé"
                self.call("POST", f"/v1/lessons/{lesson['lesson_id']}/answers", headers, json={
                    "item_id": item["item_id"], "answer": given, "attempt_id": str(uuid.uuid4()),
                    "response_ms": rng.randint(1500, 9000)})
                skill_p[item["skill"]] = min(0.97, p + 0.05)  # practice helps
                self.answers += 1
            self.call("POST", f"/v1/lessons/{lesson['lesson_id']}/complete", headers)

    def _wait_for_refill(self, learner: str) -> None:
        """Give the curator a moment (it usually needs milliseconds); a miss is served cold anyway."""
        time.sleep(0.3)


def run_demo(*, learners: int = 6, lessons: int = 4, port: int = 8765) -> int:
    settings = get_settings()
    t_start = time.monotonic()
    print("Lessonloop demo: starting embedded PostgreSQL + Redis, API and workers…", flush=True)
    try:
        with Stack(settings, port=port, log_dir=settings.data_dir / "logs") as stack:
            stack.start()
            demo = Demo(stack.base_url)
            course = demo.call("GET", "/v1/courses", demo.staff).json()[0]
            roots = [s["id"] for s in course["skills"] if not s["prerequisites"]]
            skills = roots + [s["id"] for s in course["skills"] if s["level"] == "A1" and s["id"] not in roots][:6]
            print(f"  course {course['id']}: {len(course['skills'])} skills; generating for {len(skills)} of them",
                  flush=True)
            job = demo.generate(course["id"], skills, count=12 * len(skills))
            counts = job["counts"]
            accepted, rejected = demo.review(job["id"])
            ingested = demo.call("POST", "/v1/ingestions", demo.staff).json()
            print(f"  job {job['status']}: {counts['generated']} generated, {counts['duplicates']} duplicates, "
                  f"{counts['invalid']} invalid, {counts['staged']} staged; reviewed: {accepted} accepted, "
                  f"{rejected} rejected; ingested {ingested['ingested']}", flush=True)
            rng = random.Random(7)
            for i in range(learners):
                demo.learner_session(f"demo-learner-{i + 1}-{uuid.uuid4().hex[:6]}", course["id"], lessons, rng)
            warm = [ms for src, ms in demo.starts if src == "warm"]
            cold = [ms for src, ms in demo.starts if src == "cold"]
            all_ms = [ms for _, ms in demo.starts]
            print("\nSummary")
            print(f"  items generated        {counts['generated']}")
            print(f"  items accepted         {accepted}")
            print(f"  questions in the bank  {ingested['ingested']}")
            print(f"  learners               {learners}")
            print(f"  lessons served         {len(demo.starts)} ({len(warm)} warm, {len(cold)} cold)")
            print(f"  answers recorded       {demo.answers}")
            print(f"  lesson start p50/p99   {statistics.median(all_ms):.1f} / {_pct(all_ms, 0.99):.1f} ms "
                  f"(client-side; warm p50 {statistics.median(warm) if warm else float('nan'):.1f} ms, "
                  f"cold p50 {statistics.median(cold) if cold else float('nan'):.1f} ms)")
            if not warm or not cold:
                print("demo: expected both warm and cold lessons", file=sys.stderr)
                return 1
    except StackError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    print(f"  total time             {time.monotonic() - t_start:.1f} s; everything it started is stopped.")
    return 0
