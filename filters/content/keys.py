"""The key tables of a pack's automata: every written form of every term
(rules, co-occurring terms, allow-contexts) as the key it has in each view,
with the entries it stands for. A Chinese term has keys in the squeezed view
(and its pinyin readings in the pinyin view); a Latin term has one key in the
glued view, the word view without its spaces, with the shape that says which
word ends of the text may fall inside it (``glued_keys``): one scan finds a
phrase written with its words apart or run together ("kill you", "killyou").

Building them (normalising ~60,000 forms, gluing multi-word Latin phrases)
takes most of a pack's compile time, so the tables are cached as JSON
(:mod:`config.content_cache`) keyed by a fingerprint of every term, form and
reading, and by the source of the code that turns terms into keys. Read back,
a table has its keys at once and decodes the value of a key only when it is
first asked for (:class:`LazyTable`): most keys never match in a process's
life, and making an object for every entry of ~400,000 keys took most of a
start-up.
"""

from __future__ import annotations

import enum
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

from config.content_cache import cached, code_version
from config.content_model import PackSpec, Term
from filters.content.views import SHORT_FORMS, TOKEN, latin_fold, squeeze_term
from filters.normalize import normalize

__all__ = [
    "MAX_GLUED_WORDS",
    "MIN_PINYIN_KEY",
    "Entry",
    "GluedTable",
    "KeyTables",
    "Kind",
    "LazyTable",
    "Shape",
    "Tables",
    "build_tables",
    "glued_keys",
    "key_tables",
]

MIN_PINYIN_KEY: Final = 4  # shorter readings collide with ordinary Latin text
MAX_GLUED_WORDS: Final = 10
_LETTER: Final = re.compile(r"[a-z]")


class Kind(enum.IntEnum):
    RULE = 0  # a term of rule ``ref``
    WITH = 1  # a co-occurring term of rule ``ref``
    CONTEXT = 2  # a term of allow-context ``ref``


@dataclass(frozen=True, slots=True)
class Entry:
    kind: Kind
    ref: int
    term: str


Table = dict[str, list[Entry]]


@dataclass(frozen=True, slots=True)
class Shape:
    """How a phrase's glued key may be split into the text's words.

    ``ends``: where the phrase's words end inside the key ("killyou": 4);
    ``fixed``: the ends that gluing never removes (between two tokens of one
    written word, "don't"; every end of a phrase longer than
    MAX_GLUED_WORDS); ``prefix``: the phrase is a prefix pattern.
    ``splits``: for a phrase with a chat spelling ("u") or a token without a
    letter ("3 a m", "$"), whose key depends on how it is glued (a glued word
    is read and folded as one word), the exact sets of inner word ends that
    this key stands for; None for every other phrase (any set between
    ``fixed`` and ``ends``)."""

    ends: frozenset[int]
    fixed: frozenset[int]
    prefix: bool
    splits: frozenset[frozenset[int]] | None = None


GluedTable = dict[str, list[tuple[Shape, list[Entry]]]]
# squeezed, spoken (pinyin), glued (word view without spaces)
Tables = tuple[Table, Table, GluedTable]
Shapes = list[tuple[Shape, list[Entry]]]
# the same, read-only: built (dicts) or read back from the cache (lazy)
KeyTables = tuple[Mapping[str, list[Entry]], Mapping[str, list[Entry]], Mapping[str, Shapes]]

V = TypeVar("V")


class LazyTable(Mapping[str, V], Generic[V]):
    """A key table read back from the cache: ``keys`` in order, and for each a
    reference (``refs[i]``) that ``decode`` turns into its value, once (the
    decoder memoises). Equal to the built table it was stored from."""

    __slots__ = ("_index", "decode", "keys_", "refs")

    def __init__(self, keys: list[str], refs: list[int], decode: Callable[[int], V]) -> None:
        self.keys_ = keys
        self.refs = refs
        self.decode = decode
        self._index: dict[str, int] | None = None  # for lookups by key (tools, tests)

    def __getitem__(self, key: str) -> V:
        if self._index is None:
            self._index = {k: i for i, k in enumerate(self.keys_)}
        return self.decode(self.refs[self._index[key]])

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_)

    def __len__(self) -> int:
        return len(self.keys_)


