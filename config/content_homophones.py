"""``homophones.toml`` of a lexicon folder: homophone spellings used to dodge
a filter (做牢 / 座牢 for 坐牢, 拘流 for 拘留, 薇信 for 微信)::

    [chars]                 # a character -> the characters written for it
    坐 = "做座作"
    留 = "流"

    [keep]                  # real words a substitution must not produce
    words = \"\"\"
    居留
    \"\"\"

Rules opt in with ``homophones = true``. Every Chinese term of such a rule
gets, as extra written forms, its spellings with one or two of its
characters replaced (at most MAX_FORMS per term); a form that contains a
``keep`` word is dropped. Plain Chinese homophones need this table: the
pinyin view only helps when a letter is typed as Latin ("zuo牢").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from itertools import combinations, product
from pathlib import Path
from typing import Final

from config.content_lexicon import ContentPackError, parse_terms, read_toml
from config.content_model import Rule, Term

__all__ = ["Homophones", "load_homophones", "with_homophones"]

MAX_SUBSTITUTED: Final = 2  # characters replaced in one form
MAX_FORMS: Final = 64  # homophone forms per term


@dataclass(frozen=True, slots=True)
class Homophones:
    chars: Mapping[str, str]
    keep: tuple[str, ...] = ()


def load_homophones(path: Path) -> Homophones:
    if not path.exists():
        raise ContentPackError(path, None, "rules ask for homophones but the file is missing")
    data, lines = read_toml(path)
    for key in sorted(set(data) - {"chars", "keep"}):
        raise lines.error(key, f"{key}: unknown table (known: chars, keep)")
    chars = data.get("chars")
    if not isinstance(chars, dict) or not chars:
        raise lines.error("[chars]", "a [chars] table is required")
    for ch, subs in chars.items():
        if len(ch) != 1 or not isinstance(subs, str) or not subs or ch in subs:
            raise lines.error(ch, f"{ch}: one character = a string of other characters")
    keep: tuple[str, ...] = ()
    table = data.get("keep")
    if table is not None:
        if not isinstance(table, dict) or set(table) != {"words"}:
            raise lines.error("[keep]", "[keep] holds only words = a multi-line string")
        after = lines.find("[keep]") or 0
        keep = tuple(t for t, _, _ in parse_terms(table["words"], lines, "words", after))
    return Homophones(dict(chars), keep)


def spellings(term: str, table: Homophones) -> list[str]:
    """Homophone spellings of ``term`` (not the term itself), fewest changes first."""
    where = [i for i, ch in enumerate(term) if ch in table.chars]
    out: list[str] = []
    for n in range(1, min(MAX_SUBSTITUTED, len(where)) + 1):
        for chosen in combinations(where, n):
            for subs in product(*(table.chars[term[i]] for i in chosen)):
                chars = list(term)
                for i, sub in zip(chosen, subs, strict=True):
                    chars[i] = sub
                form = "".join(chars)
                if not any(k in form for k in table.keep) and form not in out:
                    out.append(form)
                if len(out) >= MAX_FORMS:
                    return out
    return out


def with_homophones(rule: Rule, table: Homophones) -> Rule:
    def extend(term: Term) -> Term:
        extra = [f for f in spellings(term.text, table) if f not in term.forms]
        return Term(term.text, term.prefix, term.pinyin, (*term.forms, *extra)) if extra else term

    return replace(rule, terms=tuple(extend(t) for t in rule.terms))
