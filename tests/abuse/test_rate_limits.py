"""Per-learner and per-address rate limits (token buckets, burst = 2 × rate): the request over the
burst gets 429 with a Retry-After and a JSON detail; other learners are not affected by one learner's
flood; tokens come back at the rate."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from litestar.testing import TestClient

from shared.runtime import Endpoints
from tests.abuse.conftest import needs_setting
from tests.helpers import auth

ClientWith = Callable[..., AbstractContextManager[TestClient[Any]]]


def assert_throttled(r: Any) -> None:
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) >= 1
    body = r.json()
    assert body["status_code"] == 429 and "too many requests" in body["detail"]


@needs_setting("rate_per_learner")
def test_one_learner_is_throttled_and_others_are_not(bank: Endpoints, client_with: ClientWith) -> None:
    with client_with(rate_per_learner=2) as client:  # burst 4
        a, b = auth("learner", "flooder"), auth("learner", "bystander")
        assert [client.get("/v1/courses", headers=a).status_code for _ in range(4)] == [200] * 4
        assert_throttled(client.get("/v1/courses", headers=a))
        # Every authenticated route shares the learner's bucket, the lesson API included.
        assert_throttled(client.post("/v1/courses/spanish-a1-b1/lessons", headers=a))
        assert client.get("/v1/courses", headers=b).status_code == 200
        assert client.get("/v1/ping").status_code == 200  # public routes carry no subject
        time.sleep(0.6)  # one token back after 1 / rate = 0.5 s
        assert client.get("/v1/courses", headers=a).status_code == 200


@needs_setting("rate_per_learner")
def test_a_lesson_start_counts_once_whichever_path_serves_it(bank: Endpoints, client_with: ClientWith) -> None:
    """A learner with no playlist: the warm lane checks the token and the limit, pops, misses, and
    the route builds the cold lesson with the lane's principal — one token per request, not two."""
    with client_with(rate_per_learner=1) as client:  # burst 2
        a = auth("learner", "cold-starter")
        starts = [client.post("/v1/courses/spanish-a1-b1/lessons", headers=a) for _ in range(2)]
        assert [(r.status_code, r.headers.get("x-lesson-source")) for r in starts] == [(200, "cold")] * 2
        assert_throttled(client.post("/v1/courses/spanish-a1-b1/lessons", headers=a))


@needs_setting("rate_per_ip")
def test_one_address_is_throttled_whatever_tokens_it_uses(bank: Endpoints, client_with: ClientWith) -> None:
    with client_with(rate_per_ip=3) as client:  # burst 6
        codes = [client.get("/v1/courses", headers=auth("learner", f"sybil-{i}")).status_code for i in range(6)]
        assert codes == [200] * 6
        assert_throttled(client.get("/v1/courses", headers=auth("learner", "sybil-new")))
        assert_throttled(client.get("/v1/ping"))  # before any other work, public routes too
        time.sleep(0.4)
        assert client.get("/v1/ping").status_code == 200


@needs_setting("rate_per_learner")
def test_limits_off_at_zero(bank: Endpoints, client_with: ClientWith) -> None:
    with client_with(rate_per_learner=0, rate_per_ip=0) as client:
        a = auth("learner", "heavy-user")
        assert {client.get("/v1/courses", headers=a).status_code for _ in range(60)} == {200}
