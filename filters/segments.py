"""SMS length and segment counting.

Pure functions, no I/O. Two billing models are implemented:

* Mainland China (``region == "CN"``): every Unicode code point counts as one
  character, whatever it is (Chinese, Latin, digit, punctuation, space, emoji).
  Up to 70 characters is one message; a longer text is billed as
  ``ceil(n / 67)`` parts.
* Everywhere else: if every character belongs to the GSM 03.38 default
  alphabet or its extension table, the text is GSM-7 (160 septets in one
  message, 153 per part of a concatenated one; an extension character costs
  two septets, escape + character, and the pair is never split across parts).
  Otherwise the text is UCS-2, counted in UTF-16 code units (70 / 67; a
  character outside the BMP is a surrogate pair of two units, never split).

The 153 / 67 per-part sizes come from the concatenation user data header,
which takes 7 septets (GSM-7) or 3 UCS-2 units of every part.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "GSM7",
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "UCS2",
    "SegmentCount",
    "count_segments",
]

GSM7: Final = "GSM-7"
UCS2: Final = "UCS-2"

# GSM 03.38 default alphabet, in code order 0x00..0x7F. Position 0x1B is the
# escape to the extension table and is not a character of its own, so it is
# left out (marked by the placeholder below and removed when building the set).
_ESC_PLACEHOLDER: Final = "\x1b"
_GSM7_BASIC_TABLE: Final = (
    # 0x00-0x0F
    "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5"
    # 0x10-0x1F: Δ _ Φ Γ Λ Ω Π Ψ Σ Θ Ξ (ESC) Æ æ ß É
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e"
    + _ESC_PLACEHOLDER
    + "\u00c6\u00e6\u00df\u00c9"
    # 0x20-0x2F (0x24 is the currency sign ¤, not the dollar)
    " !\"#\u00a4%&'()*+,-./"
    # 0x30-0x3F
    "0123456789:;<=>?"
    # 0x40-0x5F
    "\u00a1ABCDEFGHIJKLMNOPQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7"
    # 0x60-0x7F
    "\u00bfabcdefghijklmnopqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0"
)

GSM7_BASIC: Final[frozenset[str]] = frozenset(_GSM7_BASIC_TABLE) - {_ESC_PLACEHOLDER}
"""Characters of the GSM 03.38 default alphabet (one septet each)."""

GSM7_EXTENSION: Final[frozenset[str]] = frozenset("\x0c^{}\\[~]|\u20ac")
"""Characters of the GSM 03.38 extension table (escape + char: two septets each)."""

_GSM7_ALL: Final[frozenset[str]] = GSM7_BASIC | GSM7_EXTENSION

# (whole-message limit, per-part limit) in septets or UTF-16 code units.
_GSM7_LIMITS: Final = (160, 153)
_UCS2_LIMITS: Final = (70, 67)


@dataclass(frozen=True, slots=True)
class SegmentCount:
    """Result of :func:`count_segments`.

    ``encoding`` is ``"GSM-7"`` or ``"UCS-2"``; ``units`` is septets for
    GSM-7, UTF-16 code units for UCS-2 elsewhere, and code points for the
    mainland China rule; ``segments`` is the number of billed messages
    (0 for an empty text).
    """

    encoding: str
    units: int
    segments: int


def count_segments(text: str, *, region: str | None) -> SegmentCount:
    """Count the billed SMS segments of ``text`` sent to ``region``.

    ``region`` is an ISO 3166 alpha-2 code of the destination (``"CN"`` for
    mainland China, compared case-insensitively) or ``None`` when unknown,
    which uses the international GSM-7 / UCS-2 rule.
    """
    if region is not None and region.upper() == "CN":
        return _count_cn(text)
    chars = set(text)
    if chars <= GSM7_BASIC:
        return _simple(GSM7, len(text), _GSM7_LIMITS)
    if chars <= _GSM7_ALL:
        return _count_gsm7(text, chars & GSM7_EXTENSION)
    return _count_ucs2(text)


def _count_cn(text: str) -> SegmentCount:
    # Mainland carriers bill per character; the encoding on the air is UCS-2.
    return _simple(UCS2, len(text), _UCS2_LIMITS)


def _count_gsm7(text: str, extension_chars: set[str]) -> SegmentCount:
    doubled = sum(text.count(ch) for ch in extension_chars)
    septets = len(text) + doubled
    if doubled == 0 or septets <= _GSM7_LIMITS[0]:
        return _simple(GSM7, septets, _GSM7_LIMITS)
    weights = (2 if ch in GSM7_EXTENSION else 1 for ch in text)
    return SegmentCount(GSM7, septets, _pack(weights, _GSM7_LIMITS[1]))


def _count_ucs2(text: str) -> SegmentCount:
    # "surrogatepass" keeps a lone surrogate (possible in a Python str) as one unit.
    units = len(text.encode("utf-16-le", "surrogatepass")) // 2
    pairs = units - len(text)
    if pairs == 0 or units <= _UCS2_LIMITS[0]:
        return _simple(UCS2, units, _UCS2_LIMITS)
    weights = (2 if ord(ch) > 0xFFFF else 1 for ch in text)
    return SegmentCount(UCS2, units, _pack(weights, _UCS2_LIMITS[1]))


def _simple(encoding: str, units: int, limits: tuple[int, int]) -> SegmentCount:
    """Segments when every character weighs one unit (or fits in one message)."""
    single, per_part = limits
    if units == 0:
        segments = 0
    elif units <= single:
        segments = 1
    else:
        segments = math.ceil(units / per_part)
    return SegmentCount(encoding, units, segments)


def _pack(weights: Iterable[int], capacity: int) -> int:
    """Greedily fill parts of ``capacity`` units without splitting a character.

    ``weights`` yields 1 or 2 per character; a two-unit character (escape +
    extension char, or a surrogate pair) that does not fit in the rest of a
    part starts the next one.
    """
    parts = 1
    used = 0
    for weight in weights:
        if used + weight > capacity:
            parts += 1
            used = weight
        else:
            used += weight
    return parts
