"""Choosing a learner's next lessons from their model: pure functions, no I/O.

1. Skills: due reviews first, then weak skills whose prerequisites are mastered, then the next
   new skills on the frontier (prerequisites mastered, in curriculum order).
2. Items: for each chosen skill, the unseen questions whose predicted success is closest to the
   target band (70–85% by default).
3. Lessons: N items each, the easiest first as a warm-up, skills interleaved, no question twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from curator.learner_model import LearnerModel

MASTERED = 0.80
"""Mastery at or above which a skill counts as mastered (its dependants open up)."""
NEW_SKILLS_PER_LESSON = 2
"""At most this many never-practised skills are introduced per lesson."""


@dataclass
class SkillView:
    id: str
    level_rank: int
    prerequisites: list[str]
    position: int
    attempts: int = 0
    mastery: float = 0.0
    due: bool = False
    state: dict[str, Any] = field(default_factory=dict)


def skill_views(model: LearnerModel, skills: list[dict[str, Any]], learner: dict[str, Any],
                rows: dict[str, dict[str, Any]], now: float) -> list[SkillView]:
    """Every skill of the course with the learner's mastery of it now (cold-started from the level)."""
    views = []
    for pos, s in enumerate(skills):
        row = rows.get(s["id"])
        state = row["state"] if row else model.new_skill_state(s["level_rank"])
        due_at = row.get("due_at") if row else None
        views.append(SkillView(
            id=s["id"], level_rank=s["level_rank"], prerequisites=list(s["prerequisites"]), position=pos,
            attempts=row["attempts"] if row else 0, mastery=model.mastery(learner, state, now),
            due=bool(row and row["attempts"] and due_at is not None and due_at.timestamp() <= now),
            state=state,
        ))
    return views


def choose_skills(views: list[SkillView], *, want: int) -> list[str]:
    """Skill ids to practise next, most urgent first: due reviews, weak-but-ready, new frontier."""
    by_id = {v.id: v for v in views}

    def ready(v: SkillView) -> bool:
        return all(p in by_id and by_id[p].mastery >= MASTERED and by_id[p].attempts > 0 for p in v.prerequisites)

    due = sorted((v for v in views if v.due), key=lambda v: v.mastery)
    weak = sorted((v for v in views if v.attempts and not v.due and v.mastery < MASTERED and ready(v)),
                  key=lambda v: v.mastery)
    new = [v for v in views if not v.attempts and ready(v)][:NEW_SKILLS_PER_LESSON]
    chosen: list[str] = []
    for group in (due, weak, new):
        for v in group:
            if v.id not in chosen:
                chosen.append(v.id)
    if not chosen:  # everything mastered: keep the least-mastered skills fresh
        chosen = [v.id for v in sorted(views, key=lambda v: v.mastery)]
    return chosen[:want]


def _closeness(p: float, low: float, high: float) -> float:
    if low <= p <= high:
        return 0.0
    return low - p if p < low else p - high


def build_lessons(
    *, model: LearnerModel, learner_id: str, course_id: str, learner: dict[str, Any],
    views: list[SkillView], skills: list[str], candidates: list[dict[str, Any]], lessons: int,
    size: int, target: tuple[float, float], now: float, source: str,
) -> list[dict[str, Any]]:
    """Up to `lessons` lessons of `size` items from the candidates (bank rows of the chosen skills)."""
    by_skill: dict[str, list[tuple[float, float, dict[str, Any]]]] = {s: [] for s in skills}
    view = {v.id: v for v in views}
    low, high = target
    for q in candidates:
        sid = q["skill_id"]
        if sid not in by_skill:
            continue
        item_state = q["item_state"] or model.new_item_state(view[sid].level_rank)
        p = model.predict(learner, view[sid].state, item_state, now)
        by_skill[sid].append((_closeness(p, low, high), -p, q))
    for pool in by_skill.values():
        pool.sort(key=lambda t: (t[0], t[1]))
    used: set[str] = set()
    out: list[dict[str, Any]] = []
    for _ in range(lessons):
        picked: list[tuple[float, dict[str, Any]]] = []
        order = [s for s in skills if by_skill[s]]
        while len(picked) < size and order:
            for sid in list(order):  # round robin: skills interleaved
                pool = by_skill[sid]
                while pool and str(pool[0][2]["id"]) in used:
                    pool.pop(0)
                if not pool:
                    order.remove(sid)
                    continue
                _, neg_p, q = pool.pop(0)
                used.add(str(q["id"]))
                picked.append((-neg_p, q))
                if len(picked) == size:
                    break
        if not picked:
            break
        # Warm-up: the item the learner is likeliest to get right goes first.
        warm = max(range(len(picked)), key=lambda i: picked[i][0])
        picked.insert(0, picked.pop(warm))
        out.append(lesson_payload(learner_id, course_id, [q for _, q in picked], source=source))
    return out


def lesson_payload(learner_id: str, course_id: str, questions: list[dict[str, Any]], *, source: str) -> dict[str, Any]:
    """The lesson as the API returns it: question content without the answer key."""
    items = []
    for i, q in enumerate(questions, start=1):
        c = q["content"]
        item = {"item_id": str(i), "question_id": str(q["id"]), "skill": q["skill_id"], "type": q["type"],
                "prompt": c["prompt"]}
        if c.get("choices"):
            item["choices"] = c["choices"]
        items.append(item)
    return {"lesson_id": str(uuid.uuid4()), "learner_id": learner_id, "course": course_id, "source": source,
            "items": items}
