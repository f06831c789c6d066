"""A view answers ``at(i)`` from a few run boundaries instead of a tuple of
every index (filters/content/views.py); it must give what the full
``origin`` gives, for every index of every view."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from filters.content.views import LATIN_FOLD, SHORT_FORMS, TOKEN, squeeze, words
from filters.normalize import normalize

PIECES = [
    "kill", "u", "ur", "yr", "abt", "j.a.i.l", "k i l l", "1 0", "k1ll", "pr!son", "$",
    "坐*牢", "老 赖", "曝，光", "還錢", "，", "。", " ", "  ", "\n", "-", "!", "…", "7",
    "call", "boss", "4|t|h", "@", "x", "征.信", "😀",
]  # fmt: skip
T2S = {ord("還"): "还", ord("錢"): "钱"}


def _text(parts: list[str]) -> str:
    return normalize("".join(parts)).text


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=14))
def test_at_is_origin_in_the_squeezed_view(parts: list[str]) -> None:
    text = _text(parts)
    fast, slow = squeeze(text, T2S), squeeze(text, T2S)
    assert [fast.at(i) for i in range(len(fast.text))] == list(slow.origin)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=14))
def test_at_is_origin_in_the_word_view(parts: list[str]) -> None:
    text = _text(parts)
    fast, slow = words(text), words(text)
    if fast is None or slow is None:
        assert fast is None and slow is None
        return
    assert [fast.at(i) for i in range(len(fast.text))] == list(slow.origin)


def test_chat_spellings_point_into_the_short_form() -> None:
    text = "call ur boss"
    view = words(text)
    assert view is not None and f" {SHORT_FORMS['ur']} " in view.text
    long_start = view.text.index(SHORT_FORMS["ur"])
    assert [view.at(long_start + k) for k in range(5)] == [5, 5, 5, 6, 7]
    assert view.at(0) == 0 and view.at(len(view.text) - 1) == len(text)


def _read_one_by_one(token: str) -> str:
    """How the word view reads one token: a chat spelling as its word, a
    token with a letter folded, one without ("10", "$5") as it is."""
    if token in SHORT_FORMS:
        return SHORT_FORMS[token]
    return token.translate(LATIN_FOLD) if any(c.isalpha() for c in token) else token


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=14))
def test_the_word_view_reads_each_token_as_it_would_alone(parts: list[str]) -> None:
    """The view folds the joined tokens at once where it can: the result must
    be each token read on its own (texts without letters spelled out)."""
    text = _text(parts)
    found = TOKEN.findall(text)
    view = words(text)
    if view is None or any(len(a) == 1 == len(b) for a, b in pairwise(found)):
        return
    assert view.text == f" {' '.join(map(_read_one_by_one, found))} "


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=14))
def test_word_span_is_what_at_gives(parts: list[str]) -> None:
    """``word_span`` answers by word numbers what ``at`` answers by view index."""
    view = words(_text(parts))
    if view is None or view.word_span is None:
        return
    read = view.text[1:-1].split(" ")
    starts = [1]  # view index of each word's first letter
    for word in read[:-1]:
        starts.append(starts[-1] + len(word) + 1)
    for first in range(len(read)):
        for last in range(first, len(read)):
            for offset in range(len(read[last])):
                expected = (view.at(starts[first]), view.at(starts[last] + offset) + 1)
                assert view.word_span(first, last, offset) == expected
