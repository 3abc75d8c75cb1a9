"""schemathesis against the OpenAPI document of the real server, for every /v1 and operations route:
no 5xx, no undocumented status, bodies and headers conforming to their schemas, schema-valid data
accepted and schema-invalid data rejected.

Random ids name nothing, so on their own the learner's success paths would never be reached. The
fixture seeds what they need — a bank, a served lesson to answer, another to complete, a
precomputed playlist — and schemathesis sends those ids once each as OpenAPI examples and draws
them for part of its fuzzed cases (its dictionaries); `test_success_paths_were_checked` then proves
each of those 200s was generated and validated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

from shared.runtime import Endpoints
from shared.settings import get_settings
from tests.helpers import STAFF, LiveServer, api_client, auth, generate_and_accept, run_worker, seed_bank

COURSE = "spanish-a1-b1"
LEARNER = "fuzz-learner"
ERASER = "fuzz-eraser"
"""Reset, export and erasure run as another learner: the lessons seeded for LEARNER stay."""
EXAMPLE_ITEM = "5"
"""The answer lesson's item the example answers (the fuzzer's draws answer the others)."""
LEARNER_PATHS = ("/v1/courses/{course}/lessons", "/v1/lessons/", "/v1/me/profile")
ERASER_PATHS = ("/v1/me",)
FREE_FORM_BODIES = ("/v1/generation-jobs", "/v1/staging/{item_id}/decision", "/v1/questions/{question_id}/retire",
                    "/v1/questions/{question_id}/correct")
"""positive_data_acceptance is off for these: their body is documented as any object and checked by
the handler (a job spec, a decision, a correction, a retirement reason), so most schema-valid bodies
are rightly 400s. Typed request bodies would let the check on."""
SEEN: Counter[tuple[str, int, str | None]] = Counter()
"""(operation, status, X-Lesson-Source) of every response that passed every check."""


@dataclass
class Seeded:
    url: str
    answer_lesson: dict[str, Any]
    """A cold lesson, served: its items are answered by the fuzzer."""
    complete_lesson: dict[str, Any]
    """A warm lesson, one item answered: completed by the fuzzer."""


def _start(client: Any) -> dict[str, Any]:
    r = client.post(f"/v1/courses/{COURSE}/lessons", headers=auth("learner", LEARNER))
    assert r.status_code == 200, r.text
    return {**r.json(), "source_header": r.headers["x-lesson-source"]}


@pytest.fixture(scope="module")
def seeded(stores: Endpoints) -> Iterator[Seeded]:
    from factory.offline.curriculum_file import load_curriculum
    from tests.conftest import load_curriculum_into, wipe

    with pytest.MonkeyPatch.context() as env:
        # The fuzzer is one learner sending hundreds of requests a second: the per-learner limit would
        # answer most of them 429 (tests/abuse checks the limits). Two lessons per playlist: one is
        # popped below, so the fuzzer's first lesson start is warm and the next ones cold.
        env.setenv("LESSONLOOP_SERVING_RATE_PER_LEARNER", "0")
        env.setenv("LESSONLOOP_SERVING_PLAYLIST_DEPTH", "2")
        # The schema can state only the answer's hard cap (AnswerIn), not this setting below it (default
        # 500): at the cap the two agree, and positive_data_acceptance checks the rest of the body.
        env.setenv("LESSONLOOP_SERVING_MAX_ANSWER_CHARS", "10000")
        wipe(stores)
        curriculum = load_curriculum()
        load_curriculum_into(stores, curriculum)
        seed_bank(stores.database_url, curriculum, ["greetings", "numbers", "articles-gender"], per_skill=30)
        with api_client() as client:
            generate_and_accept(client, COURSE, ["greetings", "numbers"], count=20)  # jobs and staged items
            answer_lesson = _start(client)
            assert answer_lesson["source_header"] == "cold"
            assert run_worker("curator") == 1  # the cold start's refill: the playlist
            complete_lesson = _start(client)
            assert complete_lesson["source_header"] == "warm"
            r = client.post(f"/v1/lessons/{complete_lesson['lesson_id']}/answers", headers=auth("learner", LEARNER),
                            json={"item_id": "1", "answer": "hola", "attempt_id": "seed-1", "response_ms": 1500})
            assert r.status_code == 200, r.text
        server = LiveServer().start()
        try:
            yield Seeded(server.url, answer_lesson, complete_lesson)
        finally:
            server.stop()
    get_settings.cache_clear()


def _with_examples(raw: dict[str, Any], seeded: Seeded) -> dict[str, Any]:
    """The seeded ids as OpenAPI examples: the examples phase sends each once, so every success path
    is reached whatever the fuzzing draws (which also use them: the dictionaries below)."""
    def param(method: str, path: str, name: str, value: Any) -> dict[str, Any]:
        operation: dict[str, Any] = raw["paths"][path][method]
        (found,) = [p for p in operation["parameters"] if p["name"] == name]
        found["example"] = value
        return operation

    param("get", "/v1/courses/{course}", "course", COURSE)
    param("post", "/v1/courses/{course}/lessons", "course", COURSE)
    param("get", "/v1/me/profile", "course", COURSE)
    param("post", "/v1/lessons/{lesson_id}/complete", "lesson_id", seeded.complete_lesson["lesson_id"])
    answers = param("post", "/v1/lessons/{lesson_id}/answers", "lesson_id", seeded.answer_lesson["lesson_id"])
    answers["requestBody"]["content"]["application/json"]["example"] = {
        "item_id": EXAMPLE_ITEM, "answer": "hola", "attempt_id": "example", "response_ms": 1200}
    return raw


@pytest.fixture(scope="module")
def api_schema(seeded: Seeded) -> Any:
    config = SchemathesisConfig.from_dict({
        "base-url": seeded.url,
        "dictionaries": {
            "course": {"values": [COURSE]},
            "answer_lesson": {"values": [seeded.answer_lesson["lesson_id"]]},
            "answer_items": {"values": [item["item_id"] for item in seeded.answer_lesson["items"]
                                        if item["item_id"] != EXAMPLE_ITEM]},
            "complete_lesson": {"values": [seeded.complete_lesson["lesson_id"]]},
        },
        "parameters": {"path.course": {"dictionary": "course", "probability": 0.6},
                       "query.course": {"dictionary": "course", "probability": 0.5}},
        "operations": [
            *({"include-path": path, "include-method": "POST",
               "checks": {"positive_data_acceptance": {"enabled": False}}} for path in FREE_FORM_BODIES),
            {"include-path": "/v1/lessons/{lesson_id}/answers",
             "parameters": {"path.lesson_id": {"dictionary": "answer_lesson", "probability": 0.7},
                            "body.item_id": {"dictionary": "answer_items", "probability": 0.7}}},
            {"include-path": "/v1/lessons/{lesson_id}/complete",
             "parameters": {"path.lesson_id": {"dictionary": "complete_lesson", "probability": 0.7}}},
        ],
    })
    raw = httpx.get(f"{seeded.url}/schema/openapi.json").raise_for_status().json()
    return schemathesis.openapi.from_dict(_with_examples(raw, seeded), config=config).include(
        path_regex="^/(v1/|healthz$|readyz$|metrics$)")


schema = schemathesis.pytest.from_fixture("api_schema")


def _authorize(case: Any) -> None:
    """Swap the generated bearer token for a real one — unless the headers are what this case makes
    invalid (a missing or malformed Authorization must stay so and get its 401)."""
    component = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    if not (case.headers and "Authorization" in case.headers) or (component and component.mode.is_negative):
        return
    path = case.operation.path
    if any(path.startswith(p) for p in LEARNER_PATHS):
        who = ("learner", LEARNER)
    elif any(path.startswith(p) for p in ERASER_PATHS):
        who = ("learner", ERASER)
    else:
        who = STAFF
    case.headers["Authorization"] = auth(*who)["Authorization"]


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms(case: Any) -> None:
    _authorize(case)
    response = case.call()
    # Excluded: allow_header_conformance (litestar's OPTIONS answers per handler, not per path).
    case.validate_response(response, excluded_checks=[checks.allow_header_conformance])
    source = {k.lower(): v for k, v in response.headers.items()}.get("x-lesson-source", [None])[0]
    SEEN[(f"{case.method} {case.operation.path}", response.status_code, source)] += 1


def test_success_paths_were_checked() -> None:
    """Each learner success path answered 200 to the fuzzer (test_api_conforms, just before) at least
    once, and that response passed every check, body and header schemas included: warm and cold
    lesson starts, answers, completion, the profile; a course by id and the readiness report."""
    ok = {(op, source) for (op, status, source), n in SEEN.items() if status == 200 and n}
    wanted = {("POST /v1/courses/{course}/lessons", "warm"), ("POST /v1/courses/{course}/lessons", "cold"),
              ("POST /v1/lessons/{lesson_id}/answers", None), ("POST /v1/lessons/{lesson_id}/complete", None),
              ("GET /v1/me/profile", None), ("GET /v1/courses/{course}", None), ("GET /readyz", None)}
    assert wanted <= ok, f"never answered 200 and checked: {sorted(wanted - ok, key=str)}"


def test_response_headers_are_documented() -> None:
    """The headers the API sends are in the document, including on statuses the fuzzer never
    provokes (429, 503): Retry-After on every 429 and on the error 503s, WWW-Authenticate on every
    401, Location on the 202, Server-Timing and X-Lesson-Source on the lesson start."""
    from lessonloop.app import create_app

    document = create_app(get_settings()).openapi_schema.to_schema()
    operations = {f"{method.upper()} {path}": op for path, item in document["paths"].items()
                  for method, op in item.items()}
    assert {"GET /v1/ping", "GET /healthz", "GET /readyz", "GET /metrics"} <= set(operations)

    def required(op: str, status: str) -> set[str]:
        headers = operations[op]["responses"][status].get("headers") or {}
        return {name for name, header in headers.items() if header.get("required") and header.get("schema")}

    for op, spec in operations.items():
        responses = spec["responses"]
        assert "Retry-After" in required(op, "429"), f"{op}: the per-address limit answers every route"
        if "401" in responses:
            assert "WWW-Authenticate" in required(op, "401"), op
        if "503" in responses and op != "GET /readyz":  # /readyz's 503 is its report, not an error
            assert "Retry-After" in required(op, "503"), op
    assert required("POST /v1/courses/{course}/lessons", "200") == {"Server-Timing", "X-Lesson-Source"}
    assert required("POST /v1/generation-jobs", "202") == {"Location"}