def glued_keys(phrase: str, *, prefix: bool, fold: Callable[[str], str]) -> list[tuple[str, Shape]]:
    """The keys of a Latin term in the glued view (the word view without its
    spaces), with their shapes.

    Letters spelled out with spaces ("k i l l y o u") run words together, so a
    phrase of up to MAX_GLUED_WORDS words matches however its neighbouring
    words are glued, and as written; a longer one only as written. The scan
    (``filters.content.matcher``) accepts a match whose word ends in the text
    fit the shape. An ordinary phrase has one key, not one per way of gluing
    it (2^(n-1)); a phrase whose key changes with the gluing gets one key per
    distinct result."""
    chunks = phrase.split()
    tokens: list[tuple[str, bool]] = []  # (token, an end that gluing removes before it)
    for chunk in chunks:
        tokens += [(tok, i == 0) for i, tok in enumerate(TOKEN.findall(chunk))]
    if not tokens:
        return []
    gluable = len(chunks) <= MAX_GLUED_WORDS
    if _special([t for t, _ in tokens]):
        return _enumerated(chunks, prefix, fold, glue=gluable)
    ends: list[int] = []
    fixed: list[int] = []
    at = 0
    for j, (tok, _) in enumerate(tokens[:-1]):
        at += len(tok)  # the fold maps one character to one: lengths stay
        ends.append(at)
        if not (gluable and tokens[j + 1][1]):
            fixed.append(at)
    key = fold("".join(t for t, _ in tokens))
    return [(key, Shape(frozenset(ends), frozenset(fixed), prefix))]


def _special(tokens: list[str]) -> bool:
    """A token without a letter (folded only inside a word with one) or a chat
    spelling among the tokens or any run of them glued."""
    if any(not _LETTER.search(t) for t in tokens):
        return True
    return any(
        "".join(tokens[i:j]) in SHORT_FORMS
        for i in range(len(tokens))
        for j in range(i + 1, len(tokens) + 1)
    )


def _enumerated(
    chunks: list[str], prefix: bool, fold: Callable[[str], str], *, glue: bool
) -> list[tuple[str, Shape]]:
    """Every way of gluing neighbouring words (``glue``; else only the words
    apart), each read as the word view reads a text word (its chat spelling
    expanded, folded), grouped by key."""
    splits: dict[str, set[frozenset[int]]] = defaultdict(set)
    apart = (1 << (len(chunks) - 1)) - 1  # a space between every two words
    for mask in range(apart + 1) if glue else (apart,):
        variant = chunks[0] + "".join(
            (" " if mask >> i & 1 else "") + chunk for i, chunk in enumerate(chunks[1:])
        )
        read = [fold(SHORT_FORMS.get(w, w)) for w in TOKEN.findall(variant)]
        ends: list[int] = []
        at = 0
        for word in read[:-1]:
            at += len(word)
            ends.append(at)
        splits["".join(read)].add(frozenset(ends))
    return [
        (key, Shape(frozenset(), frozenset(), prefix, frozenset(sets)))
        for key, sets in splits.items()
    ]


def key_tables(spec: PackSpec) -> KeyTables:
    """The key tables of ``spec`` (squeezed, spoken, glued), from the
    cache when nothing changed (then as :class:`LazyTable`)."""

    def build() -> KeyTables:
        return build_tables(spec)

    return cached("keys", _builder_version(), list(_fingerprint(spec)), build, _encode, _decode)


def build_tables(spec: PackSpec) -> Tables:
    squeezed: Table = defaultdict(list)
    spoken: Table = defaultdict(list)
    glued: dict[str, dict[Shape, list[Entry]]] = defaultdict(dict)
    fold = lru_cache(maxsize=None)(latin_fold)  # lexicon words only, dropped after the build

    def add(kind: Kind, ref: int, terms: Iterable[Term]) -> None:
        for term in terms:
            entry = Entry(kind, ref, term.text)
            norm = normalize(term.text).text
            if any(ord(ch) > 0x7F for ch in norm):
                for written in (norm, *(normalize(f).text for f in term.forms)):
                    key = squeeze_term(written, spec.t2s)
                    if key and entry not in squeezed[key]:
                        squeezed[key].append(entry)
            else:
                for glued_key, shape in glued_keys(norm, prefix=term.prefix, fold=fold):
                    listed = glued[glued_key].setdefault(shape, [])
                    if entry not in listed:
                        listed.append(entry)
            for reading in term.pinyin:
                if len(reading) >= MIN_PINYIN_KEY and entry not in spoken[reading]:
                    spoken[reading].append(entry)

    for i, rule in enumerate(spec.rules):
        add(Kind.RULE, i, rule.terms)
        add(Kind.WITH, i, rule.with_terms)
    for i, ctx in enumerate(spec.contexts):
        add(Kind.CONTEXT, i, ctx.terms)
    glued_table = {key: list(shapes.items()) for key, shapes in glued.items()}
    return dict(squeezed), dict(spoken), glued_table


