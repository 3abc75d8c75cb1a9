"""Turn one skill's language material into candidate items, one list per question type.

Three sources, each able to yield every type it fits:

* vocabulary pairs give multiple choice both ways (distractors are the skill's other words) and
  translation both ways;
* bracketed sentences give a cloze (the bracket becomes ``___``, with the hint or the English
  sentence as context), a multiple choice over the key and its authored wrong options, and
  translation both ways;
* conjugation drills give, for every person, a cloze with the infinitive as hint (``Yo ___
  (hablar) español.``), a multiple choice among the tense's other forms, and translation both ways
  with the pronoun-dropped, usted and feminine variants as accepted answers.
"""

from __future__ import annotations

import random
import re
from functools import cache
from typing import Any

from factory.offline.language_data import (
    ALTERNATIVE_SUBJECTS,
    PERSON_LABELS,
    SUBJECTS,
    TENSE_LABELS,
    LanguageData,
    Subject,
)
from factory.validation import normalise_text

Item = dict[str, Any]
_DIFFICULTY = {
    "A1": {"multiple_choice": "easy", "cloze": "easy", "to_en": "easy", "to_es": "medium"},
    "A2": {"multiple_choice": "easy", "cloze": "medium", "to_en": "medium", "to_es": "hard"},
    "B1": {"multiple_choice": "medium", "cloze": "medium", "to_en": "medium", "to_es": "hard"},
}
_BRACKET_RE = re.compile(r"\[([^\]]+)\]")
_PRONOUNS = {
    "yo",
    "tú",
    "él",
    "ella",
    "usted",
    "nosotros",
    "nosotras",
    "vosotros",
    "ellos",
    "ellas",
    "ustedes",
}
_MAX_DISTRACTORS = 3
# English contractions, accepted both ways in translations into English.
_CONTRACTIONS = (
    ("I am", "I'm"),
    ("you are", "you're"),
    ("he is", "he's"),
    ("she is", "she's"),
    ("it is", "it's"),
    ("we are", "we're"),
    ("they are", "they're"),
    ("that is", "that's"),
    ("there is", "there's"),
    ("I have", "I've"),
    ("you have", "you've"),
    ("we have", "we've"),
    ("they have", "they've"),
    ("I will", "I'll"),
    ("you will", "you'll"),
    ("he will", "he'll"),
    ("she will", "she'll"),
    ("we will", "we'll"),
    ("they will", "they'll"),
    ("I would", "I'd"),
    ("you would", "you'd"),
    ("do not", "don't"),
    ("does not", "doesn't"),
    ("is not", "isn't"),
    ("are not", "aren't"),
    ("has not", "hasn't"),
    ("have not", "haven't"),
    ("did not", "didn't"),
    ("could not", "couldn't"),
    ("what is", "what's"),
    ("where is", "where's"),
)


def tidy(text: str) -> str:
    """Collapse spaces and capitalise the first letter (after any opening ¿ or ¡)."""
    text = " ".join(text.split()).replace(" ,", ",").replace(" .", ".").replace("¿ ", "¿")
    for i, ch in enumerate(text):
        if ch == "_":  # a sentence that opens with the blank keeps its second word as written
            return text
        if ch.isalpha():
            return text[:i] + ch.upper() + text[i + 1 :]
    return text


def english_variants(text: str, participles: frozenset[str] = frozenset()) -> list[str]:
    """The same English sentence with one contraction expanded, or contracted, per variant.

    "have" is only contracted as an auxiliary, i.e. before one of ``participles`` ("I've seen",
    never "I've a shower").
    """
    variants = []
    for pattern, replacement in _contraction_patterns(participles):
        if (found := pattern.search(text)) is not None:
            start, end = found.span()
            variants.append(text[:start] + _match_case(found.group(0), replacement) + text[end:])
    return variants


@cache
def _contraction_patterns(participles: frozenset[str]) -> tuple[tuple[re.Pattern[str], str], ...]:
    patterns = []
    for long_, short in _CONTRACTIONS:
        for a, b in ((long_, short), (short, long_)):
            after = r"(?![\w'])"
            if a.endswith(" have"):
                after = rf"(?= (?:{'|'.join(map(re.escape, sorted(participles))) or '(?!)'})\b)"
            patterns.append((re.compile(rf"(?<![\w']){re.escape(a)}{after}", re.IGNORECASE), b))
    return tuple(patterns)


