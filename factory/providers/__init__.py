"""LLM providers behind one protocol: OpenAI (and any OpenAI-compatible endpoint), Anthropic, and
the offline rule-based tier. See :mod:`factory.providers.base` for the contract and the errors."""

from __future__ import annotations

from factory.providers.base import (
    BatchRequest,
    BatchResult,
    BatchSpec,
    CallRecord,
    CompletionRequest,
    CompletionResponse,
    ItemProvenance,
    Provider,
    ProviderError,
)

__all__ = [
    "BatchRequest",
    "BatchResult",
    "BatchSpec",
    "CallRecord",
    "CompletionRequest",
    "CompletionResponse",
    "ItemProvenance",
    "Provider",
    "ProviderError",
]
