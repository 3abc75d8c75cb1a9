"""The progress store: answer events and the learner model's state (per learner x course and per
learner x skill), behind one interface with two backends.

* ``postgres`` (default) — the `answer_events`, `learner_course_state` and `learner_skill_state`
  tables through `shared.db`; an answer and its state updates commit in one transaction.
* ``dynamodb`` — one table, partition key ``learner_id`` (S), sort key ``seq`` (S); answers and
  state updates commit together with TransactWriteItems (see `dynamodb.py`).

Lesson rows, `learner_seen` and the question bank stay in PostgreSQL whichever backend holds
progress. ``open_progress_store(settings, pool)`` picks the backend from
``LESSONLOOP_PROGRESS_BACKEND``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from psycopg_pool import AsyncConnectionPool

from shared.settings import Settings


@dataclass
class SkillRecord:
    """The learner model's state for one learner x skill, with the figures derived from it."""

    state: dict[str, Any]
    card: dict[str, Any] | None
    mastery: float
    attempts: int
    correct: int
    due_at: datetime | None
    last_seen_at: datetime | None = None


class SkillBrief(NamedTuple):
    """What planning reads of a skill record: no JSON state to decode (timestamps in epoch seconds)."""

    mastery: float
    attempts: int
    due_ts: float | None
    last_ts: float | None
    streak: int = 0
    """Right (+) or wrong (-) answers in a row on the skill, the latest last."""
    typical_logit: float | None = None
    """The model's logit on the skill's typical item right after the last answer
    (`LearnerModel.typical_logit`, kept in the skill state); None for a state stored before it was kept."""


@dataclass
class PlanningState:
    """A learner's model in one course, as the planner reads it."""

    raw_learner: dict[str, Any] | str | None
    """The learner state, or its JSON text (decoded on first use: most plans never need it)."""
    skills: dict[str, SkillBrief] = field(default_factory=dict)
    seen: set[str] | None = None
    """Question ids not to plan, when the backend read them along (PostgreSQL does): those seen in the
    course and those of the learner's lessons in progress (`shared.db.learners.SEEN_MANY`)."""

    @property
    def learner(self) -> dict[str, Any] | None:
        if isinstance(self.raw_learner, str):
            self.raw_learner = json.loads(self.raw_learner)
        return self.raw_learner  # type: ignore[return-value]


@dataclass
class AnswerEvent:
    learner_id: str
    attempt_id: str
    lesson_id: str
    item_id: str
    question_id: str
    course_id: str
    skill_id: str
    answer: str
    correct: bool
    response_ms: int
    p_correct: float | None = None


@dataclass
class StateUpdate:
    """What an answer changes: the learner's course state and one skill record."""

    learner: dict[str, Any]
    skill: SkillRecord
    p_correct: float


Compute = Callable[[dict[str, Any] | None, SkillRecord | None], StateUpdate]
"""Given the current learner state and skill record (None when new), the updated ones. Must be
pure: a backend may call it again on fresh state after a concurrent update."""


@dataclass
class Recorded:
    """The outcome of `record_answer`: ``duplicate`` when this attempt id was already recorded."""

    correct: bool
    duplicate: bool
    p_correct: float | None = None
    answer: str | None = None
    """A duplicate's: the answer first recorded for the attempt (its reply is graded from it)."""


class AttemptConflict(Exception):
    """The attempt id was used for another item, or the item was answered with another attempt id."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ProgressStore(Protocol):
    backend: str

    async def record_answer(self, event: AnswerEvent, compute: Compute) -> Recorded:
        """Durably record the answer and the state updates together; idempotent by attempt id."""

    async def skill_record(self, learner_id: str, course_id: str, skill_id: str) -> SkillRecord | None: ...

    async def course_state(self, learner_id: str, course_id: str) -> dict[str, Any] | None: ...

    async def skill_records(self, learner_id: str, course_id: str) -> dict[str, SkillRecord]: ...

    async def planning_states(self, pairs: list[tuple[str, str]], *,
                              conn: Any = None, seen: bool = True) -> dict[tuple[str, str], PlanningState]:
        """Many learners' models at once, for the batch refill. The PostgreSQL backend reads them (and,
        if `seen`, the seen questions) in one round trip on `conn`, a connection the caller holds, if
        given. Without `seen`, PlanningState.seen may be left empty (the cold path does not need it)."""

    async def lesson_answers(self, learner_id: str, lesson_id: str) -> list[dict[str, Any]]: ...

    async def totals(self, learner_id: str, course_id: str) -> dict[str, int]: ...

    async def courses(self, learner_id: str) -> list[str]:
        """Courses the learner has model state in."""

    async def reset(self, learner_id: str, course_id: str | None) -> None:
        """Forget the model state (one course, or all); answer history stays."""

    async def export(self, learner_id: str) -> dict[str, list[dict[str, Any]]]: ...

    async def erase(self, learner_id: str) -> None:
        """Delete everything this store holds about the learner."""

    async def close(self) -> None: ...


def open_progress_store(settings: Settings, pool: AsyncConnectionPool) -> ProgressStore:
    """The configured backend: 'postgres' (default) or 'dynamodb'."""
    backend = settings.progress_backend.lower()
    if backend == "postgres":
        from curator.progress_store.postgres import PostgresProgressStore

        return PostgresProgressStore(pool)
    if backend == "dynamodb":
        from curator.progress_store.dynamodb import DynamoProgressStore

        return DynamoProgressStore(settings.progress_table)
    raise ValueError(f"LESSONLOOP_PROGRESS_BACKEND: unknown backend {settings.progress_backend!r} "
                     "(expected 'postgres' or 'dynamodb')")
