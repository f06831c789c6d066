"""The PII scan of one message: normalised text in, matches with offsets into
the submitted text out.

Matching runs on :func:`filters.normalize.normalize` output (NFKC, case folded,
invisible characters dropped), so full-width digits, letters and ``＠`` are
found; every match is mapped back through the offset map, so a mask replaces
exactly the original characters. URLs are left alone (a number inside a link
is part of the link); e-mail addresses come before numbers, numbers before
names, and a later match never overlaps an earlier one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from config.policies import PII_ENTITIES
from filters.normalize import Normalized, normalize
from filters.pii.names import find_names, has_han
from filters.pii.numbers import Strength, find_numbers

__all__ = ["ENTITIES", "PiiMatch", "scan"]

ENTITIES: Final = tuple(PII_ENTITIES)
_SCORES: Final = {Strength.VERIFIED: 1.0, Strength.SHAPE: 0.85, Strength.CONTEXT: 0.6}
NAME_SCORE: Final = 0.7
EMAIL_SCORE: Final = 1.0

_LOCAL: Final = r"[a-z0-9_%+\-](?:[a-z0-9._%+\-]{0,62}[a-z0-9_%+\-])?"
_DOMAIN: Final = r"(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}"
_EMAIL: Final = re.compile(rf"(?<![a-z0-9._%+\-]){_LOCAL}@{_DOMAIN}(?![a-z0-9\-])")
_URL_CHARS: Final = r"[a-z0-9\-._~:/?#\[\]@!$&*+=%]"
_URL: Final = re.compile(
    rf"(?:https?://|www\.){_URL_CHARS}+"
    rf"|(?<![a-z0-9.@\-])(?:[a-z0-9\-]+\.)+[a-z]{{2,24}}/{_URL_CHARS}*"
)


@dataclass(frozen=True, slots=True)
class PiiMatch:
    entity: str  # one of ENTITIES
    start: int  # code points into the submitted text
    end: int
    value: str  # digits (and an ID's X); the e-mail as written (NFKC); the name
    score: float  # 1.0 checksum-verified, 0.85 by shape, 0.6-0.7 by context


def scan(text: str, normalized: Normalized | None = None) -> tuple[PiiMatch, ...]:
    """Every piece of personal data in ``text``, left to right.

    ``normalized`` is ``normalize(text)`` when the caller has it already.
    """
    norm = normalized if normalized is not None else normalize(text)
    t = norm.text
    taken: list[tuple[int, int]] = []
    if "/" in t or "www." in t:
        taken.extend(m.span() for m in _URL.finditer(t))
    found: list[tuple[int, int, str, str, float]] = []
    if "@" in t:
        for m in _EMAIL.finditer(t):
            if _free(taken, m.start(), m.end()):
                found.append((m.start(), m.end(), "email", "", EMAIL_SCORE))
    for num in find_numbers(t):
        if _free(taken, num.start, num.end):
            found.append((num.start, num.end, num.entity, num.value, _SCORES[num.strength]))
    if has_han(t):
        for name in find_names(t):
            if _free(taken, name.start, name.end):
                found.append(
                    (name.start, name.end, "person_name", t[name.start : name.end], NAME_SCORE)
                )
    found.sort()
    matches: list[PiiMatch] = []
    for start, end, entity, value, score in found:
        o_start, o_end = norm.span(start, end)
        if entity == "email":
            value = _as_written(text[o_start:o_end])
        matches.append(PiiMatch(entity, o_start, o_end, value, score))
    return tuple(matches)


def _free(taken: list[tuple[int, int]], start: int, end: int) -> bool:
    """Claim ``[start, end)`` unless it overlaps a span already taken."""
    if any(start < t_end and t_start < end for t_start, t_end in taken):
        return False
    taken.append((start, end))
    return True


def _as_written(original: str) -> str:
    """The original characters in their compatibility form, case kept,
    invisible characters dropped."""
    return "".join(
        ch
        for ch in unicodedata.normalize("NFKC", original)
        if unicodedata.category(ch) not in ("Cf", "Cc")
    )
