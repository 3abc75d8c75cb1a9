"""Prometheus metrics, one registry per process (served at /metrics by the API, and by each worker on its
own port: shared/metrics_endpoint.py)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()
_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)

LESSONS = Counter("lessonloop_lessons_total", "Lessons served, by source (warm|cold).", ["source"], registry=REGISTRY)
WARM_MISSES = Counter("lessonloop_warm_misses_total", "Lesson starts that found no precomputed lesson.",
                      registry=REGISTRY)
RETIRED_DROPPED = Counter("lessonloop_retired_items_dropped_total",
                          "Items dropped at pop time because their question was retired.", registry=REGISTRY)
POP_SECONDS = Histogram("lessonloop_pop_seconds", "Warm-path Redis pop latency.", buckets=_FAST, registry=REGISTRY)
COLD_SECONDS = Histogram("lessonloop_cold_path_seconds", "Cold-path lesson build latency.", buckets=_FAST,
                         registry=REGISTRY)
ANSWERS = Counter("lessonloop_answers_total", "Answers recorded, by outcome.", ["correct"], registry=REGISTRY)
ERRORS = Counter("lessonloop_http_errors_total", "Error responses by route and status.", ["route", "status"],
                 registry=REGISTRY)
QUEUE_DEPTH = Gauge("lessonloop_queue_depth", "Jobs waiting per queue.", ["queue"], registry=REGISTRY)
REFILLS = Counter("lessonloop_refills_enqueued_total", "Refill triggers by reason.", ["reason"], registry=REGISTRY)
STORE_DOWN = Counter("lessonloop_store_unavailable_total", "Requests that met an unavailable store.", ["store"],
                     registry=REGISTRY)
DROPPED_TRIGGERS = Counter("lessonloop_dropped_triggers_total", "Malformed or unknown refill triggers dropped.",
                           ["reason"], registry=REGISTRY)
WORKER_RESTARTS = Counter("lessonloop_worker_restarts_total",
                          "Worker runs ended by an unavailable store and started again in-process.", ["kind"],
                          registry=REGISTRY)

# Pre-bound children for the hot path (labels() is a dict lookup plus a lock per call).
WARM_LESSONS = LESSONS.labels("warm")
COLD_LESSONS = LESSONS.labels("cold")
