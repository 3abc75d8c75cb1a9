"""The learner's own data (GDPR): a reset, an export of everything, and erasure (the profile is in
serving.routes)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.openapi.spec import OpenAPIHeader, OpenAPIType, Schema

from serving.progress import ProgressService
from serving.routes import CourseQuery
from shared.http import AUTHED, Documented, documented, errors, learner


def progress(request: Request[Any, Any, Any]) -> ProgressService:
    return request.app.state.progress  # type: ignore[no-any-return]


@post("/v1/me/reset", status_code=200, summary="Start over: forget the learner's model",
      description="Forgets mastery, review schedules, which questions the learner has seen and their "
                  "precomputed lessons — for one course (`?course=`) or all. The answer history stays "
                  "(see the export); the next lesson is planned from scratch. A refill already running "
                  "cannot write a playlist planned from the model as it was before the reset.",
      responses=errors(400, 404, *AUTHED), tags=["me"], operation_class=Documented)
async def reset_me(request: Request[Any, Any, Any], course: CourseQuery = None) -> dict[str, Any]:
    who = learner(request)
    return await progress(request).reset(who.sub, course)


ATTACHMENT = OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING, pattern="^attachment; filename="), required=True,
                           description='`attachment; filename="lessonloop-<learner>.json"`')


@get("/v1/me/export", summary="Everything stored about the learner, as JSON",
     description="Right of access and portability: lessons, what they have seen, every answer event, the "
                 "model's state per course and per skill — from every store that holds them.",
     responses=errors(*AUTHED), tags=["me"], operation_class=documented({200: {"Content-Disposition": ATTACHMENT}}))
async def export_me(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    who = learner(request)
    data = await progress(request).export(who.sub)
    return Response(data, headers={"Content-Disposition": f'attachment; filename="lessonloop-{who.sub}.json"'})


@delete("/v1/me", status_code=200, summary="Erase the learner everywhere (right to be forgotten)",
        description="Deletes the learner's lessons, answers, model state and seen questions in PostgreSQL, "
                    "their playlists of every course and queued refills in Redis, and their items in the "
                    "DynamoDB progress table when that backend is on. A refill already running cannot write a "
                    "playlist for them again. Idempotent: erasing twice succeeds.",
        responses=errors(*AUTHED), tags=["me"], operation_class=Documented)
async def erase_me(request: Request[Any, Any, Any]) -> dict[str, Any]:
    who = learner(request)
    return await progress(request).erase(who.sub)


ROUTES = [reset_me, export_me, erase_me]
"""`GET /v1/me/profile` lives in serving.routes."""
