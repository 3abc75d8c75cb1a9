"""The warm lesson start, answered in front of the framework (a lane of shared.asgi.App).

On a warm hit, `POST /v1/courses/{course}/lessons` costs a token-cache lookup, the per-learner
limit and one Redis round trip; litestar's routing, middleware and parameter parsing are skipped
(at a tenth of capacity they were about half of the request's server time and most of its tail:
docs/api.md). Everything else goes on to the litestar route (serving.routes.start_lesson), which
stays the one definition of the endpoint for the OpenAPI document and the one place errors are
answered:
- a token the verifier or the limiter rejects: nothing was popped; the route checks it again and
  answers 401/403/429 the usual way (a rejected check has no side effect, so nothing is counted twice);
- a miss (no playlist, Redis down, every item retired): the route gets the principal and a mark
  that the pop already missed, and builds the cold lesson without a second pop.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from serving.lessons import LessonStarter
from serving.raw_response import RawJSON
from shared import metrics, server_timing
from shared.errors import LessonloopError
from shared.http import learner_from_scope
from shared.ids import COURSE_ID

log = logging.getLogger(__name__)
INTERNAL_ERROR = json.dumps({"status_code": 500, "detail": "internal error"}).encode()
PREFIX, SUFFIX = "/v1/courses/", "/lessons"
PRINCIPAL_KEY = "lessonloop.principal"
"""Scope key: the learner the lane authenticated (and counted against the per-learner limit)."""
MISSED_KEY = "lessonloop.warm_missed"
"""Scope key: the lane popped and found no lesson; the route goes straight to the cold path."""


class WarmLane:
    def __init__(self, starter: LessonStarter) -> None:
        self.starter = starter

    async def __call__(self, scope: Any, receive: Any, send: Any) -> bool:
        path: str = scope["path"]
        if scope["method"] != "POST" or not path.startswith(PREFIX) or not path.endswith(SUFFIX):
            return False
        course = path[len(PREFIX):-len(SUFFIX)]
        if not COURSE_ID.fullmatch(course):
            return False
        try:
            who = learner_from_scope(scope)
        except LessonloopError:
            return False
        try:
            started = await self.starter.warm_start(who.sub, course)
        except Exception:  # a bug, not a store outage (the pop handles those): answered as the route would
            log.exception("unhandled error on POST %s", path)
            metrics.ERRORS.labels("start_lesson", "500").inc()
            await RawJSON(INTERNAL_ERROR, [], status=500)(scope, receive, send)
            return True
        if started is None:
            scope[PRINCIPAL_KEY] = who
            scope[MISSED_KEY] = True
            return False
        await self.starter.response(who.sub, course, started, server_timing.started(scope))(scope, receive, send)
        return True
