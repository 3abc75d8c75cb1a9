"""FSRS review timing: rating from correctness and speed, JSON cards, due dates, revlog replay."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fsrs import Rating

from curator import model_eval
from curator.scheduler import FAST_MS, SLOW_MS, ReviewScheduler, rating_for, replay_revlog

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("correct", "ms", "rating"),
    [(False, 1_000, Rating.Again), (False, None, Rating.Again), (True, None, Rating.Good),
     (True, FAST_MS - 1, Rating.Easy), (True, FAST_MS + 1, Rating.Good), (True, SLOW_MS + 1, Rating.Hard)],
)
def test_rating_from_correctness_and_speed(correct: bool, ms: int | None, rating: Rating) -> None:
    assert rating_for(correct, ms) == rating


def test_cards_are_json_and_intervals_grow_with_success() -> None:
    sched = ReviewScheduler()
    card = sched.new_card(T0)
    assert sched.due(card) == T0
    now, gaps = T0, []
    for _ in range(5):
        card = sched.review(card, True, 6_000, now)
        card = json.loads(json.dumps(card))
        gaps.append(sched.due(card) - now)
        now = sched.due(card)
    assert gaps[-1] > gaps[1] > timedelta(0)
    assert sched.retrievability(card, now) < sched.retrievability(card, now - gaps[-1] / 2)


def test_wrong_answer_brings_the_review_forward_and_naive_times_are_utc() -> None:
    sched = ReviewScheduler()
    card = sched.review(sched.new_card(T0), True, 6_000, T0)
    later = sched.due(card)
    card = sched.review(card, True, 6_000, later)
    good = sched.review(card, True, 6_000, sched.due(card))
    again = sched.review(card, False, 6_000, sched.due(card).replace(tzinfo=None))
    assert sched.due(again) < sched.due(good)
    fast = sched.review(card, True, 1_000, sched.due(card))
    assert sched.due(fast) >= sched.due(good)


def test_replay_revlog_scores_recall(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["card_id,review_rating,review_time,review_duration"]
    for card in range(20):
        t = T0
        for k, gap in enumerate((0, 1, 3, 8, 20)):
            t += timedelta(days=gap)
            rating = 1 if (card + k) % 4 == 0 else 3
            lines.append(f"{card},{rating},{t.isoformat()},{5000 + 300 * card}")
    path = tmp_path / "revlog.csv"
    path.write_text("\n".join(lines) + "\n")
    result = replay_revlog(path)
    assert result["scored"] == 80 and 0.0 < result["log_loss"] < 2.0 and 0.0 <= result["auc"] <= 1.0
    assert model_eval.main(["fsrs-eval", str(path)]) == 0
    assert "FSRS      log loss" in capsys.readouterr().out
    assert model_eval.main(["fsrs-eval", str(tmp_path / "missing.csv")]) == 2
