"""Courses and their skills (the curriculum)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

LEVEL_RANKS = {"A1": 0, "A2": 1, "B1": 2, "B2": 3, "C1": 4, "C2": 5}

UPSERT_COURSE = """
INSERT INTO courses (id, name, language, source_language, description)
VALUES (%(id)s, %(name)s, %(language)s, %(source_language)s, %(description)s)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, language = EXCLUDED.language,
    source_language = EXCLUDED.source_language, description = EXCLUDED.description, updated_at = now()
"""

UPSERT_SKILL = """
INSERT INTO skills (course_id, id, name, level, level_rank, topic, description, prerequisites, position)
VALUES (%(course_id)s, %(id)s, %(name)s, %(level)s, %(level_rank)s, %(topic)s, %(description)s,
        %(prerequisites)s, %(position)s)
ON CONFLICT (course_id, id) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level,
    level_rank = EXCLUDED.level_rank, topic = EXCLUDED.topic, description = EXCLUDED.description,
    prerequisites = EXCLUDED.prerequisites, position = EXCLUDED.position
"""

LIST_COURSES = "SELECT id, name, language, source_language, description FROM courses ORDER BY id"
GET_COURSE = "SELECT id, name, language, source_language, description FROM courses WHERE id = %s"
LIST_SKILLS = """
SELECT id, name, level, level_rank, topic, description, prerequisites, target_questions
FROM skills WHERE course_id = %s ORDER BY position
"""
COUNT_COURSES = "SELECT count(*) AS n FROM courses"


async def save_curriculum(conn: AsyncConnection[Any], curriculum: dict[str, Any]) -> tuple[int, int]:
    """Insert or update a course and its skills in the caller's transaction; returns (courses, skills)."""
    course = curriculum["course"]
    await conn.execute(UPSERT_COURSE, {"source_language": "en", "description": "", **course})
    async with conn.cursor() as cur:
        await cur.executemany(
            UPSERT_SKILL,
            [
                {
                    "course_id": course["id"],
                    "topic": "",
                    "description": "",
                    **skill,
                    "level_rank": LEVEL_RANKS[skill["level"]],
                    "prerequisites": list(skill.get("prerequisites", [])),
                    "position": i,
                }
                for i, skill in enumerate(curriculum["skills"])
            ],
        )
    return 1, len(curriculum["skills"])


async def list_courses(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
    return await (await conn.execute(LIST_COURSES)).fetchall()


async def get_course(conn: AsyncConnection[Any], course_id: str) -> dict[str, Any] | None:
    return await (await conn.execute(GET_COURSE, (course_id,))).fetchone()


async def list_skills(conn: AsyncConnection[Any], course_id: str) -> list[dict[str, Any]]:
    return await (await conn.execute(LIST_SKILLS, (course_id,))).fetchall()


async def count_courses(conn: AsyncConnection[Any]) -> int:
    row = await (await conn.execute(COUNT_COURSES)).fetchone()
    return int(row["n"]) if row else 0
