"""Review timing per learner x skill with the maintained FSRS scheduler (the `fsrs` package).

The learner model (``curator.learner_model``) says how likely a learner is to answer *now*; FSRS
says *when* a skill should come back so that recall stays near the desired retention.  One FSRS
card per learner x skill, stored as JSON (``fsrs.Card.to_dict()``).

Correctness and speed map to an FSRS rating: wrong -> Again; right but slow -> Hard; right ->
Good; right and fast -> Easy.  ``replay_revlog`` scores FSRS's recall predictions on an Anki-style
review log (used by ``lessonloop model fsrs-eval``; figures in docs/learner-model.md).
"""

from __future__ import annotations

import csv
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
from fsrs import Card, Rating, Scheduler
from fsrs.card import CardDict

FAST_MS = 4_000
"""A right answer faster than this rates Easy."""
SLOW_MS = 20_000
"""A right answer slower than this rates Hard."""


def rating_for(correct: bool, response_ms: int | None) -> Rating:
    """The FSRS rating for one answer: correctness first, then speed when it is known."""
    if not correct:
        return Rating.Again
    if response_ms is None:
        return Rating.Good
    if response_ms < FAST_MS:
        return Rating.Easy
    if response_ms > SLOW_MS:
        return Rating.Hard
    return Rating.Good


def _load(card: dict[str, Any]) -> Card:
    return Card.from_dict(cast(CardDict, card))


def _dump(card: Card) -> dict[str, Any]:
    return dict(card.to_dict())


def _utc(moment: datetime) -> datetime:
    # fsrs insists on timezone.utc; naive datetimes are taken to be UTC already
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class ReviewScheduler:
    """FSRS with default (published) parameters, no fuzz so that schedules are reproducible."""

    def __init__(self, desired_retention: float = 0.9, parameters: tuple[float, ...] | None = None) -> None:
        kwargs: dict[str, Any] = {"desired_retention": desired_retention, "enable_fuzzing": False}
        if parameters is not None:
            kwargs["parameters"] = parameters
        self._scheduler = Scheduler(**kwargs)

    def new_card(self, now: datetime | None = None) -> dict[str, Any]:
        """A fresh card (due immediately), as a JSON-serialisable dict."""
        due = _utc(now) if now is not None else datetime.now(UTC)
        return _dump(Card(card_id=int(time.time() * 1000), due=due))

    def review(self, card: dict[str, Any], correct: bool, response_ms: int | None,
               now: datetime) -> dict[str, Any]:
        """The card after one answer at ``now`` (the input dict is not modified)."""
        updated, _ = self._scheduler.review_card(_load(card), rating_for(correct, response_ms),
                                                 _utc(now), response_ms)
        return _dump(updated)

    def review_rating(self, card: dict[str, Any], rating: Rating, now: datetime) -> dict[str, Any]:
        """The card after a review with an explicit FSRS rating."""
        updated, _ = self._scheduler.review_card(_load(card), rating, _utc(now))
        return _dump(updated)

    def due(self, card: dict[str, Any]) -> datetime:
        """When the card should next be reviewed (UTC)."""
        return _load(card).due

    def retrievability(self, card: dict[str, Any], now: datetime) -> float:
        """FSRS's probability of recall at ``now`` (0 for a card never reviewed)."""
        return float(self._scheduler.get_card_retrievability(_load(card), _utc(now)))


def replay_revlog(path: str | Path, use_speed: bool = False) -> dict[str, float]:
    """Replay an Anki-style review log and score FSRS's recall predictions.

    The CSV has ``card_id, review_rating (1-4), review_time (ISO-8601), review_duration (ms)``.
    Before each review of a card seen on an earlier day, FSRS predicts recall (rating > 1); the
    result holds log loss, RMSE and AUC of those predictions.  With ``use_speed`` the recorded
    ratings are replaced by ``rating_for(rating > 1, duration)``, i.e. what Lessonloop would feed
    FSRS from correctness and response time alone.
    """
    from curator.model_eval import auc  # local import: model_eval imports the learner model

    with Path(path).open(newline="") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: (r["review_time"], r["card_id"]))
    scheduler = ReviewScheduler()
    cards: dict[str, dict[str, Any]] = {}
    ys: list[int] = []
    ps: list[float] = []
    for row in rows:
        now = datetime.fromisoformat(row["review_time"])
        rating = Rating(int(row["review_rating"]))
        duration = int(row["review_duration"]) if row.get("review_duration") else None
        if use_speed:
            rating = rating_for(rating > Rating.Again, duration)
        card = cards.get(row["card_id"])
        if card is None:
            card = scheduler.new_card(now)
        elif card["last_review"] and (_utc(now) - datetime.fromisoformat(card["last_review"])).days >= 1:
            ps.append(scheduler.retrievability(card, now))
            ys.append(1 if rating > Rating.Again else 0)
        cards[row["card_id"]] = scheduler.review_rating(card, rating, now)
    n = len(ys)
    clipped = [min(max(p, 1e-6), 1 - 1e-6) for p in ps]
    log_loss = -sum(y * math.log(p) + (1 - y) * math.log(1 - p) for y, p in zip(ys, clipped, strict=True)) / n
    rmse = math.sqrt(sum((y - p) ** 2 for y, p in zip(ys, ps, strict=True)) / n)
    return {"reviews": float(len(rows)), "scored": float(n), "recall_rate": sum(ys) / n,
            "log_loss": log_loss, "rmse": rmse, "auc": auc(np.asarray(ys), np.asarray(ps))}
