"""What a generation job will cost, before it is submitted: the job is fanned out into batches as the
factory will (`factory.jobs.fan_out`), each batch is scored (`factory.router.complexity`) and routed
to the first tier of its chain (`factory.router.load_tiers`), and priced from that tier's prices:
the prompt actually rendered for the batch, and an expected output per item. The worst case assumes
every call uses its whole `max_output_tokens`. The offline tier costs nothing."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from factory.jobs import fan_out
from factory.prompts import render_generation
from factory.router import BatchRequest, Tier, complexity, load_tiers
from shared.settings import FactorySettings

CHARS_PER_TOKEN = 4
"""Rough size of a token in the prompt's text (English with some Spanish and JSON)."""
OUTPUT_TOKENS_PER_ITEM = 160
"""A generated item as JSON (prompt, choices, answer, explanation) is about this many tokens."""


@dataclass
class TierShare:
    tier: str
    model: str
    paid: bool
    batches: int = 0
    items: int = 0
    usd: float = 0.0
    worst_usd: float = 0.0


@dataclass
class Estimate:
    batches: int
    items: int
    usd: float
    worst_usd: float
    tiers: list[TierShare] = field(default_factory=list)
    complexity: float = 0.0
    budget_usd: float | None = None

    @property
    def free(self) -> bool:
        return self.worst_usd == 0

    @property
    def over_budget(self) -> bool:
        return self.budget_usd is not None and self.worst_usd > self.budget_usd


def first_tier(tiers: list[Tier], score: float) -> Tier:
    """The tier a batch of this complexity goes to first (as `factory.router.Router.chain` orders them)."""
    for t in tiers:
        if t.paid and (t.max_complexity is None or score <= t.max_complexity):
            return t
    return next(t for t in tiers if not t.paid)


def estimate(cfg: FactorySettings, *, course: dict[str, Any], skills: list[dict[str, Any]], count: int,
             level: str | None, topic: str | None, types: list[str], budget_usd: float | None = None) -> Estimate:
    tiers = load_tiers(cfg)
    by_id = {s["id"]: s for s in skills}
    shares: dict[str, TierShare] = {}
    total = worst = 0.0
    top_score = 0.0
    batches = fan_out([s["id"] for s in skills], count, cfg.batch_size) if skills and count > 0 else []
    for batch_no, (skill_id, n) in enumerate(batches):
        skill = dict(by_id[skill_id])
        req = BatchRequest(job_id="estimate", batch_no=batch_no, course=course, skills=[skill],
                           level=level or skill.get("level"), topic=topic, types=types, count=n,
                           language=course.get("language", ""), deadline=None, budget_usd=None)
        score = complexity(req).score
        top_score = max(top_score, score)
        tier = first_tier(tiers, score)
        share = shares.setdefault(tier.name, TierShare(tier=tier.name, model=tier.model, paid=tier.paid))
        share.batches += 1
        share.items += n
        if not tier.paid:
            continue
        prompt = render_generation(course=course, skills=[skill], level=req.level, topic=topic, types=types,
                                   count=n, language=req.language)
        tokens_in = math.ceil((len(prompt.system) + len(prompt.user)) / CHARS_PER_TOKEN)
        tokens_out = min(cfg.max_output_tokens, n * OUTPUT_TOKENS_PER_ITEM)
        usd = (tokens_in * tier.price_in + tokens_out * tier.price_out) / 1_000_000
        worst_usd = (tokens_in * tier.price_in + cfg.max_output_tokens * tier.price_out) / 1_000_000
        share.usd += usd
        share.worst_usd += worst_usd
        total += usd
        worst += worst_usd
    return Estimate(batches=len(batches), items=count if batches else 0, usd=round(total, 4),
                    worst_usd=round(worst, 4), tiers=list(shares.values()), complexity=round(top_score, 3),
                    budget_usd=budget_usd)
