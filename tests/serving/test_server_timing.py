"""Server-Timing on the lesson start: `app;dur` always, `cpuwait;dur` (the part spent waiting for a
CPU) only when the benchmark diagnostic is on; the popped lesson goes out exactly as the curator
wrote it, without the element's question-id header. Nothing absolute is timed."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from curator.playlist_writer import replace_playlist
from shared.runtime import Endpoints
from tests.helpers import api_client, auth

COURSE = "spanish-a1-b1"


def _lesson(learner: str) -> dict[str, Any]:
    return {"lesson_id": str(uuid.uuid4()), "learner_id": learner, "course": COURSE, "source": "warm",
            "items": [{"item_id": "1", "question_id": str(uuid.uuid4()), "skill": "greetings", "type": "cloze",
                       "prompt": "¿Qué tal?"}]}


def _queue(eps: Endpoints, learner: str, lessons: list[dict[str, Any]]) -> None:
    async def run() -> None:
        r = aioredis.Redis.from_url(eps.redis_url)
        try:
            await replace_playlist(r, learner, COURSE, lessons)
        finally:
            await r.aclose()

    asyncio.run(run())


def _timings(header: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"(\w+);dur=([\d.]+)", header)}


@pytest.mark.parametrize("cpu_wait", [False, True])
def test_lesson_start_server_timing(curriculum: dict[str, Any], clean: Endpoints, monkeypatch: pytest.MonkeyPatch,
                                    cpu_wait: bool) -> None:
    learner = f"st-{uuid.uuid4().hex[:6]}"
    lesson = _lesson(learner)
    _queue(clean, learner, [lesson, _lesson(learner)])
    if cpu_wait:
        monkeypatch.setenv("LESSONLOOP_SERVING_SERVER_TIMING_CPU_WAIT", "1")
    with api_client() as client:
        r = client.post(f"/v1/courses/{COURSE}/lessons", headers=auth("learner", learner))
    assert r.status_code == 200, r.text
    assert r.headers["x-lesson-source"] == "warm"
    assert json.loads(r.content) == lesson  # the stored JSON as it was, header cut off by the pop script
    timings = _timings(r.headers["server-timing"])
    assert timings["app"] > 0
    if cpu_wait:
        assert 0 <= timings["cpuwait"] <= timings["app"]
    else:
        assert set(timings) == {"app"}
