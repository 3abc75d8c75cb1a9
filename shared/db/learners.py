"""Learner state: the learner model per learner x course and per skill, plus what they have seen."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

GET_COURSE_STATE = "SELECT state FROM learner_course_state WHERE learner_id = %s AND course_id = %s"
GET_SKILL_STATES = """
SELECT skill_id, state, card, mastery, attempts, correct, due_at, last_seen_at
FROM learner_skill_state WHERE learner_id = %s AND course_id = %s
"""
GET_SKILL_STATE = """
SELECT skill_id, state, card, mastery, attempts, correct, due_at, last_seen_at
FROM learner_skill_state WHERE learner_id = %s AND course_id = %s AND skill_id = %s
"""
# Planning reads many learners at once and no JSON skill state: mastery as of the last answer, the
# review due time and the last practice time are columns (epoch seconds, so no datetime objects).
_PAIRS = "(SELECT * FROM unnest(%(learners)s::text[], %(courses)s::text[]) AS p(learner_id, course_id))"
PLANNING_SKILLS = f"""
SELECT s.learner_id, s.course_id, s.skill_id, s.mastery, s.attempts,
       extract(epoch FROM s.due_at)::float8, extract(epoch FROM s.last_seen_at)::float8
FROM learner_skill_state s JOIN {_PAIRS} p USING (learner_id, course_id)
"""
PLANNING_COURSES = f"""
SELECT c.learner_id, c.course_id, c.state FROM learner_course_state c JOIN {_PAIRS} p USING (learner_id, course_id)
"""
# Not to plan again: the questions a learner has seen (answered, or served on the cold path) and those
# of their lessons in progress: a warm lesson's questions count as seen only once answered, so a
# lesson popped (or half answered) but not completed holds the rest. In progress means not completed
# among the learner's latest `OPEN_LESSONS` lessons in the course planned within `OPEN_LESSON_S`: a
# backward scan of lessons_learner_idx that stops there, whatever the learner's history.
OPEN_LESSONS = 10
"""Lessons looked at per learner: a playlist holds 3, so this covers the ones popped from the last
three refills whatever else happened meanwhile."""
OPEN_LESSON_S = 14 * 24 * 3600
"""A lesson not completed within 14 days of being planned (a playlist lives 7) no longer holds its questions."""
_OPEN_LESSONS = """
    SELECT l.learner_id, l.course_id, i->>'question_id' AS question_id
    FROM (SELECT learner_id, course_id, status, items FROM lessons
          WHERE learner_id = p.learner_id AND course_id = p.course_id
            AND created_at > now() - make_interval(secs => %(open_s)s)
          ORDER BY created_at DESC LIMIT %(open_n)s) l
    CROSS JOIN LATERAL jsonb_array_elements(l.items) AS i
    WHERE l.status <> 'completed'"""
"""Of pair `p`: the question ids of its lessons in progress."""
SEEN_MANY = f"""
SELECT s.learner_id, s.course_id, s.question_id::text FROM learner_seen s JOIN {_PAIRS} p USING (learner_id, course_id)
UNION ALL
SELECT o.* FROM {_PAIRS} p CROSS JOIN LATERAL ({_OPEN_LESSONS}) o
"""
# The batch refill's one read on the PostgreSQL backend: per pair, the course state, the skill rows (JSON
# text: {skill: [mastery, attempts, due epoch, last-practised epoch, streak, typical logit]}) and, if
# %(with_seen)s, the question ids not to plan (comma-separated; see SEEN_MANY) — one row per learner, parsed
# in C. The cold path asks without seen (its SQL skips seen questions itself): a long history is ~37 bytes
# per question to send and split.
PLANNING_BATCH = f"""
SELECT p.learner_id, p.course_id, c.state::text,
       (SELECT json_object_agg(s.skill_id, json_build_array(s.mastery, s.attempts, extract(epoch FROM s.due_at),
                                         extract(epoch FROM s.last_seen_at), coalesce((s.state->>'streak')::int, 0),
                                         (s.state->>'typical_logit')::float8))
        FROM learner_skill_state s WHERE s.learner_id = p.learner_id AND s.course_id = p.course_id)::text,
       CASE WHEN %(with_seen)s THEN concat_ws(',',
        (SELECT string_agg(ls.question_id::text, ',')
         FROM learner_seen ls WHERE ls.learner_id = p.learner_id AND ls.course_id = p.course_id),
        (SELECT string_agg(o.question_id, ',')
         FROM ({_OPEN_LESSONS}) o)) END
