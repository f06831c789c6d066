"""Chinese personal names where the text says a name is: after an address
form or a relation/role word (尊敬的张三, 紧急联系人王五), and before an
honorific or greeting (李四先生, 张三您好). No model: a name is a surname
from the table plus one or two characters that can be part of a given name.
A surname alone (张先生) is not reported: it is already the masked form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from filters.pii.surnames import (
    ANCHORS_AFTER,
    COMPOUND_SURNAMES,
    NOT_GIVEN_NAME,
    NOT_NAMES,
    ROLE_WORDS,
    SURNAMES,
)

__all__ = ["NameMatch", "find_names", "has_han", "surname_of"]

_HAN: Final = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_BEFORE: Final = re.compile("(?:" + "|".join(sorted(ROLE_WORDS, key=len, reverse=True)) + ")[: ]?")
_AFTER: Final = re.compile("|".join(ANCHORS_AFTER))
_GREETINGS: Final = frozenset({"您好", "你好"})


@dataclass(frozen=True, slots=True)
class NameMatch:
    start: int  # offsets into the normalised text
    end: int
    surname: str


def has_han(text: str) -> bool:
    return _HAN.search(text) is not None


def surname_of(name: str) -> str:
    """The surname a name starts with (compound first), or ""."""
    if name[:2] in COMPOUND_SURNAMES:
        return name[:2]
    return name[:1] if name[:1] in SURNAMES else ""


def find_names(text: str) -> list[NameMatch]:
    """Names in the normalised ``text``, left to right, without overlaps."""
    found: dict[int, NameMatch] = {}
    for m in _BEFORE.finditer(text):
        name = _name_from(text, m.end())
        if name is not None:
            found.setdefault(name.start, name)
    for m in _AFTER.finditer(text):
        name = _name_until(text, m.start(), greeting=m.group() in _GREETINGS)
        if name is not None:
            found.setdefault(name.start, name)
    names: list[NameMatch] = []
    for name in sorted(found.values(), key=lambda n: n.start):
        if not names or name.start >= names[-1].end:
            names.append(name)
    return names


def _is_given(ch: str) -> bool:
    return ch not in NOT_GIVEN_NAME and _HAN.match(ch) is not None


def _name_from(text: str, start: int) -> NameMatch | None:
    """A name starting at ``start`` (after an address or role word)."""
    if text.startswith(ROLE_WORDS, start) or text[start : start + 2] in NOT_NAMES:
        return None
    surname = surname_of(text[start : start + 2])
    if not surname:
        return None
    end = start + len(surname)
    while end - start - len(surname) < 2 and end < len(text) and _is_given(text[end]):
        if text.startswith(ANCHORS_AFTER, end):
            break
        end += 1
    if end == start + len(surname):
        return None
    return NameMatch(start, end, surname)


def _name_until(text: str, end: int, *, greeting: bool) -> NameMatch | None:
    """A name ending at ``end`` (before an honorific or greeting). Before a
    greeting the name must start the clause (张三您好, not 消费金融您好)."""
    for size in (4, 3, 2):
        start = end - size
        if start < 0:
            continue
        candidate = text[start:end]
        surname = surname_of(candidate)
        given = candidate[len(surname) :]
        if not surname or not 1 <= len(given) <= 2 or not all(map(_is_given, given)):
            continue
        if candidate[:2] in NOT_NAMES:
            continue
        if greeting and start > 0 and _HAN.match(text[start - 1]):
            continue
        return NameMatch(start, end, surname)
    return None
