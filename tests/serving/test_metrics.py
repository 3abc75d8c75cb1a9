"""/metrics follows real traffic: every series docs/api.md promises (Observability) is read from the
endpoint, parsed as Prometheus text, before and after a cold start, a warm start, an answer and an
error sent through the application."""

from __future__ import annotations

import uuid
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from shared.runtime import Endpoints
from tests.helpers import api_client, auth, run_worker, seed_bank

COURSE = "spanish-a1-b1"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: Any) -> Samples:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str) -> float:
    """Summed over every label set."""
    return sum(v for (n, _), v in samples.items() if n == name)


def test_series_move_with_traffic(curriculum: dict[str, Any], clean: Endpoints) -> None:
    seed_bank(clean.database_url, curriculum, ["greetings", "numbers"], per_skill=12)
    me = auth("learner", f"metrics-{uuid.uuid4().hex[:8]}")
    with api_client() as client:
        before = scrape(client)

        cold = client.post(f"/v1/courses/{COURSE}/lessons", headers=me)
        assert (cold.status_code, cold.headers["x-lesson-source"]) == (200, "cold"), cold.text
        queued = scrape(client)  # the cold start's refill, not run yet

        assert run_worker("curator") == 1
        warm = client.post(f"/v1/courses/{COURSE}/lessons", headers=me)
        assert (warm.status_code, warm.headers["x-lesson-source"]) == (200, "warm"), warm.text
        lesson = warm.json()
        r = client.post(f"/v1/lessons/{lesson['lesson_id']}/answers", headers=me, json={
            "item_id": lesson["items"][0]["item_id"], "answer": "hola", "attempt_id": "a-1", "response_ms": 1500})
        assert r.status_code == 200, r.text
        r = client.post(f"/v1/lessons/{uuid.uuid4()}/answers", headers=me, json={
            "item_id": "1", "answer": "hola", "attempt_id": "a-2", "response_ms": 1500})
        assert r.status_code == 404, r.text
        after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # Lessons by source, and the misses: the warm-hit ratio.
    assert moved("lessonloop_lessons_total", source="warm") == 1
    assert moved("lessonloop_lessons_total", source="cold") == 1
    assert moved("lessonloop_warm_misses_total") == 1
    assert moved("lessonloop_refills_enqueued_total", reason="cold_miss") == 1
    # Pop latency: the cold start's pop (it missed) and the warm one.
    assert moved("lessonloop_pop_seconds_count") == 2
    assert moved("lessonloop_pop_seconds_bucket", le="+Inf") == 2
    assert moved("lessonloop_pop_seconds_sum") > 0
    # Cold-path latency: one lesson built from SQL.
    assert moved("lessonloop_cold_path_seconds_count") == 1
    assert moved("lessonloop_cold_path_seconds_sum") > 0
    # Queue depth, read from the queue Redis at each scrape: the refill waiting, then run.
    assert value(queued, "lessonloop_queue_depth", queue="refill_check") == 1
    assert value(after, "lessonloop_queue_depth", queue="refill_check") == 0
    assert ("lessonloop_queue_depth", (("queue", "generation_jobs"),)) in after
    # Answers, and errors by route and status.
    assert total(after, "lessonloop_answers_total") - total(before, "lessonloop_answers_total") == 1
    assert moved("lessonloop_http_errors_total", route="answer", status="404") == 1
    assert total(after, "lessonloop_http_errors_total") - total(before, "lessonloop_http_errors_total") == 1
