"""The learner-facing HTTP routes (see the contract in docs/api.md)."""

from __future__ import annotations

import time
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter

from serving.lessons import LessonStarter, lesson_json
from serving.progress import ProgressService, check_answer_body
from shared.db import courses
from shared.errors import NotFound
from shared.http import learner, principal, services

Course = Annotated[str, PathParameter(pattern=r"^[a-z0-9][a-z0-9-]{0,47}$", max_length=48)]


class AnswerIn(msgspec.Struct, forbid_unknown_fields=True):
    item_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    answer: Annotated[str, msgspec.Meta(max_length=10_000)]
    attempt_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    response_ms: Annotated[int, msgspec.Meta(ge=0, le=86_400_000)]


class AnswerOut(msgspec.Struct):
    correct: bool
    expected: str
    feedback: str
    attempt_id: str
    duplicate: bool = False


def starter(request: Request[Any, Any, Any]) -> LessonStarter:
    return request.app.state.starter  # type: ignore[no-any-return]


def progress(request: Request[Any, Any, Any]) -> ProgressService:
    return request.app.state.progress  # type: ignore[no-any-return]


@get("/v1/courses", summary="Courses with their skills")
async def list_courses(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    principal(request)
    async with services(request).pool.connection() as conn:
        out = []
        for c in await courses.list_courses(conn):
            out.append({**c, "skills": await courses.list_skills(conn, c["id"])})
    return out


@get("/v1/courses/{course:str}", summary="One course with its skills")
async def get_course(request: Request[Any, Any, Any], course: Course) -> dict[str, Any]:
    principal(request)
    async with services(request).pool.connection() as conn:
        found = await courses.get_course(conn, course)
        if found is None:
            raise NotFound(f"course '{course}' not found", field="course")
        return {**found, "skills": await courses.list_skills(conn, course)}


@post("/v1/courses/{course:str}/lessons", status_code=200, summary="Start the next lesson",
      description="Warm: one Redis pop of a precomputed lesson. Cold: a fast SQL lesson, and a refill is queued.",
      responses={404: "unknown course", 409: "no questions available yet"})
async def start_lesson(request: Request[Any, Any, Any], course: Course) -> Response[bytes]:
    t0 = time.perf_counter()
    who = learner(request)
    lesson, source = await starter(request).start(who.sub, course)
    dur_ms = (time.perf_counter() - t0) * 1000
    return Response(lesson_json(lesson), media_type="application/json",
                    headers={"Server-Timing": f"app;dur={dur_ms:.3f}", "X-Lesson-Source": source})


@post("/v1/lessons/{lesson_id:uuid}/answers", status_code=200, summary="Answer one item",
      description="Durable before the reply; the same attempt_id twice records one answer.")
async def answer(request: Request[Any, Any, Any], lesson_id: FromPath[UUID], data: JSONBody[AnswerIn]) -> AnswerOut:
    who = learner(request)
    svc = progress(request)
    body = msgspec.structs.asdict(data)
    check_answer_body(body, svc.services.settings.serving.max_answer_chars)
    return AnswerOut(**await svc.answer(who.sub, lesson_id, body))


@post("/v1/lessons/{lesson_id:uuid}/complete", status_code=200, summary="Complete a lesson (fires the refill)")
async def complete(request: Request[Any, Any, Any], lesson_id: FromPath[UUID]) -> dict[str, Any]:
    who = learner(request)
    return await progress(request).complete(who.sub, lesson_id)


@get("/v1/me/profile", summary="The learner's model: mastery per skill, due reviews, counts")
async def my_profile(request: Request[Any, Any, Any],
                  course: Annotated[str | None, QueryParameter(max_length=48)] = None) -> dict[str, Any]:
    who = learner(request)
    return await progress(request).profile(who.sub, course)


ROUTES = [list_courses, get_course, start_lesson, answer, complete, my_profile]
