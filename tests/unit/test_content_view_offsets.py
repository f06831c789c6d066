"""A view answers ``at(i)`` from a few run boundaries instead of a tuple of
every index (filters/content/views.py); it must give what the full
``origin`` gives, for every index of every view."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from filters.content.views import SHORT_FORMS, squeeze, words
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
