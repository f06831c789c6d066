"""Tests for filters.segments (SMS length and segment counting)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filters.segments import (
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    UCS2,
    SegmentCount,
    count_segments,
)

CJK = "中"
EMOJI = "\U0001f600"


def intl(text: str) -> SegmentCount:
    return count_segments(text, region=None)


def cn(text: str) -> SegmentCount:
    return count_segments(text, region="CN")


# --- GSM 03.38 tables --------------------------------------------------------


def test_gsm_tables_sizes_and_disjoint() -> None:
    assert len(GSM7_BASIC) == 127  # 128 positions minus the escape
    assert len(GSM7_EXTENSION) == 10
    assert GSM7_BASIC.isdisjoint(GSM7_EXTENSION)
    assert "\x1b" not in GSM7_BASIC


@pytest.mark.parametrize(
    "ch",
    [*"@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà", "\n", "\r", " ", "A", "z", "0"],
)
def test_basic_table_members(ch: str) -> None:
    assert ch in GSM7_BASIC
    assert intl(ch) == SegmentCount(GSM7, 1, 1)


@pytest.mark.parametrize("ch", [*"^{}\\[~]|€", "\x0c"])
def test_extension_chars_count_two(ch: str) -> None:
    assert intl(ch) == SegmentCount(GSM7, 2, 1)


@pytest.mark.parametrize(
    "text",
    [
        "ça va",  # only capital Ç is in the table
        "`",  # backtick is not GSM
        "\x1b",  # a bare escape is not a character
        "\u0391",  # Greek capital alpha (looks like A, not in the table)
        "\u2126",  # Ohm sign (looks like Ω, not in the table)
        "naïve",
        "\t",
        "hello " + CJK,
    ],
)
def test_non_gsm_forces_ucs2(text: str) -> None:
    result = intl(text)
    assert result.encoding == UCS2
    assert result.units == len(text)


# --- GSM-7 limits -------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_limits(length: int, segments: int) -> None:
    assert intl("a" * length) == SegmentCount(GSM7, length, segments)


def test_euro_counts_two_septets() -> None:
    assert intl("Pay 5€ now") == SegmentCount(GSM7, 11, 1)
    assert intl("€" * 80) == SegmentCount(GSM7, 160, 1)
    assert intl("€" * 80 + "a") == SegmentCount(GSM7, 161, 2)
    assert intl("a" * 159 + "€") == SegmentCount(GSM7, 161, 2)


def test_extension_pair_not_split_at_part_boundary() -> None:
    # 306 septets would fit two parts of 153, but "€" cannot straddle the
    # boundary after 152 septets, so it opens part 2 and the tail spills over.
    text = "a" * 152 + "€" + "a" * 152
    assert intl(text) == SegmentCount(GSM7, 306, 3)
    # Same length with the euro placed where it fits: two parts.
    assert intl("a" * 151 + "€" + "a" * 153).segments == 2


# --- UCS-2 limits -------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3)],
)
def test_ucs2_chinese_limits(length: int, segments: int) -> None:
    assert intl(CJK * length) == SegmentCount(UCS2, length, segments)


def test_emoji_counts_two_units() -> None:
    assert intl(EMOJI) == SegmentCount(UCS2, 2, 1)
    assert intl(EMOJI * 35) == SegmentCount(UCS2, 70, 1)
    assert intl(EMOJI * 35 + "a") == SegmentCount(UCS2, 71, 2)


def test_surrogate_pair_not_split_at_part_boundary() -> None:
    text = CJK * 66 + EMOJI + CJK * 66
    assert intl(text) == SegmentCount(UCS2, 134, 3)
    assert intl(CJK * 65 + EMOJI + CJK * 67).segments == 2


def test_lone_surrogate_counts_one_unit() -> None:
    assert intl("\ud800") == SegmentCount(UCS2, 1, 1)


# --- mainland China -------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (160, 3), (500, 8)],
)
def test_cn_limits(length: int, segments: int) -> None:
    assert cn(CJK * length) == SegmentCount(UCS2, length, segments)


def test_cn_english_text_still_70_67() -> None:
    assert cn("a" * 70) == SegmentCount(UCS2, 70, 1)
    assert cn("a" * 71) == SegmentCount(UCS2, 71, 2)
    assert cn("a" * 160) == SegmentCount(UCS2, 160, 3)  # 67 + 67 + 26


def test_cn_every_code_point_counts_one() -> None:
    assert cn("€" * 70) == SegmentCount(UCS2, 70, 1)
    assert cn(EMOJI * 70) == SegmentCount(UCS2, 70, 1)
    assert intl(EMOJI * 70) == SegmentCount(UCS2, 140, 3)


def test_cn_signature_example() -> None:
    text = "【某某消费金融】尊敬的客户，您的借款已逾期3天，请尽快还款。"
    assert cn(text) == SegmentCount(UCS2, len(text), 1)


def test_region_matching() -> None:
    text = "a" * 100
    assert count_segments(text, region="cn").segments == 2
    assert count_segments(text, region="HK") == SegmentCount(GSM7, 100, 1)
    assert count_segments(text, region="US") == intl(text)


def test_empty_text_has_no_segments() -> None:
    assert intl("") == SegmentCount(GSM7, 0, 0)
    assert cn("") == SegmentCount(UCS2, 0, 0)


# --- properties -----------------------------------------------------------------

_ALPHABET = st.sampled_from(["a", "Z", "7", " ", "\n", "@", "é", "€", "{", "\x0c", "ç", CJK, EMOJI])
texts = st.text(alphabet=_ALPHABET, max_size=400)
gsm_texts = st.text(alphabet=st.sampled_from(sorted(GSM7_BASIC | GSM7_EXTENSION)), max_size=400)


def _reference_parts(text: str) -> tuple[str, list[list[int]]]:
    """Split ``text`` into concrete parts of code units, independently of the module."""
    if set(text) <= GSM7_BASIC | GSM7_EXTENSION:
        encoding, single, per_part = GSM7, 160, 153
        units: list[int] = []
        for ch in text:
            units.extend([0x1B, ord(ch)] if ch in GSM7_EXTENSION else [ord(ch)])
    else:
        encoding, single, per_part = UCS2, 70, 67
        raw = text.encode("utf-16-be", "surrogatepass")
        units = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    if len(units) <= single:
        return encoding, [units] if units else []
    parts: list[list[int]] = []
    rest = units
    while rest:
        cut = min(per_part, len(rest))
        # A part must not end on an escape or a high surrogate.
        if cut < len(rest) and (
            (encoding == GSM7 and rest[cut - 1] == 0x1B)
            or (encoding == UCS2 and 0xD800 <= rest[cut - 1] <= 0xDBFF)
        ):
            cut -= 1
        parts.append(rest[:cut])
        rest = rest[cut:]
    return encoding, parts


@given(texts)
def test_matches_reference_split(text: str) -> None:
    encoding, parts = _reference_parts(text)
    result = intl(text)
    assert result.encoding == encoding
    assert result.units == sum(len(p) for p in parts)
    assert result.segments == len(parts)


@given(texts)
def test_segments_monotonic_in_length(text: str) -> None:
    for region in (None, "CN"):
        counts = [count_segments(text[:k], region=region).segments for k in range(len(text) + 1)]
        assert counts == sorted(counts)


@given(gsm_texts)
def test_gsm_single_part_bound(text: str) -> None:
    result = intl(text)
    assert result.encoding == GSM7
    assert result.units == len(text) + sum(ch in GSM7_EXTENSION for ch in text)
    assert (result.segments == 1) == (0 < result.units <= 160)
    if result.units > 160:
        # Greedy packing wastes at most one septet per part.
        assert math.ceil(result.units / 153) <= result.segments <= math.ceil(result.units / 152)


@given(st.text(max_size=300))
def test_cn_rule_is_code_points(text: str) -> None:
    result = cn(text)
    n = len(text)
    expected = 0 if n == 0 else 1 if n <= 70 else math.ceil(n / 67)
    assert result == SegmentCount(UCS2, n, expected)