def _fingerprint(spec: PackSpec) -> Iterator[str]:
    """Everything the tables depend on, in order."""
    yield f"{spec.language}\x01{len(spec.t2s)}"
    groups = [(f"r{i}", r.terms) for i, r in enumerate(spec.rules)]
    groups += [(f"w{i}", r.with_terms) for i, r in enumerate(spec.rules)]
    groups += [(f"c{i}", c.terms) for i, c in enumerate(spec.contexts)]
    for name, terms in groups:
        yield name
        for t in terms:
            yield f"{t.text}\x01{int(t.prefix)}\x01{'|'.join(t.forms)}\x01{'|'.join(t.pinyin)}"


@cache
def _builder_version() -> str:
    """The source of the code that makes keys, and the OpenCC data behind ``t2s``."""
    here = Path(__file__).resolve()
    return code_version(
        ("opencc",), (here, here.with_name("views.py"), here.parents[1] / "normalize.py")
    )


def _encode(tables: KeyTables) -> dict[str, Any]:
    """Each distinct entry and each distinct entry list once; tables name
    their keys and list numbers (the glued table: per key, its shapes as
    ``[ends, fixed, prefix, list number, splits or None]``)."""
    entry_ids: dict[Entry, int] = {}
    group_ids: dict[tuple[int, ...], int] = {}

    def group(entries: list[Entry]) -> int:
        refs = tuple(entry_ids.setdefault(e, len(entry_ids)) for e in entries)
        return group_ids.setdefault(refs, len(group_ids))

    squeezed, spoken, glued = tables
    out = [{"keys": list(t), "groups": [group(v) for v in t.values()]} for t in (squeezed, spoken)]
    shapes = [
        [
            [
                sorted(s.ends),
                sorted(s.fixed),
                int(s.prefix),
                group(v),
                None if s.splits is None else sorted(sorted(x) for x in s.splits),
            ]
            for s, v in listed
        ]
        for listed in glued.values()
    ]
    return {
        "entries": [[int(e.kind), e.ref, e.term] for e in entry_ids],
        "groups": [list(g) for g in group_ids],
        "tables": out,
        "glued": {"keys": list(glued), "shapes": shapes},
    }


def _decode(data: Any) -> KeyTables:
    """Lazy tables over the stored data (whose shape the cache's digest vouches
    for: it is what :func:`_encode` wrote). Each entry and each entry list is
    made once, when a key that holds it is first asked for."""
    kinds = tuple(Kind)
    raw_entries, raw_groups = data["entries"], data["groups"]

    @cache
    def entry(i: int) -> Entry:
        kind, ref, term = raw_entries[i]
        return Entry(kinds[kind], ref, term)

    @cache
    def group(g: int) -> list[Entry]:
        return [entry(i) for i in raw_groups[g]]

    shape_lists = data["glued"]["shapes"]

    @cache
    def shapes(i: int) -> Shapes:
        return [
            (Shape(frozenset(ends), frozenset(fixed), bool(prefix), _splits(splits)), group(g))
            for ends, fixed, prefix, g, splits in shape_lists[i]
        ]

    squeezed, spoken = (LazyTable(t["keys"], t["groups"], group) for t in data["tables"])
    glued_keys_ = data["glued"]["keys"]
    if not (len(glued_keys_) == len(shape_lists) and all(
        len(t["keys"]) == len(t["groups"]) for t in data["tables"]
    )):  # fmt: skip
        raise ValueError("a stored key table has not one value per key")
    return squeezed, spoken, LazyTable(glued_keys_, list(range(len(glued_keys_))), shapes)


def _splits(data: Any) -> frozenset[frozenset[int]] | None:
    return None if data is None else frozenset(frozenset(int(i) for i in x) for x in data)
