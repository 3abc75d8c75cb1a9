"""The capacity model of docs/scaling.md, from a results.json the bench wrote:

    python -m loadtests.sizing /tmp/lessonloop-benchfiles-XXXX/results.json

Inputs are the measured CPU milliseconds per request of each process (API, PostgreSQL, Redis) at the
largest connection count; everything else is a stated assumption (the constants below).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from loadtests.report import aggregate

PEAK_RPS = 340_000
ITEMS_PER_LESSON = 5
REQUESTS_PER_LESSON = 1 + ITEMS_PER_LESSON + 1  # start, answers, complete
WARM_SHARE = 0.95
API_CPU_TARGET = 0.5  # the API service's autoscaling target (infra/terraform prod.tfvars)
REDIS_CPU_TARGET = 0.6
PG_CPU_TARGET = 0.6
PLAYLIST_BYTES = 1313 * 3 + 200  # measured mean encoded lesson x playlist_depth 3, + key/list overhead
LEARNERS_WITH_PLAYLIST = 50_000_000 * 1.5  # daily learners x weekly reach within the 7-day TTL
REDIS_NODE_USABLE_GIB = {"cache.r7g.large": 13.07 * 0.75, "cache.r7g.xlarge": 26.32 * 0.75,
                         "cache.r7g.2xlarge": 52.82 * 0.75}


def figures(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    agg = aggregate(results["http_runs"])
    conns = max(a["connections"] for a in agg)
    return {a["endpoint"]: a["cpu_ms_per_req"] for a in agg if a["connections"] == conns}


def model(cpu: dict[str, dict[str, float]]) -> dict[str, Any]:
    lessons = PEAK_RPS / REQUESTS_PER_LESSON
    rate = {"warm": lessons * WARM_SHARE, "cold": lessons * (1 - WARM_SHARE),
            "answer": lessons * ITEMS_PER_LESSON, "complete": lessons}
    cost = {**cpu, "complete": cpu["answer"]}  # not measured: assumed as costly as an answer
    api_cores = sum(rate[k] * cost[k].get("api", 0) for k in rate) / 1000
    refills = lessons  # every completed lesson fires one refill (coalesced per learner)
    pg_cores = {
        "cold starts": rate["cold"] * cost["cold"].get("postgres", 0) / 1000,
        "refills (assumed = a cold start each)": refills * cost["cold"].get("postgres", 0) / 1000,
        "answers + completes (postgres progress backend)":
            (rate["answer"] + rate["complete"]) * cost["answer"].get("postgres", 0) / 1000,
    }
    redis_cores = rate["warm"] * cost["warm"].get("redis", 0) / 1000
    curator_cores = refills * cost["cold"].get("api", 0) / 1000  # planning in Python ~ a cold start's API CPU
    mem_gib = LEARNERS_WITH_PLAYLIST * PLAYLIST_BYTES / 2**30
    return {
        "rates": rate, "api_cores": api_cores, "api_tasks": math.ceil(api_cores / API_CPU_TARGET),
        "pg_cores": pg_cores, "redis_cores": redis_cores,
        "redis_shards_cpu": math.ceil(redis_cores / REDIS_CPU_TARGET),
        "curator_cores": curator_cores, "curator_tasks": math.ceil(curator_cores / 0.7),
        "playlist_gib": mem_gib,
        "redis_shards_mem": {k: math.ceil(mem_gib / v) for k, v in REDIS_NODE_USABLE_GIB.items()},
    }


def main(argv: list[str]) -> int:
    results = json.loads(Path(argv[0]).read_text())
    cpu = figures(results)
    print(json.dumps({"cpu_ms_per_req": cpu, **model(cpu)}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
