"""Masks: a format per entity (from the policy pack) applied to a match.

Placeholders: ``{last4}`` and ``{first3}`` (of the identifying digits),
``{first}`` (the first character of an e-mail's local part), ``{domain}``
(the e-mail's domain), ``{surname}``, and ``{stars}`` (one ``*`` for each
character the other placeholders do not show).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Final

from filters.pii.names import has_han, surname_of
from filters.pii.scanner import PiiMatch

__all__ = ["mask_text", "mask_value", "script_of"]

_SHOWN: Final = {"last4": 4, "first3": 3, "first": 1}


@lru_cache(maxsize=256)
def _fields(fmt: str) -> frozenset[str]:
    return frozenset(field for _, field, _, _ in string.Formatter().parse(fmt) if field)


def mask_value(match: PiiMatch, fmt: str) -> str:
    """The text that replaces ``match``, following ``fmt``."""
    value = match.value
    local, _, domain = value.partition("@") if match.entity == "email" else (value, "", "")
    fields = _fields(fmt)
    shown = sum(_SHOWN[f] for f in fields if f in _SHOWN)
    return fmt.format_map(
        {
            "last4": value[-4:],
            "first3": value[:3],
            "first": local[:1],
            "domain": domain,
            "surname": surname_of(value),
            "stars": "*" * max(len(value) - shown, 0),
        }
    )


def script_of(text: str) -> str:
    """The script that picks a mask format: "zh" for text with Chinese characters, else "en"."""
    return "zh" if has_han(text) else "en"


def mask_text(text: str, matches: Sequence[PiiMatch], format_for: Callable[[str], str]) -> str:
    """``text`` with every match (non-overlapping, in order) replaced by its
    mask; ``format_for(entity)`` gives the format."""
    parts: list[str] = []
    last = 0
    for match in matches:
        parts.append(text[last : match.start])
        parts.append(mask_value(match, format_for(match.entity)))
        last = match.end
    parts.append(text[last:])
    return "".join(parts)
