"""Answers (graded, durable before the reply, idempotent by attempt id, owned by their learner),
lesson completion (fires the refill) and the learner's own view of their model."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from curator.learner_model import LearnerModel
from curator.scheduler import ReviewScheduler
from serving.grading import grade
from serving.lessons import trigger_refill
from shared import metrics
from shared.db import answers, courses, learners, lessons, questions
from shared.errors import BadInput, Conflict, NotFound
from shared.services import Services

log = logging.getLogger(__name__)


@dataclass
class ProgressService:
    services: Services
    model: LearnerModel
    scheduler: ReviewScheduler

    # --- answers -----------------------------------------------------------------------------------
    async def answer(self, learner_id: str, lesson_id: UUID, body: dict[str, Any]) -> dict[str, Any]:
        """Grade and record one answer; durable before return; the same attempt id twice records once."""
        item_id, attempt_id = body["item_id"], body["attempt_id"]
        async with self.services.pool.connection() as conn:
            lesson = await lessons.get_lesson(conn, lesson_id)
            if lesson is None or lesson["learner_id"] != learner_id:
                raise NotFound(f"lesson '{lesson_id}' not found", field="lesson_id")
            item = next((it for it in lesson["items"] if it["item_id"] == item_id), None)
            if item is None:
                raise NotFound(f"item '{item_id}' is not in lesson '{lesson_id}'", field="item_id")
            if lesson["status"] == "completed":
                raise Conflict(f"lesson '{lesson_id}' is already completed", field="lesson_id")
            question = await questions.get_question(conn, UUID(item["question_id"]))
            if question is None:
                raise NotFound(f"question of item '{item_id}' no longer exists", field="item_id")
            result = grade(question["type"], question["content"], body["answer"])
            reply = {"correct": result.correct, "expected": result.expected, "feedback": result.feedback,
                     "attempt_id": attempt_id}
            async with conn.transaction():
                prior = await answers.by_attempt(conn, learner_id, attempt_id)
                if prior is not None:
                    if str(prior["lesson_id"]) != str(lesson_id) or prior["item_id"] != item_id:
                        raise Conflict(f"attempt_id '{attempt_id}' was already used for another item",
                                       field="attempt_id")
                    return {**reply, "correct": prior["correct"], "duplicate": True}
                if await answers.by_item(conn, lesson_id, item_id) is not None:
                    raise Conflict(f"item '{item_id}' was already answered with another attempt_id",
                                   field="attempt_id")
                p_correct = await self._update_model(conn, learner_id, lesson["course_id"], question,
                                                     result.correct, body.get("response_ms"))
                recorded = await answers.insert_answer(conn, {
                    "learner_id": learner_id, "attempt_id": attempt_id, "lesson_id": lesson_id, "item_id": item_id,
                    "question_id": question["id"], "course_id": lesson["course_id"],
                    "skill_id": question["skill_id"], "answer": body["answer"], "correct": result.correct,
                    "response_ms": body["response_ms"], "p_correct": p_correct})
                if not recorded:  # a concurrent request with the same attempt won the race
                    raise Conflict(f"attempt_id '{attempt_id}' is being recorded concurrently; retry",
                                   field="attempt_id")
                await lessons.mark_seen(conn, learner_id, lesson["course_id"], item["question_id"])
                await lessons.mark_served(conn, lesson_id)
        metrics.ANSWERS.labels(str(result.correct).lower()).inc()
        return reply

    async def _update_model(self, conn: Any, learner_id: str, course_id: str, question: dict[str, Any],
                            correct: bool, response_ms: int | None) -> float:
        """Update learner, skill and item state in the caller's transaction; returns P(correct) before."""
        now = time.time()
        learner = await learners.course_state(conn, learner_id, course_id, lock=True) or self.model.new_learner_state()
        rows = await learners.skill_states(conn, learner_id, course_id)
        row = rows.get(question["skill_id"])
        skill = row["state"] if row else self.model.new_skill_state(question["level_rank"])
        item = question["item_state"] or self.model.new_item_state(question["level_rank"])
        p = self.model.predict(learner, skill, item, now)
        self.model.update(learner, skill, item, correct, now)
        card = self.scheduler.review(row["card"] if row and row["card"] else self.scheduler.new_card(), correct,
                                     response_ms, datetime.now(UTC))
        await learners.save_course_state(conn, learner_id, course_id, learner)
        await learners.save_skill_state(
            conn, learner=learner_id, course=course_id, skill=question["skill_id"], state=skill, card=card,
            mastery=self.model.mastery(learner, skill, now), attempts=(row["attempts"] if row else 0) + 1,
            correct=(row["correct"] if row else 0) + int(correct), due_at=self.scheduler.due(card))
        await questions.update_item_state(conn, question["id"], item)
        return p

    # --- complete ---------------------------------------------------------------------------------
    async def complete(self, learner_id: str, lesson_id: UUID) -> dict[str, Any]:
        async with self.services.pool.connection() as conn:
            lesson = await lessons.get_lesson(conn, lesson_id)
            if lesson is None or lesson["learner_id"] != learner_id:
                raise NotFound(f"lesson '{lesson_id}' not found", field="lesson_id")
            if lesson["status"] == "completed" and lesson["summary"]:
                return {**lesson["summary"], "already_completed": True}
            given = await answers.for_lesson(conn, lesson_id)
            summary = {
                "lesson_id": str(lesson_id), "course": lesson["course_id"], "source": lesson["source"],
                "items": len(lesson["items"]), "answered": len(given),
                "correct": sum(1 for a in given if a["correct"]),
                "skills": sorted({a["skill_id"] for a in given}),
            }
            async with conn.transaction():
                await lessons.complete(conn, lesson_id, summary)
        await trigger_refill(self.services, learner_id, lesson["course_id"], "complete")
        return summary

    # --- the learner's own data ---------------------------------------------------------------------
    async def profile(self, learner_id: str, course_id: str | None) -> dict[str, Any]:
        now = time.time()
        out: dict[str, Any] = {"learner_id": learner_id, "courses": []}
        async with self.services.pool.connection() as conn:
            course_ids = [course_id] if course_id else [c["id"] for c in await courses.list_courses(conn)]
            for cid in course_ids:
                rows = await learners.skill_states(conn, learner_id, cid)
                if not rows and course_id is None:
                    continue
                learner = await learners.course_state(conn, learner_id, cid) or self.model.new_learner_state()
                skills = [{
                    "skill": sid, "mastery": round(self.model.mastery(learner, r["state"], now), 4),
                    "attempts": r["attempts"], "correct": r["correct"],
                    "due_at": r["due_at"].isoformat() if r["due_at"] else None,
                } for sid, r in sorted(rows.items())]
                out["courses"].append({
                    "course": cid, "skills": skills,
                    "due_reviews": [s["skill"] for s in skills if s["due_at"] and
                                    datetime.fromisoformat(s["due_at"]).timestamp() <= now],
                    "counts": {**await answers.learner_totals(conn, learner_id, cid),
                               **await lessons.learner_counts(conn, learner_id, cid)},
                })
        return out



def check_answer_body(body: dict[str, Any], max_chars: int) -> None:
    if len(body["answer"]) > max_chars:
        raise BadInput(f"answer: longer than {max_chars} characters", field="answer")
    if not body["attempt_id"].strip():
        raise BadInput("attempt_id: must not be blank", field="attempt_id")
