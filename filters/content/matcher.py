"""One Aho-Corasick automaton per view for a pack's whole lexicon (rules,
co-occurring terms and allow-contexts together), and the scan that turns
automaton matches into spans of the normalised text."""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import ahocorasick

from config.content_model import PackSpec, Term
from filters.content.views import (
    View,
    has_latin_between,
    pinyin_view,
    squeeze,
    squeeze_term,
    word_key,
    words,
)
from filters.normalize import normalize

__all__ = ["Entry", "Kind", "Lexicon", "RawHit"]

MIN_PINYIN_KEY: Final = 4  # shorter readings collide with ordinary Latin text
MAX_GLUED_WORDS: Final = 8


class Kind(enum.IntEnum):
    RULE = 0  # a term of rule ``ref``
    WITH = 1  # a co-occurring term of rule ``ref``
    CONTEXT = 2  # a term of allow-context ``ref``


@dataclass(frozen=True, slots=True)
class Entry:
    kind: Kind
    ref: int
    term: str


@dataclass(frozen=True, slots=True)
class RawHit:
    entry: Entry
    start: int  # normalised text, end-exclusive
    end: int


def glued(phrase: str) -> set[str]:
    """Both "kill you" and "killyou": letters spelled out with spaces ("k i l l y o u")
    run words together, so every way of gluing neighbouring words is a key too
    (up to MAX_GLUED_WORDS words; keys match whole words only)."""
    words = phrase.split()
    if not 1 < len(words) <= MAX_GLUED_WORDS:
        return {phrase}
    out = set()
    for mask in range(1 << (len(words) - 1)):
        parts = [words[0]]
        for i, word in enumerate(words[1:]):
            parts.append(word if mask >> i & 1 else " " + word)
        out.add("".join(parts))
    return out


def _automaton(keys: Mapping[str, list[Entry]]) -> Any:
    if not keys:
        return None
    auto = ahocorasick.Automaton()
    for key, entries in keys.items():
        auto.add_word(key, (len(key), tuple(entries)))
    auto.make_automaton()
    return auto


class Lexicon:
    """The compiled automata of one pack."""

    def __init__(self, spec: PackSpec) -> None:
        self.t2s = spec.t2s
        self.syllables = spec.syllables
        squeezed: dict[str, list[Entry]] = defaultdict(list)
        latin: dict[str, list[Entry]] = defaultdict(list)
        spoken: dict[str, list[Entry]] = defaultdict(list)

        def add(kind: Kind, ref: int, terms: Iterable[Term]) -> None:
            for term in terms:
                entry = Entry(kind, ref, term.text)
                norm = normalize(term.text).text
                if any(ord(ch) > 0x7F for ch in norm):
                    for written in (norm, *(normalize(f).text for f in term.forms)):
                        key = squeeze_term(written, self.t2s)
                        if key and entry not in squeezed[key]:
                            squeezed[key].append(entry)
                else:
                    for written in glued(norm):
                        key = word_key(written, prefix=term.prefix)
                        if key.strip() and entry not in latin[key]:
                            latin[key].append(entry)
                for reading in term.pinyin:
                    if len(reading) >= MIN_PINYIN_KEY and entry not in spoken[reading]:
                        spoken[reading].append(entry)

        for i, rule in enumerate(spec.rules):
            add(Kind.RULE, i, rule.terms)
            add(Kind.WITH, i, rule.with_terms)
        for i, ctx in enumerate(spec.contexts):
            add(Kind.CONTEXT, i, ctx.terms)
        self.keys = len(squeezed) + len(latin) + len(spoken)
        self._squeezed = _automaton(squeezed)
        self._latin = _automaton(latin)
        self._spoken = _automaton(spoken)

    def scan(self, normalized: str) -> list[RawHit]:
        hits: list[RawHit] = []
        view = squeeze(normalized, self.t2s)
        if self._squeezed is not None:
            _collect(self._squeezed, view, hits, strip=False)
        if self._latin is not None:
            word_view = words(normalized)
            if word_view is not None:
                _collect(self._latin, word_view, hits, strip=True)
        if self._spoken is not None and _has_ascii_letter(view.text):
            spoken, latin_positions = pinyin_view(view, self.syllables)
            for end, (size, entries) in self._spoken.iter(spoken.text):
                start = end + 1 - size
                if has_latin_between(latin_positions, start, end + 1):
                    span = (spoken.origin[start], spoken.origin[end] + 1)
                    hits.extend(RawHit(e, *span) for e in entries)
        return hits


def _has_ascii_letter(text: str) -> bool:
    return any("a" <= ch <= "z" for ch in text)


def _collect(auto: Any, view: View, hits: list[RawHit], *, strip: bool) -> None:
    origin = view.origin
    for end, (size, entries) in auto.iter(view.text):
        start = end + 1 - size
        if strip:  # drop the word-boundary spaces of " word " / " word"
            start += 1
            if view.text[end] == " ":
                end -= 1
        if start > end:
            continue
        span = (origin[start], origin[end] + 1)
        hits.extend(RawHit(e, *span) for e in entries)
