"""Property tests of grading (serving/grading.py): the canonical answer in any case, spacing or edge
punctuation is correct; an accent-folded variant is never correct but gets the accents hint; a
multiple-choice question accepts nothing but its answer."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from serving.grading import grade
from shared.text import fold_accents, normalise_text

LETTERS = "abcdefghijklmnñopqrstuvwxyzáéíóúü"
word = st.text(alphabet=LETTERS, min_size=1, max_size=8)
answers = st.lists(word, min_size=1, max_size=4).map(" ".join)
spaces = st.sampled_from([" ", "  ", "\t", " \n ", "\u00a0"])
lead = st.text(alphabet="¿¡\"'«([ -", max_size=3)
trail = st.text(alphabet="?!.,;:\"'»)] -", max_size=3)
OPEN_TYPES = ("cloze", "translation")


def content(answer: str, choices: list[str] | None = None) -> dict[str, object]:
    return {"answer": answer, "accepted_answers": [], "explanation": "", "choices": choices}


@st.composite
def disguised(draw: st.DrawFn, answer: str) -> str:
    """The answer with random case per letter, any white space between words, edge punctuation."""
    cased = "".join(c.upper() if draw(st.booleans()) else c for c in answer)
    words = cased.split(" ")
    joined = words[0] + "".join(draw(spaces) + w for w in words[1:])
    return draw(lead) + draw(spaces.filter(lambda _: draw(st.booleans())) | st.just("")) + joined + draw(trail)


@settings(max_examples=200, deadline=None)
@given(st.data(), answers, st.sampled_from(("multiple_choice", *OPEN_TYPES)))
def test_the_answer_however_typed_is_correct(data: st.DataObject, answer: str, qtype: str) -> None:
    given_text = data.draw(disguised(answer))
    choices = [answer, answer + "x", "otra cosa"] if qtype == "multiple_choice" else None
    result = grade(qtype, content(answer, choices), given_text)
    assert result.correct, (answer, given_text)
    assert result.expected == answer


@settings(max_examples=200, deadline=None)
@given(st.data(), answers, st.sampled_from(OPEN_TYPES))
def test_accent_folded_answers_are_never_correct_but_get_the_hint(data: st.DataObject, answer: str,
                                                                  qtype: str) -> None:
    folded = fold_accents(answer)
    assume(normalise_text(folded) != normalise_text(answer))
    result = grade(qtype, content(answer), data.draw(disguised(folded)))
    assert not result.correct
    assert "accents" in result.feedback and answer in result.feedback


@settings(max_examples=300, deadline=None)
@given(answers, st.lists(answers, min_size=1, max_size=4), st.text(max_size=40) | answers)
def test_multiple_choice_accepts_only_its_answer(answer: str, others: list[str], given_text: str) -> None:
    choices = [answer, *others]
    c = content(answer, choices) | {"accepted_answers": others}  # alternatives never apply to a choice
    result = grade("multiple_choice", c, given_text)
    assert result.correct == (normalise_text(given_text) == normalise_text(answer))
    if normalise_text(given_text) != normalise_text(answer):
        assert "accents" not in result.feedback  # no 'almost' on a choice
