"""Tests for filters.normalize (text normalisation for matching)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filters.normalize import Normalized, _normalize_slow, normalize


def test_full_width_digits_map_back() -> None:
    original = "电话１３８"
    result = normalize(original)
    assert result.text == "电话138"
    assert result.offsets == (0, 1, 2, 3, 4)
    start = result.text.index("138")
    assert result.span(start, start + 3) == (2, 5)
    assert original[2:5] == "１３８"


def test_full_width_letters_and_punctuation() -> None:
    assert normalize("ＡＢＣ，！（）").text == "abc,!()"


def test_enclosed_and_compatibility_forms() -> None:
    assert normalize("①②③").text == "123"
    assert normalize("⑴").text == "(1)"
    assert normalize("ﬁ").text == "fi"


def test_multi_char_expansion_maps_to_same_original() -> None:
    result = normalize("5㎏!")
    assert result.text == "5kg!"
    assert result.offsets == (0, 1, 1, 2)
    assert result.span(1, 2) == (1, 2)  # "k" covers the whole "㎏"
    assert result.span(2, 3) == (1, 2)
    assert result.span(0, 2) == (0, 2)


def test_casefold() -> None:
    assert normalize("ABC Straße ΣΑΣ").text == "abc strasse σασ"
    result = normalize("Straße")
    assert result.offsets == (0, 1, 2, 3, 4, 4, 5)


@pytest.mark.parametrize(
    "invisible",
    [
        "\u200b",
        "\u200c",
        "\u200d",
        "\u200e",
        "\u200f",
        "\u202a",
        "\u202b",
        "\u202c",
        "\u202d",
        "\u202e",
        "\u2060",
        "\u2061",
        "\u2062",
        "\u2063",
        "\u2064",
        "\ufeff",
        "\u180e",
        "\u00ad",
        "\u034f",
        "\ufe0f",
        "\x00",
        "\x07",
        "\x7f",
    ],
)
def test_invisible_and_control_chars_dropped(invisible: str) -> None:
    original = f"贷{invisible}款"
    result = normalize(original)
    assert result.text == "贷款"
    assert result.offsets == (0, 2)
    assert result.span(0, 2) == (0, 3)  # covers the dropped character inside
    assert result.span(1, 2) == (2, 3)


def test_zero_width_run_inside_keyword() -> None:
    original = "请还\u200b\u200d\ufeff款"
    result = normalize(original)
    assert result.text == "请还款"
    start = result.text.index("还款")
    assert result.span(start, start + 2) == (1, 6)


def test_whitespace_maps_to_single_space() -> None:
    assert normalize("逾期\u3000\u3000\u30003天").text == "逾期 3天"
    assert normalize("a\u00a0\u2003 \t\r b").text == "a b"
    result = normalize("a \u200b b")
    assert result.text == "a b"
    assert result.offsets == (0, 1, 4)


def test_newline_kept_other_controls_dropped() -> None:
    assert normalize("a\nb").text == "a\nb"
    assert normalize("a\r\nb").text == "a \nb"
    assert normalize("a\x1bb").text == "ab"


def test_ascii_and_chinese_unchanged() -> None:
    text = "尊敬的客户,您的借款已逾期3天。"
    result = normalize(text)
    assert result.text == text
    assert result.offsets == tuple(range(len(text)))


def test_empty() -> None:
    result = normalize("")
    assert result == Normalized("", ())
    assert result.span(0, 0) == (0, 0)


def test_span_empty_and_bounds() -> None:
    result = normalize("a\u200bb")
    assert result.span(1, 1) == (2, 2)
    assert result.span(2, 2) == (3, 3)
    with pytest.raises(ValueError, match="out of range"):
        result.span(0, 3)
    with pytest.raises(ValueError, match="out of range"):
        result.span(2, 1)
    with pytest.raises(ValueError, match="out of range"):
        result.span(-1, 1)


def test_offsets_length_checked() -> None:
    with pytest.raises(ValueError, match="one entry per character"):
        Normalized("ab", (0,))


def test_original_text_not_needed_to_be_changed() -> None:
    original = "ＡＢ\u200b"
    normalize(original)
    assert original == "ＡＢ\u200b"


# --- properties -----------------------------------------------------------------

_SPECIAL = st.sampled_from(
    [
        *["１", "Ａ", "\u200b", "\u3000", " ", "\u00a0", "㎏", "ß", "A", "中", "\U0001f600"],
        *["\n", "\t", "¨", "\ufe0f", "\x00", "…", "ﬁ", "①", "e", "\u0301", "İ"],
    ]
)
texts = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=_SPECIAL, max_size=80),
    st.lists(st.one_of(_SPECIAL, st.characters()), max_size=80).map("".join),
)


@given(texts)
def test_offsets_non_decreasing_and_in_range(text: str) -> None:
    result = normalize(text)
    assert len(result.offsets) == len(result.text)
    assert list(result.offsets) == sorted(result.offsets)
    assert all(0 <= o < len(text) for o in result.offsets)


@given(texts)
def test_span_covers_producing_char(text: str) -> None:
    result = normalize(text)
    for i, ch in enumerate(result.text):
        start, end = result.span(i, i + 1)
        assert (start, end) == (result.offsets[i], result.offsets[i] + 1)
        # The original character there, normalised alone, produces ch.
        assert ch in normalize(text[start:end]).text
    if result.text:
        assert result.span(0, len(result.text)) == (result.offsets[0], result.offsets[-1] + 1)


@given(texts)
def test_chars_grouped_by_offset_are_per_char_normalisation(text: str) -> None:
    result = normalize(text)
    groups: dict[int, str] = {}
    for ch, offset in zip(result.text, result.offsets, strict=True):
        groups[offset] = groups.get(offset, "") + ch
    for index, original in enumerate(text):
        alone = normalize(original).text
        got = groups.get(index, "")
        # Only a leading space can go missing (collapsed into a previous one).
        assert got == alone or (alone.startswith(" ") and got == alone[1:])


@given(texts)
def test_output_is_clean_and_idempotent(text: str) -> None:
    out = normalize(text).text
    assert "  " not in out
    for ch in out:
        assert ch == "\n" or unicodedata.category(ch) not in ("Cc", "Cf")
        assert ch == " " or ch == "\n" or not ch.isspace()
    assert normalize(out).text == out


@given(texts)
def test_fast_path_matches_slow_path(text: str) -> None:
    assert normalize(text) == _normalize_slow(text)