FROM unnest(%(learners)s::text[], %(courses)s::text[]) AS p(learner_id, course_id)
LEFT JOIN learner_course_state c ON c.learner_id = p.learner_id AND c.course_id = p.course_id
"""
COURSES_OF = """
SELECT course_id FROM learner_course_state WHERE learner_id = %(learner)s
UNION SELECT course_id FROM learner_skill_state WHERE learner_id = %(learner)s ORDER BY 1
"""
# Progress (the model state and the answer history) vs what the lesson side keeps (lessons, seen):
# with the DynamoDB progress backend only the latter are in PostgreSQL.
ERASE_PROGRESS = [
    "DELETE FROM answer_events WHERE learner_id = %(learner)s",
    "DELETE FROM learner_skill_state WHERE learner_id = %(learner)s",
    "DELETE FROM learner_course_state WHERE learner_id = %(learner)s",
]
ERASE_LESSONS = [
    "DELETE FROM answer_events WHERE learner_id = %(learner)s",  # cascades from lessons anyway
    "DELETE FROM lessons WHERE learner_id = %(learner)s",
    "DELETE FROM learner_seen WHERE learner_id = %(learner)s",
]
ERASE = ERASE_LESSONS + ERASE_PROGRESS
_COURSE = "AND (%(course)s::text IS NULL OR course_id = %(course)s)"
RESET_PROGRESS = [
    f"DELETE FROM learner_skill_state WHERE learner_id = %(learner)s {_COURSE}",
    f"DELETE FROM learner_course_state WHERE learner_id = %(learner)s {_COURSE}",
]
RESET_LESSONS = [
    f"DELETE FROM learner_seen WHERE learner_id = %(learner)s {_COURSE}",
    f"DELETE FROM lessons WHERE learner_id = %(learner)s {_COURSE} AND status = 'planned'",
]
RESET = RESET_LESSONS + RESET_PROGRESS
EXPORT_PROGRESS = {
    "answers": "SELECT * FROM answer_events WHERE learner_id = %(learner)s ORDER BY id",
    "skills": "SELECT * FROM learner_skill_state WHERE learner_id = %(learner)s ORDER BY course_id, skill_id",
    "courses": "SELECT * FROM learner_course_state WHERE learner_id = %(learner)s ORDER BY course_id",
}
EXPORT_LESSONS = {
    "lessons": "SELECT * FROM lessons WHERE learner_id = %(learner)s ORDER BY created_at",
    "seen": "SELECT course_id, question_id, seen_at FROM learner_seen WHERE learner_id = %(learner)s "
            "ORDER BY course_id, seen_at",
}
EXPORT = {**EXPORT_LESSONS, **EXPORT_PROGRESS}
LEARNERS_OF_COURSE = "SELECT DISTINCT learner_id FROM lessons WHERE course_id = %s"


async def course_state(conn: AsyncConnection[Any], learner: str, course: str) -> dict[str, Any] | None:
    row = await (await conn.execute(GET_COURSE_STATE, (learner, course))).fetchone()
    return row["state"] if row else None


async def skill_states(conn: AsyncConnection[Any], learner: str, course: str) -> dict[str, dict[str, Any]]:
    return {r["skill_id"]: r for r in await (await conn.execute(GET_SKILL_STATES, (learner, course))).fetchall()}


async def skill_state(conn: AsyncConnection[Any], learner: str, course: str, skill: str) -> dict[str, Any] | None:
    return await (await conn.execute(GET_SKILL_STATE, (learner, course, skill))).fetchone()


async def planning_rows(conn: AsyncConnection[Any], pairs: list[tuple[str, str]]) -> tuple[list[tuple[Any, ...]],
                                                                                          list[tuple[Any, ...]]]:
    """(skill rows, course-state rows) of many learner x course pairs, in one pipelined round trip."""
    params = {"learners": [p[0] for p in pairs], "courses": [p[1] for p in pairs]}
    async with conn.pipeline():
        skills_cur = conn.cursor(row_factory=tuple_row)
        courses_cur = conn.cursor(row_factory=tuple_row)
        await skills_cur.execute(PLANNING_SKILLS, params)
        await courses_cur.execute(PLANNING_COURSES, params)
    return await skills_cur.fetchall(), await courses_cur.fetchall()


async def planning_batch(conn: AsyncConnection[Any], pairs: list[tuple[str, str]], *,
                         with_seen: bool = True) -> list[tuple[Any, ...]]:
    """(learner, course, course state JSON text | None, skills JSON text | None, ids not to plan text | None)."""
    params = {"learners": [p[0] for p in pairs], "courses": [p[1] for p in pairs], "with_seen": with_seen,
              "open_s": OPEN_LESSON_S,
              "open_n": OPEN_LESSONS}
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(PLANNING_BATCH, params)
    return await cur.fetchall()


async def seen_many(conn: AsyncConnection[Any], pairs: list[tuple[str, str]]) -> list[tuple[Any, ...]]:
    """(learner, course, question id text) rows of what many learners have seen or have in progress."""
    params = {"learners": [p[0] for p in pairs], "courses": [p[1] for p in pairs], "open_s": OPEN_LESSON_S,
              "open_n": OPEN_LESSONS}
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(SEEN_MANY, params)
    return await cur.fetchall()


async def courses_of(conn: AsyncConnection[Any], learner: str) -> list[str]:
    return [r["course_id"] for r in await (await conn.execute(COURSES_OF, {"learner": learner})).fetchall()]


async def _run(conn: AsyncConnection[Any], statements: list[str], params: dict[str, Any]) -> None:
    for sql in statements:
        await conn.execute(sql, params)


async def erase_progress(conn: AsyncConnection[Any], learner: str) -> None:
    await _run(conn, ERASE_PROGRESS, {"learner": learner})


async def erase_lessons(conn: AsyncConnection[Any], learner: str) -> None:
    await _run(conn, ERASE_LESSONS, {"learner": learner})


async def reset_progress(conn: AsyncConnection[Any], learner: str, course: str | None) -> None:
    await _run(conn, RESET_PROGRESS, {"learner": learner, "course": course})


async def reset_lessons(conn: AsyncConnection[Any], learner: str, course: str | None) -> None:
    await _run(conn, RESET_LESSONS, {"learner": learner, "course": course})


async def export_progress(conn: AsyncConnection[Any], learner: str) -> dict[str, list[dict[str, Any]]]:
    return {n: await (await conn.execute(sql, {"learner": learner})).fetchall() for n, sql in EXPORT_PROGRESS.items()}


async def export_lessons(conn: AsyncConnection[Any], learner: str) -> dict[str, list[dict[str, Any]]]:
    return {n: await (await conn.execute(sql, {"learner": learner})).fetchall() for n, sql in EXPORT_LESSONS.items()}


async def erase(conn: AsyncConnection[Any], learner: str) -> None:
    for sql in ERASE:
        await conn.execute(sql, {"learner": learner})


async def reset(conn: AsyncConnection[Any], learner: str, course: str | None) -> None:
    await _run(conn, RESET, {"learner": learner, "course": course})


async def export(conn: AsyncConnection[Any], learner: str) -> dict[str, list[dict[str, Any]]]:
    return {name: await (await conn.execute(sql, {"learner": learner})).fetchall() for name, sql in EXPORT.items()}
