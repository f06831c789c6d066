"""Text normalisation for matching.

The normalised text is only ever used to *look for* things (keywords, PII
patterns); the text that is sent is never changed by this module. Every
character of the normalised text remembers which original character produced
it, so a match can be reported with offsets into the submitted text.

Per original character (code point):

1. ``"\\n"`` is kept as is.
2. Any other Unicode whitespace (ASCII blanks, ``\\t``, ``\\r``, NBSP, U+3000
   ideographic space, U+2028 ...) becomes an ASCII space.
3. Format characters (category Cf: zero-width space/joiners, bidi marks and
   overrides, word joiner, BOM, soft hyphen, U+180E ...), the other
   default-ignorable invisible characters (variation selectors, combining
   grapheme joiner, Hangul fillers) and control characters (Cc) are dropped.
4. Everything else goes through NFKC, case folding and NFKC again, so
   full-width forms become ASCII (``"１３８"`` -> ``"138"``), enclosed and
   circled forms become plain ones (``"①"`` -> ``"1"``) and case differences
   disappear. One character may produce several (``"㎏"`` -> ``"kg"``); each of
   them points back to the same original index.

Finally runs of spaces collapse to one space (the first of the run is kept).

Because the mapping is per character, a base letter followed by a separate
combining mark is not composed (``"e\\u0301"`` stays two characters while
``"é"`` stays one); scripts are not converted (traditional/simplified,
pinyin) — that is left to later, more specific layers.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

__all__ = ["Normalized", "normalize"]


@dataclass(frozen=True, slots=True)
class Normalized:
    """Normalised text plus, for each of its characters, the original index.

    ``offsets[i]`` is the code-point index in the original text of the
    character that produced ``text[i]``; offsets never decrease.
    """

    text: str
    offsets: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.offsets) != len(self.text):
            raise ValueError("offsets must have one entry per character of text")

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map the normalised span ``[start, end)`` to an original span.

        The result ``(orig_start, orig_end)`` is end-exclusive and covers the
        whole original character behind ``text[end - 1]`` (so a match on the
        ``"k"`` of ``"㎏"`` -> ``"kg"`` covers the one original character).
        Characters dropped between the first and the last matched ones are
        inside the span; dropped characters around it are not. An empty span
        maps to an empty span at the position of ``text[start]``.
        """
        size = len(self.offsets)
        if not 0 <= start <= end <= size:
            raise ValueError(f"span [{start}, {end}) out of range for length {size}")
        if start < end:
            return self.offsets[start], self.offsets[end - 1] + 1
        if start < size:
            pos = self.offsets[start]
        elif size:
            pos = self.offsets[-1] + 1
        else:
            pos = 0
        return pos, pos


# Invisible characters that are not in category Cf but are default-ignorable:
# combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian
# free variation selectors, variation selectors (BMP and supplement).
_EXTRA_IGNORABLE: Final[frozenset[str]] = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0"
    + "".join(chr(cp) for cp in range(0xFE00, 0xFE10))
    + "".join(chr(cp) for cp in range(0xE0100, 0xE01F0))
)

# Upper bound on the number of distinct characters remembered by each cache;
# past it, new characters are still mapped correctly, just not stored.
_CACHE_LIMIT: Final = 1 << 16


def _classify(ch: str) -> str | None:
    """Return the fixed replacement for ``ch`` ("" or " "), or None if it is ordinary."""
    if ch == "\n":
        return "\n"
    if ch.isspace():
        return " "
    if ch in _EXTRA_IGNORABLE or unicodedata.category(ch) in ("Cf", "Cc"):
        return ""
    return None


def _map_char(ch: str) -> str:
    """The normalised form of a single original character (possibly empty)."""
    fixed = _classify(ch)
    if fixed is not None:
        return fixed
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", ch).casefold())
    if folded == ch or (len(folded) == 1 and _classify(folded) is None):
        return folded
    # NFKC may yield spaces or invisible characters (e.g. "¨" -> " \u0308").
    parts: list[str] = []
    for produced in folded:
        fixed = _classify(produced)
        parts.append(produced if fixed is None else fixed)
    return "".join(parts)


class _CharMap(dict[int, str]):
    """``str.translate`` table filled on demand: code point -> normalised text."""

    __slots__ = ()

    def __missing__(self, cp: int) -> str:
        mapped = _map_char(chr(cp))
        if len(mapped) != 1:
            _note_irregular(chr(cp))
        if len(self) < _CACHE_LIMIT:
            self[cp] = mapped
        return mapped


_CHAR_MAP: Final = _CharMap()

# Characters seen so far whose normalised form is not exactly one character
# (bounded: fewer than 2,000 code points are irregular).
# A message containing none of them (and no double space after mapping) takes
# the fast path: one str.translate call and identity offsets.
_irregular: set[str] = set()
_irregular_re: re.Pattern[str] | None = None


def _note_irregular(ch: str) -> None:
    global _irregular_re
    if ch not in _irregular:
        _irregular.add(ch)
        _irregular_re = None


def _irregular_pattern() -> re.Pattern[str]:
    global _irregular_re
    pattern = _irregular_re
    if pattern is None:
        body = "".join(sorted(re.escape(ch) for ch in _irregular)) or r"\x00"
        pattern = _irregular_re = re.compile(f"[{body}]")
    return pattern


@lru_cache(maxsize=1024)
def _identity_offsets(size: int) -> tuple[int, ...]:
    return tuple(range(size))


def normalize(text: str) -> Normalized:
    """Normalise ``text`` for matching; see the module docstring for the rules."""
    mapped = text.translate(_CHAR_MAP)
    if len(mapped) == len(text) and "  " not in mapped and not _irregular_pattern().search(text):
        return Normalized(mapped, _identity_offsets(len(text)))
    return _normalize_slow(text)


def _normalize_slow(text: str) -> Normalized:
    chars: list[str] = []
    offsets: list[int] = []
    after_space = False
    table = _CHAR_MAP
    for index, ch in enumerate(text):
        for out in table[ord(ch)]:
            if out == " ":
                if after_space:
                    continue
                after_space = True
            else:
                after_space = False
            chars.append(out)
            offsets.append(index)
    return Normalized("".join(chars), tuple(offsets))
