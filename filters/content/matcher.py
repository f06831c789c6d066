"""One Aho-Corasick automaton per view for a pack's whole lexicon (rules,
co-occurring terms and allow-contexts together), and the scan that turns
automaton matches into spans of the normalised text."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from itertools import accumulate
from typing import Any, Generic, NamedTuple, TypeVar

import ahocorasick

from config.content_model import PackSpec
from filters.content.keys import Entry, Kind, LazyTable, Shape, key_tables
from filters.content.views import (
    View,
    has_latin_between,
    pinyin_view,
    squeeze,
    words,
)

__all__ = ["Entry", "Kind", "Lexicon", "RawHit"]

V = TypeVar("V")


class RawHit(NamedTuple):
    """A key's match: a tuple, built several times per message (a frozen
    dataclass costs twice as much to make)."""

    entry: Entry
    start: int  # normalised text, end-exclusive
    end: int


class _Automaton(Generic[V]):
    """An integer automaton (fast to build: no Python object per key) and the
    key length and value behind each number: ``decode(refs[i])``, so that a
    table read from the cache decodes a value only when it first matches."""

    __slots__ = ("auto", "decode", "refs", "sizes")

    def __init__(self, keys: Mapping[str, V]) -> None:
        # private: never changed after the build
        self.decode: Callable[[int], V]
        if isinstance(keys, LazyTable):
            ordered, self.refs, self.decode = keys.keys_, keys.refs, keys.decode
        else:
            ordered, self.refs = list(keys), list(range(len(keys)))
            self.decode = list(keys.values()).__getitem__
        self.auto: Any = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        for i, key in enumerate(ordered):
            self.auto.add_word(key, i)
        self.auto.make_automaton()
        self.sizes = list(map(len, ordered))

    def iter(self, text: str) -> Iterator[tuple[int, int, V]]:
        sizes, refs, decode = self.sizes, self.refs, self.decode
        for end, i in self.auto.iter(text):
            yield end, sizes[i], decode(refs[i])

    def found(self, text: str) -> list[tuple[int, int, V]]:
        """Like :meth:`iter`, as a list (empty: nothing to set up for)."""
        sizes, refs, decode = self.sizes, self.refs, self.decode
        return [(end, sizes[i], decode(refs[i])) for end, i in self.auto.iter(text)]


def _automaton(keys: Mapping[str, V]) -> _Automaton[V] | None:
    return _Automaton(keys) if keys else None


class Lexicon:
    """The compiled automata of one pack."""

    def __init__(self, spec: PackSpec) -> None:
        self.t2s = spec.t2s
        self.syllables = spec.syllables
        squeezed, latin, spoken, glued = key_tables(spec)
        self.keys = len(squeezed) + len(latin) + len(spoken) + len(glued)
        self._squeezed = _automaton(squeezed)
        self._latin = _automaton(latin)
        self._spoken = _automaton(spoken)
        self._glued = _automaton(glued)

    def scan(self, normalized: str, squeezed: View | None = None) -> list[RawHit]:
        """``squeezed``: ``squeeze(normalized, t2s)`` when the caller has it."""
        hits: list[RawHit] = []
        view = squeezed if squeezed is not None else squeeze(normalized, self.t2s)
        if self._squeezed is not None:
            _collect(self._squeezed, view, hits, strip=False)
        if self._latin is not None:
            word_view = words(normalized)
            if word_view is not None:
                found: list[RawHit] = []
                _collect(self._latin, word_view, found, strip=True)
                plain = len(found)
                if self._glued is not None:
                    _collect_glued(self._glued, word_view, found)
                if len(found) > plain:
                    # in the order one automaton of both would give: by end, longest first
                    found.sort(key=_by_end)
                hits += found
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


def _collect(auto: _Automaton[list[Entry]], view: View, hits: list[RawHit], *, strip: bool) -> None:
    at = view.at
    for end, size, entries in auto.iter(view.text):
        start = end + 1 - size
        if strip:  # drop the word-boundary spaces of " word " / " word"
            start += 1
            if view.text[end] == " ":
                end -= 1
        if start > end:
            continue
        first, last = at(start), at(end) + 1
        for e in entries:
            hits.append(RawHit(e, first, last))


def _collect_glued(
    auto: _Automaton[list[tuple[Shape, list[Entry]]]], view: View, hits: list[RawHit]
) -> None:
    """Phrases whose words the text runs together ("k i l l y o u" is the word
    "killyou"): the word view without its spaces is scanned for each phrase's
    glued key; a match counts when it starts at a word of the text, ends at
    one (unless the phrase is a prefix pattern), and the text's word ends
    inside it are ends of the phrase's words, the fixed ones among them
    included. A match with exactly the phrase's word ends is the word view's
    own match (``_collect``) and is not counted twice."""
    words_ = view.text[1:-1].split(" ")
    matches = auto.found("".join(words_))
    if not matches:
        return
    starts = list(accumulate(map(len, words_), initial=0))  # and the end of the last word
    word_starts = set(starts)  # a word's end is the next one's start
    at = view.at
    for end, size, shapes in matches:
        first = end + 1 - size
        if first not in word_starts:
            continue
        k = bisect_right(starts, first)  # words before the match's first one, plus one
        last_word = bisect_right(starts, end) - 1
        count = last_word - k + 1  # the text's word ends inside the match
        aligned = end + 1 in word_starts
        inner: frozenset[int] | None = None
        for shape, entries in shapes:
            if not (aligned or shape.prefix):
                continue
            if shape.splits is None and count >= len(shape.ends):
                continue  # not glued (the word view's own match), or not this phrase
            if inner is None:
                inner = frozenset(starts[j] - first for j in range(k, last_word + 1))
            fits = (
                inner in shape.splits
                if shape.splits is not None
                else shape.fixed <= inner <= shape.ends
            )
            if fits:
                # the view has one space before each word: S index i of word w is w + 1 + i
                span = (at(first + k), at(end + last_word + 1) + 1)
                hits.extend(RawHit(e, *span) for e in entries)


def _by_end(hit: RawHit) -> tuple[int, int]:
    return hit.end, hit.start
