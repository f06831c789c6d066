"""The key tables of a pack's automata: every written form of every term
(rules, co-occurring terms, allow-contexts) as the key it has in each view,
with the entries it stands for.

Building them (normalising ~60,000 forms, gluing multi-word Latin phrases)
takes most of a pack's compile time, so the tables are cached as JSON
(:mod:`config.content_cache`) keyed by a fingerprint of every term, form and
reading, and by the source of the code that turns terms into keys.
"""

from __future__ import annotations

import enum
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from config.content_cache import cached
from config.content_model import PackSpec, Term
from filters.content.views import latin_fold, squeeze_term, word_key
from filters.normalize import normalize

__all__ = [
    "MAX_GLUED_WORDS",
    "MIN_PINYIN_KEY",
    "Entry",
    "Kind",
    "Tables",
    "build_tables",
    "glued",
    "key_tables",
]

MIN_PINYIN_KEY: Final = 4  # shorter readings collide with ordinary Latin text
MAX_GLUED_WORDS: Final = 10


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
Tables = tuple[Table, Table, Table]  # squeezed, latin (word view), spoken (pinyin)


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


def key_tables(spec: PackSpec) -> Tables:
    """The key tables of ``spec``, from the cache when nothing changed."""
    return cached(
        "keys", _builder_version(), list(_fingerprint(spec)), lambda: build_tables(spec),
        _encode, _decode,
    )  # fmt: skip


def build_tables(spec: PackSpec) -> Tables:
    squeezed: Table = defaultdict(list)
    latin: Table = defaultdict(list)
    spoken: Table = defaultdict(list)
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
                for written in glued(norm):
                    key = word_key(written, prefix=term.prefix, fold=fold)
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
    return dict(squeezed), dict(latin), dict(spoken)


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
    digest = hashlib.sha256(metadata.version("opencc").encode())
    here = Path(__file__).resolve()
    for path in (here, here.with_name("views.py"), here.parents[1] / "normalize.py"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _encode(tables: Tables) -> dict[str, Any]:
    """Each distinct entry and each distinct entry list once (the glued forms of
    a phrase share one list); tables name their keys and list numbers."""
    entry_ids: dict[Entry, int] = {}
    group_ids: dict[tuple[int, ...], int] = {}
    out: list[dict[str, list[Any]]] = []
    for table in tables:
        gids = []
        for entries in table.values():
            refs = tuple(entry_ids.setdefault(e, len(entry_ids)) for e in entries)
            gids.append(group_ids.setdefault(refs, len(group_ids)))
        out.append({"keys": list(table), "groups": gids})
    return {
        "entries": [[int(e.kind), e.ref, e.term] for e in entry_ids],
        "groups": [list(g) for g in group_ids],
        "tables": out,
    }


def _decode(data: Any) -> Tables:
    kinds = tuple(Kind)
    entries = [Entry(kinds[k], int(r), str(t)) for k, r, t in data["entries"]]
    groups = [[entries[i] for i in g] for g in data["groups"]]
    squeezed, latin, spoken = (
        dict(zip(t["keys"], [groups[g] for g in t["groups"]], strict=True)) for t in data["tables"]
    )
    return squeezed, latin, spoken
