"""The learner-facing HTTP routes (see the contract in docs/api.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Request, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIHeader, OpenAPIType, Schema
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter
from litestar.types import ASGIApp, Scope

from serving import warm_lane
from serving.lessons import LessonStarter
from serving.progress import ProgressService, check_answer_body
from shared import server_timing
from shared.db import courses
from shared.errors import NotFound
from shared.http import (
    AUTHED,
    NO_NUL,
    Documented,
    documented,
    errors,
    learner,
    learner_from_scope,
    principal,
    services,
)
from shared.ids import COURSE_ID_MAX, COURSE_ID_PATTERN

Course = Annotated[str, PathParameter(pattern=COURSE_ID_PATTERN, max_length=COURSE_ID_MAX)]


class AnswerIn(msgspec.Struct, forbid_unknown_fields=True):
    item_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=NO_NUL)]
    answer: Annotated[str, msgspec.Meta(max_length=10_000, pattern=NO_NUL, description=(
        "At most `LESSONLOOP_SERVING_MAX_ANSWER_CHARS` characters (default 500; longer is a 400); 10,000 "
        "whatever the setting."))]
    attempt_id: Annotated[str, msgspec.Meta(
        min_length=1, max_length=128, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$",
        description="Not blank: the same attempt_id twice records one answer.")]
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


class SkillOut(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    name: str
    level: str
    level_rank: int
    topic: str
    description: str
    prerequisites: list[str]
    target_questions: int


class CourseOut(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    name: str
    language: str
    source_language: str
    description: str
    skills: list[SkillOut]


@get("/v1/courses", summary="Courses with their skills", responses=errors(401, 429, 503),
     operation_class=Documented)
async def list_courses(request: Request[Any, Any, Any]) -> list[CourseOut]:
    principal(request)
    async with services(request).pool.connection() as conn:
        out = []
        for c in await courses.list_courses(conn):
            out.append({**c, "skills": await courses.list_skills(conn, c["id"])})
    return msgspec.convert(out, list[CourseOut])


@get("/v1/courses/{course:str}", summary="One course with its skills", responses=errors(400, 401, 404, 429, 503),
     operation_class=Documented)
async def get_course(request: Request[Any, Any, Any], course: Course) -> CourseOut:
    principal(request)
    async with services(request).pool.connection() as conn:
        found = await courses.get_course(conn, course)
        if found is None:
            raise NotFound(f"course '{course}' not found", field="course")
        return msgspec.convert({**found, "skills": await courses.list_skills(conn, course)}, CourseOut)


class LessonItem(msgspec.Struct):
    item_id: str
    question_id: UUID
    skill: str
    type: str
    prompt: str
    choices: list[str] | None = None


class LessonOut(msgspec.Struct):
    """Documentation only: the lesson goes out as the JSON the curator or the cold path wrote."""

    lesson_id: UUID
    learner_id: str
    course: str
    source: Literal["warm", "cold"]
    items: list[LessonItem]


LESSON_HEADERS = {
    "Server-Timing": OpenAPIHeader(
        schema=Schema(type=OpenAPIType.STRING, pattern=r"^app;dur=[0-9]+(\.[0-9]+)?"), required=True,
        description="`app;dur=<ms>`: the server-side time (with `cpuwait;dur=<ms>` when that diagnostic is on)."),
    "X-Lesson-Source": OpenAPIHeader(
        schema=Schema(type=OpenAPIType.STRING, enum=["warm", "cold"]), required=True,
        description="`warm`: popped from the learner's precomputed playlist; `cold`: planned now from SQL."),
}


@post("/v1/courses/{course:str}/lessons", status_code=200, summary="Start the next lesson",
      description="Warm: one Redis pop of a precomputed lesson (no SQL). Cold: a fast SQL lesson, and a refill "
                  "is queued. The `Server-Timing: app;dur=<ms>` header gives the server-side time, from the "
                  "request reaching the application to the response being handed to the HTTP server.",
      responses={200: ResponseSpec(data_container=LessonOut, description="The lesson, with its questions"),
                 **errors(400, 404, 409, *AUTHED)},
      operation_class=documented({200: LESSON_HEADERS}))
async def start_lesson(scope: Scope, course: Course) -> ASGIApp:
    # The raw scope, not a Request: building a Request object costs more than the Redis pop. Warm
    # hits are answered in front of the framework (serving.warm_lane); what reaches this handler is
    # a miss the lane already authenticated, or a request the lane left to the framework.
    who = scope.get(warm_lane.PRINCIPAL_KEY) or learner_from_scope(scope)
    lessons: LessonStarter = scope["app"].state.starter
    started = await lessons.start(who.sub, course, warm_missed=scope.get(warm_lane.MISSED_KEY, False))
    return lessons.response(who.sub, course, started, server_timing.started(scope))


@post("/v1/lessons/{lesson_id:uuid}/answers", status_code=200, summary="Answer one item",
      description="Durable before the reply; the same attempt_id twice records one answer.",
      responses=errors(400, 404, 409, 413, *AUTHED), operation_class=Documented)
async def answer(request: Request[Any, Any, Any], lesson_id: FromPath[UUID], data: JSONBody[AnswerIn]) -> AnswerOut:
    who = learner(request)
    svc = progress(request)
    body = msgspec.structs.asdict(data)
    check_answer_body(body, svc.services.settings.serving.max_answer_chars)
    return AnswerOut(**await svc.answer(who.sub, lesson_id, body))


class LessonSummary(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    lesson_id: UUID
    course: str
    source: Literal["warm", "cold"]
    items: int
    answered: int
    correct: int
    skills: Annotated[list[str], msgspec.Meta(description="The skills answered in the lesson.")]
    already_completed: Annotated[bool, msgspec.Meta(
        description="The lesson had been completed before: this is the first completion's summary.")] = False


@post("/v1/lessons/{lesson_id:uuid}/complete", status_code=200, summary="Complete a lesson (fires the refill)",
      responses=errors(400, 404, *AUTHED), operation_class=Documented)
async def complete(request: Request[Any, Any, Any], lesson_id: FromPath[UUID]) -> LessonSummary:
    who = learner(request)
    return msgspec.convert(await progress(request).complete(who.sub, lesson_id), LessonSummary)


class SkillProgress(msgspec.Struct, forbid_unknown_fields=True):
    skill: str
    mastery: Annotated[float, msgspec.Meta(ge=0, le=1)]
    attempts: int
    correct: int
    due_at: Annotated[str | None, msgspec.Meta(description="When a review is due (ISO 8601), if scheduled.")]


class ProgressCounts(msgspec.Struct, forbid_unknown_fields=True):
    answers: int
    correct: int
    completed: Annotated[int, msgspec.Meta(description="Lessons completed.")]
    in_progress: Annotated[int, msgspec.Meta(description="Lessons served and not completed.")]


class CourseProgress(msgspec.Struct, forbid_unknown_fields=True):
    course: str
    skills: list[SkillProgress]
    due_reviews: Annotated[list[str], msgspec.Meta(description="Skills whose review is due now.")]
    counts: ProgressCounts


class Profile(msgspec.Struct, forbid_unknown_fields=True):
    learner_id: str
    courses: list[CourseProgress]


CourseQuery = Annotated[str | None, QueryParameter(pattern=COURSE_ID_PATTERN, max_length=COURSE_ID_MAX,
                                                   description="Limit to one course (default: all).")]


@get("/v1/me/profile", summary="The learner's model: mastery per skill, due reviews, counts",
     responses=errors(400, 404, *AUTHED), operation_class=Documented)
async def my_profile(request: Request[Any, Any, Any], course: CourseQuery = None) -> Profile:
    who = learner(request)
    return msgspec.convert(await progress(request).profile(who.sub, course), Profile)


ROUTES = [list_courses, get_course, start_lesson, answer, complete, my_profile]
