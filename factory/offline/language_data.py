"""The Spanish the offline tier draws on: verb tables, per-skill vocabulary, sentences and drills.

Everything lives as JSON under ``factory/offline/data/``: ``verbs.json`` holds full conjugation
tables (present, preterite, imperfect, future, conditional, present subjunctive, tú imperative,
participle) with each verb's English forms; ``skills_*.json`` map a skill id to its material:

* ``vocab``: ``{"es", "en", "es_alt"?, "en_alt"?}`` word pairs, Spanish with its article;
* ``sentences``: ``{"es", "en", "d", "hint"?, "es_alt"?, "en_alt"?, "note"?}`` where ``es`` marks
  the key words in brackets (``"Me [llamo] Ana."``) and ``d`` lists wrong options for that slot;
* ``drills``: ``{"tense", "frames": [{"verb", "es", "en", "persons"?}]}`` conjugation frames whose
  ``{s}``/``{v}`` (Spanish subject and verb) and ``{S}``/``{v}``/``{O}`` (English subject, verb
  phrase, object pronoun) slots are filled for each grammatical person;
* ``tip``: one line of grammar feedback added to every explanation.

This module only reads and inflects; :mod:`factory.offline.builders` turns the material into items.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data"
TENSES = ("present", "preterite", "imperfect", "future", "conditional", "subjunctive", "perfect")
TENSE_LABELS = {
    "present": "present tense",
    "preterite": "preterite",
    "imperfect": "imperfect",
    "future": "simple future",
    "conditional": "conditional",
    "subjunctive": "present subjunctive",
    "perfect": "present perfect",
}
PERSON_LABELS = ("yo", "tú", "él/ella/usted", "nosotros", "vosotros", "ellos/ellas/ustedes")
HABER = ("he", "has", "ha", "hemos", "habéis", "han")
REFLEXIVE = ("me", "te", "se", "nos", "os", "se")


@dataclass(frozen=True)
class Subject:
    """A grammatical subject as the drills use it, in both languages."""

    es: str
    en: str
    person: int  # index into the six-person conjugation tables
    en_object: str


SUBJECTS: tuple[Subject, ...] = (
    Subject("yo", "I", 0, "me"),
    Subject("tú", "you", 1, "you"),
    Subject("él", "he", 2, "him"),
    Subject("ella", "she", 2, "her"),
    Subject("nosotros", "we", 3, "us"),
    Subject("vosotros", "you all", 4, "you all"),
    Subject("ellos", "they", 5, "them"),
    Subject("ellas", "they", 5, "them"),
)
# Other Spanish subjects that translate the same English subject (pronoun dropped, usted, feminine).
ALTERNATIVE_SUBJECTS: dict[str, tuple[tuple[str, int], ...]] = {
    "I": (("", 0),),
    "you": (("", 1), ("usted", 2), ("", 2)),
    "he": (("", 2),),
    "she": (("", 2),),
    "we": (("nosotras", 3), ("", 3)),
    "they": (("ellas", 5), ("ellos", 5), ("", 5)),
}


class LanguageData:
    """The shipped language data, loaded once from ``data_dir``."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = data_dir or DATA_DIR
        with (self.data_dir / "verbs.json").open(encoding="utf-8") as fh:
            self.verbs: dict[str, dict[str, Any]] = json.load(fh)["verbs"]
        self.skills: dict[str, dict[str, Any]] = {}
        for path in sorted(self.data_dir.glob("skills_*.json")):
            with path.open(encoding="utf-8") as fh:
                for skill_id, material in json.load(fh).items():
                    if skill_id in self.skills:
                        raise ValueError(f"{path.name}: skill {skill_id!r} is defined twice")
                    self.skills[skill_id] = material

    def verb(self, infinitive: str) -> dict[str, Any]:
        try:
            return self.verbs[infinitive]
        except KeyError:
            raise ValueError(f"verb: no conjugation table for {infinitive!r}") from None

    def conjugate(self, infinitive: str, tense: str, person: int) -> str:
        """Return the Spanish form, with its reflexive pronoun, e.g. ``("levantarse", "present", 0)``
        gives ``"me levanto"``; ``"perfect"`` is built from haber and the participle."""
        verb = self.verb(infinitive)
        if tense == "perfect":
            form = f"{HABER[person]} {verb['participle']}"
            return f"{REFLEXIVE[person]} {form}" if verb["reflexive"] else form
        if tense == "imperative":
            return str(verb["imperative"])
        return str(verb[tense][person])

    def english(self, infinitive: str, tense: str, person: int) -> str:
        """Return the English verb phrase for a person and tense (``"speaks"``, ``"used to live"``)."""
        en: dict[str, str] = self.verb(infinitive)["en"]
        if tense in en:
            return en[tense]
        third, base = person == 2, en["base"]
        if base == "be":
            present = ("am", "are", "is", "are", "are", "are")[person]
            past = "was" if person in (0, 2) else "were"
            return {"present": present, "preterite": past}.get(tense) or _modal(tense, "be", en)
        if tense == "present":
            return en["s"] if third else base
        if tense == "preterite":
            return en["past"]
        if tense == "perfect":
            return f"{'has' if third else 'have'} {en['pp']}"
        return _modal(tense, base, en)


def _modal(tense: str, base: str, en: dict[str, str]) -> str:
    prefix = {"imperfect": "used to", "future": "will", "conditional": "would", "subjunctive": "to"}
    if tense == "imperative":
        return base
    if tense not in prefix:
        raise ValueError(f"tense: unknown tense {tense!r}")
    return f"{prefix[tense]} {base}"


@cache
def shipped_data() -> LanguageData:
    """The default data set, loaded once per process."""
    return LanguageData()
