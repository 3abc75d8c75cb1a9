"""Text normalisation shared by grading (serving) and validation/de-duplication (factory)."""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")
_EDGE_PUNCT = "¿?¡!.,;:\"'«»()[]-–— "


def fold_accents(s: str) -> str:
    decomposed = unicodedata.normalize("NFD", s)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if unicodedata.category(c) != "Mn"))


def normalise_text(s: str, *, strict_accents: bool = True) -> str:
    """Lower-case, trim, collapse white space, drop surrounding punctuation (¿? ¡! . , ; …);
    with `strict_accents=False` also fold accents (é → e, ñ → n)."""
    out = unicodedata.normalize("NFC", s).casefold()
    out = _SPACE.sub(" ", out).strip(_EDGE_PUNCT)
    out = _SPACE.sub(" ", re.sub(r"\s*([¿?¡!.,;:])\s*", r"\1 ", out)).strip(_EDGE_PUNCT).strip()
    return out if strict_accents else fold_accents(out)
