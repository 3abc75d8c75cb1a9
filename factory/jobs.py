"""Generation job specs: validation (every error names its field), fan-out into batches, creation."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from psycopg import AsyncConnection
from redis.asyncio import Redis

from factory.schemas import QUESTION_TYPES
from shared import constants
from shared.db import courses, jobs
from shared.errors import BadInput, NotFound
from shared.settings import FactorySettings

LEVELS = ("A1", "A2", "B1", "B2", "C1", "C2")
MAX_SKILLS = 100
CANCEL_FLAG_TTL_S = 7 * 24 * 3600
"""A job's cancel flag outlives anything still running for it."""


def check_spec(spec: dict[str, Any], cfg: FactorySettings) -> dict[str, Any]:
    """Normalise a job spec or raise BadInput naming the field."""
    count = spec.get("count")
    if not isinstance(count, int) or isinstance(count, bool):
        raise BadInput("count: must be an integer", field="count")
    if count <= 0 or count > cfg.max_job_count:
        raise BadInput(f"count: must be between 1 and {cfg.max_job_count}", field="count")
    skills = spec.get("skills")
    if not isinstance(skills, list) or not skills or not all(isinstance(s, str) for s in skills):
        raise BadInput("skills: must be a non-empty list of skill ids", field="skills")
    if len(skills) > MAX_SKILLS:
        raise BadInput(f"skills: at most {MAX_SKILLS}", field="skills")
    level = spec.get("level")
    if level is not None and level not in LEVELS:
        raise BadInput(f"level: must be one of {', '.join(LEVELS)}", field="level")
    topic = spec.get("topic")
    if topic is not None:
        if not isinstance(topic, str):
            raise BadInput("topic: must be a string", field="topic")
        if len(topic) > cfg.max_topic_chars:
            raise BadInput(f"topic: longer than {cfg.max_topic_chars} characters", field="topic")
    types = spec.get("types") or list(QUESTION_TYPES)
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise BadInput("types: must be a list of question types", field="types")
    unknown = [t for t in types if t not in QUESTION_TYPES]
    if unknown:
        raise BadInput(f"types: unknown question type '{unknown[0]}' (known: {', '.join(QUESTION_TYPES)})",
                       field="types")
    budget = spec.get("budget_usd")
    if budget is not None and (not isinstance(budget, int | float) or isinstance(budget, bool) or budget <= 0):
        raise BadInput("budget_usd: must be a positive number", field="budget_usd")
    deadline = spec.get("deadline_s")
    if deadline is not None and (not isinstance(deadline, int) or isinstance(deadline, bool) or deadline <= 0):
        raise BadInput("deadline_s: must be a positive number of seconds", field="deadline_s")
    course = spec.get("course")
    if not isinstance(course, str) or not course:
        raise BadInput("course: required", field="course")
    return {"course": course, "skills": list(dict.fromkeys(skills)), "count": count, "level": level,
            "topic": topic, "types": list(dict.fromkeys(types)), "language": spec.get("language"),
            "budget_usd": budget, "deadline_s": deadline}


def fan_out(skills: list[str], count: int, batch_size: int) -> list[tuple[str, int]]:
    """Spread `count` items over the skills, cut each skill's share into batches, and interleave the
    skills (A B C A B C ...): batches run in about this order, and batches of one skill staged at
    the same moment queue for that skill's de-duplication lock."""
    share, extra = divmod(count, len(skills))
    per_skill: list[list[tuple[str, int]]] = []
    for i, skill in enumerate(skills):
        n = share + (1 if i < extra else 0)
        cut: list[tuple[str, int]] = []
        while n > 0:
            cut.append((skill, min(batch_size, n)))
            n -= batch_size
        per_skill.append(cut)
    return [b for rnd in itertools.zip_longest(*per_skill) for b in rnd if b is not None]


async def create_job(conn: AsyncConnection[Any], spec: dict[str, Any], cfg: FactorySettings, *,
                     created_by: str) -> tuple[uuid.UUID, int]:
    """Insert the job and its batches in the caller's transaction; returns (job id, batch count)."""
    spec = check_spec(spec, cfg)
    course = await courses.get_course(conn, spec["course"])
    if course is None:
        raise NotFound(f"course: unknown course '{spec['course']}'", field="course")
    known = {s["id"] for s in await courses.list_skills(conn, spec["course"])}
    missing = [s for s in spec["skills"] if s not in known]
    if missing:
        raise BadInput(f"skills: unknown skill '{missing[0]}' in course '{spec['course']}'", field="skills")
    spec["language"] = spec["language"] or course["language"]
    batches = fan_out(spec["skills"], spec["count"], cfg.batch_size)
    job_id = uuid.uuid4()
    await jobs.create_job(conn, job_id=job_id, course_id=spec["course"], spec=spec, batches=batches,
                          created_by=created_by)
    return job_id, len(batches)


async def set_cancel_flag(redis: Redis, job_id: uuid.UUID | str) -> None:
    """Raise the flag the router checks before every call: a cancelled job's batches stop calling."""
    await redis.set(constants.job_cancel_key(str(job_id)), "1", ex=CANCEL_FLAG_TTL_S)
