"""One Aho-Corasick automaton per view for a pack's whole lexicon (rules,
co-occurring terms and allow-contexts together), and the scan that turns
automaton matches into spans of the normalised text."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import ahocorasick

from config.content_model import PackSpec
from filters.content.keys import Entry, Kind, key_tables
from filters.content.views import (
    View,
    has_latin_between,
    pinyin_view,
    squeeze,
    words,
)

__all__ = ["Entry", "Kind", "Lexicon", "RawHit"]


@dataclass(frozen=True, slots=True)
class RawHit:
    entry: Entry
    start: int  # normalised text, end-exclusive
    end: int


class _Automaton:
    """An integer automaton (fast to build: no Python object per key) and the
    key length and entries behind each number."""

    __slots__ = ("auto", "entries", "sizes")

    def __init__(self, keys: Mapping[str, list[Entry]]) -> None:
        self.auto: Any = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        for i, key in enumerate(keys):
            self.auto.add_word(key, i)
        self.auto.make_automaton()
        self.sizes = list(map(len, keys))
        self.entries = list(keys.values())  # private: never changed after the build

    def iter(self, text: str) -> Iterator[tuple[int, int, list[Entry]]]:
        sizes, entries = self.sizes, self.entries
        for end, i in self.auto.iter(text):
            yield end, sizes[i], entries[i]


def _automaton(keys: Mapping[str, list[Entry]]) -> _Automaton | None:
    return _Automaton(keys) if keys else None


class Lexicon:
    """The compiled automata of one pack."""

    def __init__(self, spec: PackSpec) -> None:
        self.t2s = spec.t2s
        self.syllables = spec.syllables
        squeezed, latin, spoken = key_tables(spec)
        self.keys = len(squeezed) + len(latin) + len(spoken)
        self._squeezed = _automaton(squeezed)
        self._latin = _automaton(latin)
        self._spoken = _automaton(spoken)

    def scan(self, normalized: str, squeezed: View | None = None) -> list[RawHit]:
        """``squeezed``: ``squeeze(normalized, t2s)`` when the caller has it."""
        hits: list[RawHit] = []
        view = squeezed if squeezed is not None else squeeze(normalized, self.t2s)
        if self._squeezed is not None:
            _collect(self._squeezed, view, hits, strip=False)
        if self._latin is not None:
            word_view = words(normalized)
            if word_view is not None:
                _collect(self._latin, word_view, hits, strip=True)
        if self._spoken is not None and _has_ascii_letter(view.text):
            spoken, latin_positions = pinyin_view(view, self.syllables)
            for end, size, entries in self._spoken.iter(spoken.text):
                start = end + 1 - size
                if has_latin_between(latin_positions, start, end + 1):
                    span = (spoken.origin[start], spoken.origin[end] + 1)
                    hits.extend(RawHit(e, *span) for e in entries)
        return hits


def _has_ascii_letter(text: str) -> bool:
    return any("a" <= ch <= "z" for ch in text)


def _collect(auto: _Automaton, view: View, hits: list[RawHit], *, strip: bool) -> None:
    origin = view.origin
    for end, size, entries in auto.iter(view.text):
        start = end + 1 - size
        if strip:  # drop the word-boundary spaces of " word " / " word"
            start += 1
            if view.text[end] == " ":
                end -= 1
        if start > end:
            continue
        span = (origin[start], origin[end] + 1)
        hits.extend(RawHit(e, *span) for e in entries)
