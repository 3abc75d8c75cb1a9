"""The curator worker's arq task: refill one learner's playlist. Malformed or unknown-course
triggers are dropped with a logged reason and a metric — never a crash loop."""

from __future__ import annotations

import logging
import re
from typing import Any

from curator.learner_model import LearnerModel
from curator.refill import CuratorDeps
from curator.refill import refill as _refill
from shared import metrics
from shared.runtime import resolve_endpoints
from shared.services import Services
from shared.settings import get_settings

log = logging.getLogger(__name__)
_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    services = await Services.open(settings, resolve_endpoints(settings)[0])
    ctx["services"] = services
    ctx["deps"] = CuratorDeps(settings=settings, pool=services.pool, playlist_redis=services.redis,
                              model=LearnerModel.load(settings.curator.model_params))


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["services"].close()


async def refill(ctx: dict[str, Any], learner_id: Any = None, course_id: Any = None) -> int:
    deps: CuratorDeps = ctx["deps"]
    if not isinstance(learner_id, str) or not _ID.match(learner_id) or not isinstance(course_id, str):
        metrics.DROPPED_TRIGGERS.labels("malformed").inc()
        log.warning("refill trigger dropped: malformed", extra={"learner": repr(learner_id)[:64],
                                                                 "course": repr(course_id)[:64]})
        return 0
    if not await deps.skills(course_id):
        metrics.DROPPED_TRIGGERS.labels("unknown_course").inc()
        log.warning("refill trigger dropped: unknown course", extra={"course": course_id[:64]})
        return 0
    return await _refill(deps, learner_id, course_id)