def _match_case(found: str, replacement: str) -> str:
    return replacement[0].upper() + replacement[1:] if found[0].isupper() else replacement


def _unique(answer: str, options: list[str]) -> list[str]:
    seen, out = {normalise_text(answer)}, []
    for option in options:
        if (norm := normalise_text(option)) not in seen:
            seen.add(norm)
            out.append(option)
    return out


class SkillBuilder:
    """Builds candidate items for one skill from its material in :class:`LanguageData`."""

    def __init__(self, data: LanguageData, skill: dict[str, Any]) -> None:
        self.data = data
        self.skill_id: str = str(skill.get("id"))
        try:
            self.material: dict[str, Any] = data.skills[self.skill_id]
        except KeyError:
            raise ValueError(f"skill: no offline language data for {self.skill_id!r}") from None
        self.difficulty = _DIFFICULTY.get(skill.get("level", "A2"), _DIFFICULTY["A2"])
        self.tip: str = self.material.get("tip", "")
        self._cache: dict[str, list[Item]] = {}
        self.participles = frozenset(
            {v["en"]["pp"].split()[0] for v in data.verbs.values()} | {"already", "never", "just", "been"}
        )

    def candidates(self, qtype: str) -> list[Item]:
        """Every candidate this skill's material yields for ``qtype`` (built once, then cached).

        A multiple-choice candidate lists the answer first, then its pool of wrong options, closest
        in length first; :func:`finish` turns a candidate into an item for a given ``Random``.
        """
        if qtype not in self._cache:
            items: list[Item] = []
            for entry in self.material.get("vocab", []):
                items.extend(self._vocab(entry, qtype))
            for entry in self.material.get("sentences", []):
                items.extend(self._sentence(entry, qtype))
            drills: dict[str, Any] = self.material.get("drills") or {"tense": "present", "frames": []}
            for frame in drills["frames"]:
                for subject in SUBJECTS:
                    if subject.person in frame.get("persons", range(6)):
                        items.extend(self._drill(drills["tense"], frame, subject, qtype))
            self._cache[qtype] = items
        return self._cache[qtype]

    # -- item assembly ---------------------------------------------------------------------
    def _item(
        self,
        qtype: str,
        prompt: str,
        answer: str,
        explanation: str,
        *,
        choices: list[str] | None = None,
        accepted: list[str] | None = None,
        difficulty: str | None = None,
    ) -> Item:
        explanation = f"{explanation} {self.tip}".strip()
        return {
            "type": qtype,
            "skill": self.skill_id,
            "prompt": prompt,
            "choices": choices,
            "answer": answer,
            "accepted_answers": _unique(answer, accepted or []),
            "explanation": explanation,
            "difficulty": difficulty or self.difficulty[qtype],
        }

    def _choice_list(self, answer: str, wrong: list[str]) -> list[str] | None:
        wrong = _unique(answer, wrong)
        if len(wrong) < 2:
            return None
        # Prefer distractors about as long as the answer: a much longer option gives itself away.
        return [answer, *sorted(wrong, key=lambda w: abs(len(w) - len(answer)))[: _MAX_DISTRACTORS + 2]]

    def _translations(self, es: str, en: str, es_alt: list[str], en_alt: list[str], why: str) -> list[Item]:
        return [
            self._item(
                "translation",
                f'Translate into English: "{es}"',
                en,
                why,
                accepted=[
                    *en_alt,
                    *(v for text in (en, *en_alt) for v in english_variants(text, self.participles)),
                ],
                difficulty=self.difficulty["to_en"],
            ),
            self._item(
                "translation",
                f'Translate into Spanish: "{en}"',
                es,
                why,
                accepted=es_alt,
                difficulty=self.difficulty["to_es"],
            ),
        ]

    # -- sources ---------------------------------------------------------------------------
    def _vocab(self, entry: dict[str, Any], qtype: str) -> list[Item]:
        es, en = entry["es"], entry["en"]
        why = f'"{es}" means "{en}".'
        if qtype == "translation":
            return self._translations(es, en, entry.get("es_alt", []), entry.get("en_alt", []), why)
        if qtype != "multiple_choice":
            return []
        others = [e for e in self.material["vocab"] if e is not entry]
        items = []
        for prompt, answer, wrong in (
            (f'What does "{es}" mean?', en, [e["en"] for e in others]),
            (f'How do you say "{en}" in Spanish?', es, [e["es"] for e in others]),
        ):
            if (choices := self._choice_list(answer, wrong)) is not None:
                items.append(self._item(qtype, prompt, answer, why, choices=choices))
        return items

    def _sentence(self, entry: dict[str, Any], qtype: str) -> list[Item]:
        marked, en = entry["es"], entry["en"]
        keys = _BRACKET_RE.findall(marked)
        if len(keys) != 1:
            raise ValueError(f"sentence {marked!r}: mark exactly one key in [brackets]")
        key = keys[0]
        es = _BRACKET_RE.sub(key, marked)
        note = entry.get("note", "")
        if qtype == "translation":
            es_alt = list(entry.get("es_alt", []))
            first, _, rest = es.partition(" ")
            if first.lower() in _PRONOUNS and rest:
                es_alt.append(tidy(rest))
            return self._translations(
                es, en, es_alt, entry.get("en_alt", []), f'"{es}" means "{en}" {note}'.strip()
            )
        blank = "___" + (f" ({entry['hint']})" if entry.get("hint") else "")
        gapped = tidy(_BRACKET_RE.sub(blank, marked))
        why = f'"{key}" completes the sentence: "{es}" means "{en}" {note}'.strip()
        if qtype == "cloze":
            return [self._item(qtype, f'{gapped} — "{en}"', key, why)]
        if qtype == "multiple_choice":
            choices = self._choice_list(key, list(entry["d"]))
            if choices is not None:
                prompt = f'Which option completes the sentence? "{gapped}" — "{en}"'
                return [self._item(qtype, prompt, key, why, choices=choices)]
        return []

    def _drill(self, tense: str, frame: dict[str, Any], subject: Subject, qtype: str) -> list[Item]:
        verb, person = frame["verb"], subject.person
        form = self.data.conjugate(verb, tense, person)
        es = tidy(frame["es"].format(s=subject.es, v=form))
        en_verb = self.data.english(frame.get("en_verb", verb), tense, person)
        en = tidy(frame["en"].format(S=subject.en, O=subject.en_object, v=en_verb))
        label = f"the {PERSON_LABELS[person]} form of {verb} in the {TENSE_LABELS[tense]}"
        why = f'"{form}" is {label}: "{es}" means "{en}"'
        if qtype == "translation":
            if person == 4:  # English has no plain "you all" register to translate back from
                return []
            es_alt = [
                tidy(frame["es"].format(s=alt, v=self.data.conjugate(verb, tense, p)))
                for alt, p in ALTERNATIVE_SUBJECTS.get(subject.en, ())
            ]
            return self._translations(es, en, es_alt, [], why)
        gapped = tidy(frame["es"].format(s=subject.es, v=f"___ ({verb})"))
        if qtype == "cloze":
            return [self._item(qtype, gapped, form, why)]
        if qtype == "multiple_choice":
            wrong = [self.data.conjugate(verb, tense, p) for p in range(6) if p != person]
            choices = self._choice_list(form, wrong)
            if choices is not None:
                return [
                    self._item(
                        qtype, f'Which form completes the sentence? "{gapped}"', form, why, choices=choices
                    )
                ]
        return []


def finish(candidate: Item, rng: random.Random) -> Item:
    """Return a fresh item from a candidate: for multiple choice, pick up to three of its wrong
    options with ``rng`` and shuffle them with the answer."""
    item = dict(candidate)
    if item["type"] == "multiple_choice":
        answer, *wrong = candidate["choices"]
        choices = [answer, *rng.sample(wrong, min(_MAX_DISTRACTORS, len(wrong)))]
        rng.shuffle(choices)
        item["choices"] = choices
    item["accepted_answers"] = list(candidate["accepted_answers"])
    return item
