"""The cold path's candidates query under the plan the API's connections use (a generic plan, see
shared.db.pool): a learner who has seen far more than the average must still get a per-row seen
check, not an anti join sized for the average learner (which re-reads all their seen rows for every
question walked: 38 ms instead of ~1 ms with 10,000 seen, docs/api.md)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from shared.db.questions import COLD_CANDIDATES
from shared.runtime import Endpoints

HEAVY = "heavy-learner"


@pytest.fixture
def skewed(clean: Endpoints, curriculum: dict[str, Any]) -> dict[str, Any]:
    """Two skills of 400 questions; 300 learners who saw 3 each, one who saw 600; statistics fresh."""
    course = curriculum["course"]["id"]
    skills = [s["id"] for s in curriculum["skills"][:2]]
    with psycopg.connect(clean.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO questions (id, course_id, skill_id, level_rank, type, content, content_hash) "
            "SELECT gen_random_uuid(), %(course)s, s, 1, 'mcq', jsonb_build_object('prompt', 'q' || i), "
            "       'h' || s || i FROM unnest(%(skills)s::text[]) s, generate_series(1, 400) i",
            {"course": course, "skills": skills})
        conn.execute(
            "INSERT INTO learner_seen (learner_id, course_id, question_id) "
            "SELECT 'light-' || l, %(course)s, q.id FROM generate_series(1, 300) l "
            "CROSS JOIN LATERAL (SELECT id FROM questions WHERE course_id = %(course)s "
            "                    ORDER BY md5(id::text || l) LIMIT 3) q", {"course": course})
        conn.execute(
            "INSERT INTO learner_seen (learner_id, course_id, question_id) "
            "SELECT %(heavy)s, %(course)s, id FROM questions WHERE course_id = %(course)s ORDER BY rand LIMIT 600",
            {"course": course, "heavy": HEAVY})
        conn.execute("ANALYZE questions")
        conn.execute("ANALYZE learner_seen")
    return {"learner": HEAVY, "course": course, "skills": skills, "per_skill": 8}


def _generic_plan(database_url: str, params: dict[str, Any]) -> tuple[str, list[tuple[Any, ...]]]:
    """EXPLAIN ANALYZE of COLD_CANDIDATES prepared under force_generic_plan, and its rows."""
    numbered = (COLD_CANDIDATES.replace("%(learner)s", "$1").replace("%(course)s", "$2")
                .replace("%(skills)s", "$3").replace("%(per_skill)s", "$4"))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        prepared = conn.pgconn.exec_(f"PREPARE cold(text, text, text[], int) AS {numbered}".encode())
        assert prepared.status == psycopg.pq.ExecStatus.COMMAND_OK, prepared.error_message
        args = (params["learner"], params["course"], params["skills"], params["per_skill"])
        cur = psycopg.ClientCursor(conn)
        plan = "\n".join(r[0] for r in cur.execute(
            "EXPLAIN (ANALYZE, COSTS OFF) EXECUTE cold(%s::text, %s::text, %s::text[], %s::int)", args))
        rows = cur.execute("EXECUTE cold(%s::text, %s::text, %s::text[], %s::int)", args).fetchall()
    return plan, rows


def test_a_heavy_learners_seen_check_is_a_probe_per_row_under_a_generic_plan(stores: Endpoints,
                                                                              skewed: dict[str, Any]) -> None:
    plan, rows = _generic_plan(stores.database_url, skewed)
    assert "Anti Join" not in plan, plan
    assert "SubPlan" in plan and "learner_seen_pkey" in plan, plan
    assert len(rows) == 2 * skewed["per_skill"]
    with psycopg.connect(stores.database_url) as conn:
        seen = {str(r[0]) for r in conn.execute("SELECT question_id FROM learner_seen WHERE learner_id = %s",
                                                (HEAVY,))}
    assert not seen & {r[0] for r in rows}, "a seen question came back"
    assert {r[1] for r in rows} == set(skewed["skills"])
