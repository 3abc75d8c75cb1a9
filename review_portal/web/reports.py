"""Read-only aggregates the portal shows (dashboard, reviewer progress, the bank browser). Each query
reads tables owned by `shared.db.*`; none writes. Kept as named SQL constants, like `shared.db`."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

LOW_RISK = 0.2
HIGH_RISK = 0.5
"""Risk bands of the dashboard: low < 0.2 <= medium < 0.5 <= high."""

PENDING_BY_SKILL = """
SELECT s.course_id, s.skill_id, k.name AS skill_name, k.level,
       count(*) FILTER (WHERE s.status = 'pending') AS pending,
       count(*) FILTER (WHERE s.status = 'duplicate') AS duplicates,
       count(*) FILTER (WHERE s.status = 'pending' AND s.risk < %(low)s) AS low,
       count(*) FILTER (WHERE s.status = 'pending' AND s.risk >= %(low)s AND s.risk < %(high)s) AS medium,
       count(*) FILTER (WHERE s.status = 'pending' AND s.risk >= %(high)s) AS high,
       max(s.risk) FILTER (WHERE s.status = 'pending') AS max_risk
FROM questions_staging s JOIN skills k ON k.course_id = s.course_id AND k.id = s.skill_id
WHERE s.status IN ('pending', 'duplicate')
GROUP BY s.course_id, s.skill_id, k.name, k.level, k.position
ORDER BY max(s.risk) DESC NULLS LAST, k.position
"""
# A skill is an opportunity while its live questions plus those accepted (waiting for ingestion)
# fall short of its target.
OPPORTUNITIES = """
SELECT k.course_id, k.id AS skill_id, k.name AS skill_name, k.level, k.target_questions,
       coalesce(b.n, 0) AS bank, coalesce(a.accepted, 0) AS accepted, coalesce(a.pending, 0) AS pending,
       k.target_questions - coalesce(b.n, 0) - coalesce(a.accepted, 0) AS short_by
FROM skills k
LEFT JOIN (SELECT course_id, skill_id, count(*) AS n FROM questions WHERE status = 'active'
           GROUP BY 1, 2) b ON b.course_id = k.course_id AND b.skill_id = k.id
LEFT JOIN (SELECT course_id, skill_id, count(*) FILTER (WHERE status = 'accepted') AS accepted,
                  count(*) FILTER (WHERE status = 'pending') AS pending
           FROM questions_staging WHERE status IN ('accepted', 'pending') GROUP BY 1, 2) a
       ON a.course_id = k.course_id AND a.skill_id = k.id
WHERE coalesce(b.n, 0) + coalesce(a.accepted, 0) < k.target_questions
ORDER BY k.course_id, k.level_rank, k.position
"""
REVIEWER_PROGRESS = """
SELECT actor,
       count(*) FILTER (WHERE created_at >= date_trunc('day', now())) AS today,
       count(*) AS week,
       count(*) FILTER (WHERE action IN ('accept', 'edit_accept')) AS accepted,
       count(*) FILTER (WHERE action = 'reject') AS rejected,
       count(*) FILTER (WHERE action = 'revision') AS revision
FROM review_decisions
WHERE actor <> 'policy' AND staging_id IS NOT NULL AND created_at >= date_trunc('week', now())
GROUP BY actor ORDER BY count(*) DESC, actor
"""
STAGING_TOTALS = "SELECT status, count(*) AS n FROM questions_staging GROUP BY status"
BANK_TOTAL = "SELECT count(*) FILTER (WHERE status = 'active') AS active, count(*) AS total FROM questions"
LIST_BANK = """
SELECT id, course_id, skill_id, level_rank, type, content, status, replaces, created_at, retired_at, retired_by,
       retire_reason
FROM questions
WHERE (%(skill)s::text IS NULL OR skill_id = %(skill)s::text)
  AND (%(status)s::text IS NULL OR status = %(status)s::text)
  AND (%(q)s::text IS NULL OR content::text ILIKE '%%' || %(q)s::text || '%%')
ORDER BY created_at DESC, id
LIMIT %(limit)s OFFSET %(offset)s
"""
ALL_SKILLS = """
SELECT course_id, id, name, level, level_rank, target_questions FROM skills ORDER BY course_id, position
"""


async def pending_by_skill(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
    return await (await conn.execute(PENDING_BY_SKILL, {"low": LOW_RISK, "high": HIGH_RISK})).fetchall()


async def opportunities(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
    return await (await conn.execute(OPPORTUNITIES)).fetchall()


async def reviewer_progress(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
    return await (await conn.execute(REVIEWER_PROGRESS)).fetchall()


async def staging_totals(conn: AsyncConnection[Any]) -> dict[str, int]:
    return {r["status"]: int(r["n"]) for r in await (await conn.execute(STAGING_TOTALS)).fetchall()}


async def bank_total(conn: AsyncConnection[Any]) -> dict[str, int]:
    row = await (await conn.execute(BANK_TOTAL)).fetchone()
    return {"active": int(row["active"] or 0), "total": int(row["total"] or 0)} if row else {"active": 0, "total": 0}


async def list_bank(conn: AsyncConnection[Any], *, skill: str | None, status: str | None, q: str | None,
                    limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    params = {"skill": skill, "status": status, "q": q, "limit": limit, "offset": offset}
    return await (await conn.execute(LIST_BANK, params)).fetchall()


async def all_skills(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
    return await (await conn.execute(ALL_SKILLS)).fetchall()
