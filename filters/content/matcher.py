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
_NO_ENDS: frozenset[int] = frozenset()


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


def _automaton(keys: Mapping[str, V]) -> _Automaton[V] | None:
    return _Automaton(keys) if keys else None


class Lexicon:
    """The compiled automata of one pack."""

    def __init__(self, spec: PackSpec) -> None:
        self.t2s = spec.t2s
        self.syllables = spec.syllables
        squeezed, spoken, glued = key_tables(spec)
        self.keys = len(squeezed) + len(spoken) + len(glued)
        self._squeezed = _automaton(squeezed)
        self._spoken = _automaton(spoken)
        self._glued = _automaton(glued)

    def scan(self, normalized: str, squeezed: View | None = None) -> list[RawHit]:
        """``squeezed``: ``squeeze(normalized, t2s)`` when the caller has it."""
        hits: list[RawHit] = []
        view = squeezed if squeezed is not None else squeeze(normalized, self.t2s)
        if self._squeezed is not None:
            _collect(self._squeezed, view, hits)
        if self._glued is not None:
            word_view = words(normalized)
            if word_view is not None:
                _collect_glued(self._glued, word_view, hits)
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


def _collect(auto: _Automaton[list[Entry]], view: View, hits: list[RawHit]) -> None:
    at = view.at
    for end, size, entries in auto.iter(view.text):
        first, last = at(end + 1 - size), at(end) + 1
        for e in entries:
            hits.append(RawHit(e, first, last))


def _collect_glued(
    auto: _Automaton[list[tuple[Shape, list[Entry]]]], view: View, hits: list[RawHit]
) -> None:
    """Latin terms, their words apart as written or run together by the text
    ("k i l l y o u" is the word "killyou"): the word view without its spaces
    is scanned for each term's glued key; a match counts when it starts at a
    word of the text, ends at one (unless the term is a prefix pattern), and
    the text's word ends inside it are ends of the term's words, the fixed
    ones among them included."""
    words_ = view.text[1:-1].split(" ")
    glued_text = "".join(words_)
    starts = list(accumulate(map(len, words_), initial=0))  # and the end of the last word
    number = {start: w for w, start in enumerate(starts)}  # a word's end is the next one's start
    sizes, refs, decode, at, word_span = auto.sizes, auto.refs, auto.decode, view.at, view.word_span
    for end, i in auto.auto.iter(glued_text):
        first = end + 1 - sizes[i]
        w = number.get(first)
        if w is None:
            continue  # not at the start of a word of the text
        after = number.get(end + 1)  # the next word, when the match ends at a word end
        last = after - 1 if after is not None else bisect_right(starts, end) - 1
        inner = (  # the text's word ends inside the match
            frozenset(starts[j] - first for j in range(w + 1, last + 1)) if last > w else _NO_ENDS
        )
        fitting: list[tuple[bool, list[Entry]]] = []  # (glued by the text, entries)
        for shape, entries in decode(refs[i]):
            if after is None and not shape.prefix:
                continue
            if shape.splits is not None:
                if inner not in shape.splits:
                    continue
            elif not shape.fixed <= inner <= shape.ends:
                continue
            fitting.append((inner != shape.ends, entries))
        if not fitting:
            continue
        if word_span is not None:
            span = word_span(w, last, end - starts[last])
        else:  # the view has one space before each word: index i of word w is w + 1 + i
            span = (at(first + w + 1), at(end + last + 1) + 1)
        if len(fitting) > 1:  # a term written as the text writes it first ("cashapp")
            fitting.sort(key=_glued_last)
        for _, entries in fitting:
            hits.extend(RawHit(e, *span) for e in entries)


def _glued_last(fit: tuple[bool, list[Entry]]) -> bool:
    return fit[0]
