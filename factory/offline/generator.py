"""The offline, rule-based generation tier: real Spanish questions with no model and no network.

The last tier of the router, and the whole of generation when no LLM key is configured. It does
not invent language: every item is assembled from hand-checked material shipped as JSON in
``factory/offline/data/`` (vocabulary pairs, bracketed example sentences with authored wrong
options, and conjugation frames over full verb tables; see :mod:`factory.offline.language_data`).
:mod:`factory.offline.builders` turns a skill's material into every candidate item of a type;
this module shuffles those candidates with ``random.Random(seed)``, cycles through the requested
types, and keeps only candidates that pass :func:`factory.validation.validate_item` with no error —
the same gate LLM output goes through. So a seed always gives the same items, and different seeds
give different selections and choice orders; when a skill's pool of one type runs out the pool is
reshuffled and items repeat (de-duplication downstream removes exact repeats).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from factory.offline.builders import Item, SkillBuilder, finish
from factory.offline.language_data import LanguageData, shipped_data
from factory.schemas import QUESTION_TYPES
from factory.validation import validate_item


class OfflineGenerator:
    """Generate schema-valid items for any skill the shipped language data covers."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data = shipped_data() if data_dir is None else LanguageData(data_dir)
        self._builders: dict[tuple[str, str], SkillBuilder] = {}

    def covers(self, skill_id: str) -> bool:
        """Whether the shipped data has material for this skill."""
        return skill_id in self.data.skills

    def generate(
        self, skill: dict[str, Any], types: list[str], count: int, seed: str
    ) -> list[dict[str, Any]]:
        """Return ``count`` items for ``skill`` (a curriculum skill dict), cycling through ``types``.

        Deterministic for a given ``seed``. Raises ``ValueError`` naming the field when a type is
        unknown, the count is negative, or the skill has no offline material for a requested type.
        """
        if count < 0:
            raise ValueError("count: must not be negative")
        if not types:
            raise ValueError("types: choose at least one question type")
        for qtype in types:
            if qtype not in QUESTION_TYPES:
                raise ValueError(f"types: unknown question type {qtype!r}")
        key = (str(skill.get("id")), str(skill.get("level")))
        if key not in self._builders:
            self._builders[key] = SkillBuilder(self.data, skill)
        builder = self._builders[key]
        rng = random.Random(seed)
        pools: dict[str, list[Item]] = {}
        items: list[Item] = []
        for i in range(count):
            qtype = types[i % len(types)]
            items.append(self._next(builder, skill, qtype, pools, rng))
        return items

    def _next(
        self,
        builder: SkillBuilder,
        skill: dict[str, Any],
        qtype: str,
        pools: dict[str, list[Item]],
        rng: random.Random,
    ) -> Item:
        for _ in range(2):  # a refill may be needed once; an empty refill means no material
            pool = pools.get(qtype)
            if not pool:
                pool = pools[qtype] = list(builder.candidates(qtype))
                rng.shuffle(pool)
            while pool:
                item = finish(pool.pop(), rng)
                if validate_item(item, skill=skill).valid:
                    return item
        raise ValueError(f"types: skill {skill['id']!r} has no offline material for {qtype!r} items")
