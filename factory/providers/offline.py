"""Tier 3: the offline rule-based generator behind the provider protocol.

It reads the machine-readable :class:`~factory.providers.base.BatchSpec` instead of the prompt,
never fails for transport reasons, costs nothing, and is deterministic for a given seed — so a
generation job always finishes, with every LLM provider down or no key configured.
"""

from __future__ import annotations

import json
import time
from typing import Any

from factory.offline.generator import OfflineGenerator
from factory.providers.base import CompletionRequest, CompletionResponse

OFFLINE_MODEL = "rules"


class OfflineProvider:
    name = "offline"

    def __init__(self) -> None:
        self._generator = OfflineGenerator()

    async def complete(self, req: CompletionRequest) -> CompletionResponse:
        spec = req.spec
        started = time.perf_counter()
        items: list[dict[str, Any]] = []
        skills = spec.skills or []
        covered = [s for s in skills if self._generator.covers(str(s.get("id")))]
        for i, skill in enumerate(covered):
            share = spec.count // len(covered) + (1 if i < spec.count % len(covered) else 0)
            if share:
                items.extend(self._generate(skill, list(spec.types), share, f"{spec.seed}:{skill.get('id')}"))
        data = {"items": items}
        return CompletionResponse(
            text=json.dumps(data, ensure_ascii=False),
            data=data,
            finish="stop",
            refusal=None,
            tokens_in=0,
            tokens_out=0,
            latency_s=time.perf_counter() - started,
            model=OFFLINE_MODEL,
        )

    def _generate(self, skill: dict[str, Any], types: list[str], count: int, seed: str) -> list[dict[str, Any]]:
        """Items of the requested types the skill has material for (possibly none)."""
        try:
            return self._generator.generate(skill, types, count, seed)
        except ValueError:
            usable = []
            for qtype in types:
                try:
                    self._generator.generate(skill, [qtype], 1, seed)
                except ValueError:
                    continue
                usable.append(qtype)
            return self._generator.generate(skill, usable, count, seed) if usable else []

    async def aclose(self) -> None:
        return None
