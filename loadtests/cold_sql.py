"""The cold path at scale, measured three ways for one learner with a long history:

1. shared.db.questions.COLD_CANDIDATES straight through psycopg (client wall time per execution, on a
   connection set up as the API's are) and its EXPLAIN ANALYZE execution and planning times;
2. the naive `ORDER BY random()` query it replaced, for contrast (a few runs: it is slow);
3. `POST /v1/courses/{course}/lessons` over HTTP at a low paced rate (client and Server-Timing latency).
"""

from __future__ import annotations

import re
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from loadtests import loadgen
from loadtests.stack import LOAD_CPU
from shared.db.pool import SET_PLAN_CACHE_MODE
from shared.db.questions import COLD_CANDIDATES
from shared.settings import get_settings

_APP_DUR = re.compile(r"app;dur=([\d.]+)")

NAIVE = """
SELECT q.id, q.skill_id, q.type, q.content, q.item_state
FROM unnest(%(skills)s::text[]) AS s(skill_id)
CROSS JOIN LATERAL (
    SELECT q.id, q.skill_id, q.type, q.content, q.item_state FROM questions q
    WHERE q.course_id = %(course)s AND q.skill_id = s.skill_id AND q.status = 'active'
      AND NOT EXISTS (SELECT 1 FROM learner_seen ls WHERE ls.learner_id = %(learner)s
                      AND ls.course_id = %(course)s AND ls.question_id = q.id)
    ORDER BY random() LIMIT %(per_skill)s
) q
"""


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, int(len(s) * p / 100 + 0.999) - 1))]


def summary(xs: list[float]) -> dict[str, float]:
    return {"n": len(xs), "p50_ms": pct(xs, 50), "p95_ms": pct(xs, 95), "p99_ms": pct(xs, 99),
            "max_ms": max(xs) if xs else 0.0, "mean_ms": statistics.fmean(xs) if xs else 0.0}


def sql_timings(database_url: str, params: dict[str, Any], runs: int, naive_runs: int) -> dict[str, Any]:
    """Wall-clock and EXPLAIN ANALYZE times of the cold-candidates query (and of the naive one)."""
    wall: list[float] = []
    execs: list[float] = []
    plans: list[float] = []
    rows = 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        # as the API's pooled connections are set up (shared.db.pool): prepared from the 5th run, then a
        # generic plan
        conn.execute(SET_PLAN_CACHE_MODE, (get_settings().database.plan_cache_mode,))
        for _ in range(3):  # warm the caches the way a running API's would be
            conn.execute(COLD_CANDIDATES, params).fetchall()
        for _ in range(runs):
            t0 = time.perf_counter()
            rows = len(conn.execute(COLD_CANDIDATES, params).fetchall())
            wall.append((time.perf_counter() - t0) * 1000)
        for _ in range(runs):
            cur = conn.cursor()
            row = cur.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {COLD_CANDIDATES}", params).fetchone()
            plan = row[0][0] if row else {}
            execs.append(float(plan.get("Execution Time", 0.0)))
            plans.append(float(plan.get("Planning Time", 0.0)))
        naive: list[float] = []
        for _ in range(naive_runs):
            cur = conn.cursor()
            row = cur.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {NAIVE}", params).fetchone()
            naive.append(float((row[0][0] if row else {}).get("Execution Time", 0.0)))
    return {"rows": rows, "wall": summary(wall), "execution": summary(execs), "planning": summary(plans),
            "naive_execution": summary(naive)}


HTTP_RATE = 15.0
"""Cold lesson starts per second offered by wrk, all by one learner: under the per-learner limit
(`LESSONLOOP_SERVING_RATE_PER_LEARNER`, 20/s: the benchmark keeps it on), and low enough that
requests never overlap, so the figures are a lone request's latency with warm caches."""


def http_timings(base_url: str, course: str, token: str, requests: int, work_dir: Path) -> dict[str, Any]:
    """`requests` lesson starts for a learner with no playlist (every one cold): paced by wrk (C, on
    the load generator's core) when it is installed, else one at a time from httpx. Client latency
    and Server-Timing app;dur percentiles."""
    if shutil.which("wrk"):
        lines = work_dir / "cold-heavy.txt"
        lines.write_text(token + "\n")
        loadgen.run(base_url, "lesson", lines=lines, course=course, connections=2, seconds=1.0, cpu=LOAD_CPU,
                    rate=HTTP_RATE, arrivals="uniform")  # connection set-up and first-use caches, not recorded
        r = loadgen.run(base_url, "lesson", lines=lines, course=course, connections=2,
                        seconds=requests / HTTP_RATE, cpu=LOAD_CPU, rate=HTTP_RATE, arrivals="uniform")
        keys = ("p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms")
        return {"generator": f"wrk, {HTTP_RATE:g} req/s", "client": {"n": r["requests"], **{k: r[k] for k in keys}},
                "app": {"n": r["app_n"], **{k: r[f"app_{k}"] for k in keys if f"app_{k}" in r}},
                "sources": {"warm": r["warm"], "cold": r["cold"]}, "errors": r["errors"], "statuses": r["statuses"]}
    return _httpx_timings(base_url, course, token, requests)


def _httpx_timings(base_url: str, course: str, token: str, requests: int) -> dict[str, Any]:
    client_ms: list[float] = []
    app_ms: list[float] = []
    sources: dict[str, int] = {}
    errors = 0
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        for i in range(requests + 5):
            t0 = time.perf_counter()
            r = client.post(f"/v1/courses/{course}/lessons")
            dt = (time.perf_counter() - t0) * 1000
            if i < 5:  # connection set-up and first-use caches
                continue
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code != 200:
                errors += 1
                continue
            client_ms.append(dt)
            timing = r.headers.get("server-timing", "")
            if (m := _APP_DUR.search(timing)) is not None:  # the header may also carry cpuwait;dur
                app_ms.append(float(m.group(1)))
            src = r.headers.get("x-lesson-source", "?")
            sources[src] = sources.get(src, 0) + 1
    return {"generator": "httpx, one at a time", "client": summary(client_ms), "app": summary(app_ms),
            "sources": sources, "errors": errors, "statuses": statuses}
