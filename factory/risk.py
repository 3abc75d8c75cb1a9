"""How much a generated item needs a human look, and the policy deciding who looks.

Risk is a rule-based score in [0, 1] built from what we know about the item's making: the tier
(rule-based templates are predictable; a model writes anything), how hard the model had to be
pushed (repairs, retries), the validator's warnings, and how close it sits to an item already in
the bank (near duplicates waste a learner's time). It orders the review queue; it decides nothing
by itself.

The default :class:`ReviewPolicy` reviews every item. An explicit policy may auto-accept items of
named tiers at or below a risk threshold; the caller must record such an acceptance as an
auto-acceptance (with :meth:`ReviewPolicy.describe`), never as a human decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from factory.providers.base import ItemProvenance

BASE_RISK = {"offline": 0.10}
LLM_BASE_RISK = 0.30
REPAIR_RISK = 0.15
RETRY_RISK = 0.03
WARNING_RISK = 0.10
SIMILARITY_FLOOR = 0.70
"""Similarity to the nearest bank item below which closeness adds no risk."""


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def item_risk(provenance: ItemProvenance, warnings: Sequence[str], similarity: float | None) -> float:
    """Risk of one item in [0, 1]: higher means review it sooner and more carefully."""
    risk = BASE_RISK.get(provenance.provider, LLM_BASE_RISK)
    risk += min(2, provenance.repairs) * REPAIR_RISK
    risk += min(5, max(0, provenance.attempts - 1 - provenance.repairs)) * RETRY_RISK
    risk += min(3, len(warnings)) * WARNING_RISK
    if similarity is not None and similarity > SIMILARITY_FLOOR:
        risk += (similarity - SIMILARITY_FLOOR) / (1 - SIMILARITY_FLOOR) * 0.4
    return round(_clamp(risk), 4)


def batch_risk(item_risks: Sequence[float], *, invalid: int = 0, failures: int = 0) -> float:
    """Risk of a whole batch: the worse of its riskiest-quarter mean and its invalid share, nudged
    up by the failures it took to make it."""
    total = len(item_risks) + invalid
    if total == 0:
        return 1.0
    ranked = sorted(item_risks, reverse=True)
    top = ranked[: max(1, len(ranked) // 4)] if ranked else [1.0]
    return round(_clamp(max(sum(top) / len(top), invalid / total) + min(failures, 5) * 0.02), 4)


@dataclass(frozen=True)
class ReviewPolicy:
    """Who reviews: by default everyone's items go to a human (``auto_accept`` is always False)."""

    auto_accept_tiers: frozenset[str] = field(default_factory=frozenset)
    max_risk: float = 0.0

    @classmethod
    def review_all(cls) -> ReviewPolicy:
        return cls()

    @classmethod
    def auto(cls, tiers: Iterable[str], max_risk: float) -> ReviewPolicy:
        """Auto-accept items of ``tiers`` whose risk is at most ``max_risk``."""
        if not 0.0 <= max_risk <= 1.0:
            raise ValueError(f"max_risk: expected a value in [0, 1], got {max_risk}")
        return cls(frozenset(tiers), max_risk)

    @classmethod
    def from_settings(cls, settings: Any) -> ReviewPolicy:
        tiers = list(settings.auto_accept_tiers)
        return cls.auto(tiers, settings.auto_accept_max_risk) if tiers else cls.review_all()

    @property
    def reviews_everything(self) -> bool:
        return not self.auto_accept_tiers

    def auto_accept(self, item_risk: float, tier: str) -> bool:
        """True when the item may skip human review (the caller records it as auto-accepted)."""
        return tier in self.auto_accept_tiers and item_risk <= self.max_risk

    def describe(self) -> str:
        """What to record next to an auto-acceptance, e.g. ``auto-accept tiers=offline max_risk=0.2``."""
        if self.reviews_everything:
            return "review-all"
        return f"auto-accept tiers={','.join(sorted(self.auto_accept_tiers))} max_risk={self.max_risk}"
