"""Acceptance 3: every block-level term of the shipped packs still stops with
separators, zero-width characters, full-width forms and traditional
characters inserted. Every term is checked (deterministic evasions), and
Hypothesis mixes random evasions on sampled terms."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from functools import cache

import opencc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.content_model import Rule, Severity, Term
from filters.content import ContentFilter, MessageContext
from gateway.stages.content import shipped_filters

SEPARATORS = [" ", "*", "-", ".", "·", "|", "/", "_", "~", "，", "、", "\u3000", "＊", "#"]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
_CJK = re.compile(r"[\u3400-\u9fff]")


@cache
def _s2t() -> opencc.OpenCC:
    return opencc.OpenCC("s2t")


def block_terms(pack: str) -> Iterator[tuple[Rule, Term]]:
    """Terms that block on their own (co-occurrence rules need a partner)."""
    for rule in shipped_filters()[pack].spec.rules:
        if rule.severity is Severity.BLOCK and not rule.with_terms:
            for term in rule.terms:
                yield rule, term


def context_for(rule: Rule) -> MessageContext:
    purpose = rule.purposes[0] if rule.purposes else "overdue_notice"
    return MessageContext(purpose, role=rule.roles[0] if rule.roles else "borrower")


def message(pack: str, body: str) -> str:
    return f"【快贷宝】{body}" if pack == "cn-collection" else f"Bright Loans: {body}. Reply STOP."


def is_latin(text: str) -> bool:
    return text.isascii()


def between_chars(text: str, pick: Callable[[], str]) -> str:
    """A separator between the characters of each word (Latin words keep
    their spaces: "kill you" -> "k.i.l.l y.o.u")."""
    if is_latin(text):
        return " ".join(pick().join(word) for word in text.split(" "))
    return pick().join(text)


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def traditional(text: str) -> str:
    return str(_s2t().convert(text))


def stops(pack: str, rule: Rule, body: str) -> bool:
    f: ContentFilter = shipped_filters()[pack]
    result = f.check(message(pack, body), context_for(rule))
    return any(x.rule == rule.id and x.action == "block" for x in result.findings)


BATCH = 32
_SENTENCE_END = {"cn-collection": "。", "us-fdcpa": ". "}


def stops_each(pack: str, items: Sequence[tuple[Rule, str]]) -> list[bool]:
    """``[stops(pack, rule, body) for rule, body in items]``, many bodies to a
    message (see the module's docstring)."""
    f: ContentFilter = shipped_filters()[pack]
    head, tail = message(pack, "\x00").split("\x00")
    sep = _SENTENCE_END[pack]
    verdicts = [False] * len(items)
    groups: dict[MessageContext, list[int]] = defaultdict(list)
    for i, (rule, _) in enumerate(items):
        groups[context_for(rule)].append(i)
    for ctx, indices in groups.items():
        for first in range(0, len(indices), BATCH):
            chunk = indices[first : first + BATCH]
            spans, at = [], len(head)
            for i in chunk:
                spans.append((at, at + len(items[i][1])))
                at += len(items[i][1]) + len(sep)
            text = head + sep.join(items[i][1] for i in chunk) + tail
            findings = f.check(text, ctx).findings
            for i, (start, end) in zip(chunk, spans, strict=True):
                rule_id = items[i][0].id
                verdicts[i] = any(
                    x.rule == rule_id and x.action == "block" and x.start is not None
                    and x.end is not None and start <= x.start and x.end <= end
                    for x in findings
                )  # fmt: skip
    return [v or stops(pack, *items[i]) for i, v in enumerate(verdicts)]


def evasions(term: str, rng: random.Random) -> dict[str, str]:
    out = {
        "separators": between_chars(term, lambda: rng.choice(SEPARATORS[:10])),
        "zero-width": between_chars(term, lambda: rng.choice(ZERO_WIDTH)),
        "full-width": between_chars(full_width(term), lambda: rng.choice(["\u3000", "＊", "．"])),
    }
    if _CJK.search(term):
        out["traditional"] = traditional(term)
        out["traditional+separators"] = between_chars(
            traditional(term), lambda: rng.choice(SEPARATORS)
        )
    return out


@pytest.mark.parametrize("pack", ["cn-collection", "us-fdcpa"])
def test_every_block_term_survives_every_evasion(pack: str) -> None:
    rng = random.Random(20261128)
    terms = list(block_terms(pack))
    written = stops_each(pack, [(rule, term.text) for rule, term in terms])
    unstopped = [f"{r.id}: {t.text!r}" for (r, t), ok in zip(terms, written, strict=True) if not ok]
    assert not unstopped, f"terms that do not stop as written: {unstopped[:20]}"
    variants = [
        (rule, name, variant)
        for rule, term in terms
        for name, variant in evasions(term.text, rng).items()
    ]
    count = len(variants)
    verdicts = stops_each(pack, [(rule, variant) for rule, _, variant in variants])
    misses = [
        f"{rule.id} {name}: {variant!r}"
        for (rule, name, variant), ok in zip(variants, verdicts, strict=True)
        if not ok
    ]
    assert count > (20_000 if pack == "cn-collection" else 1_000)
    assert not misses, f"{len(misses)} of {count} evasions slip through: {misses[:20]}"


_CN_TERMS = [(r, t) for r, t in block_terms("cn-collection") if _CJK.search(t.text)]


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=len(_CN_TERMS) - 1),
    fillers=st.lists(
        st.text(alphabet="".join(SEPARATORS + ZERO_WIDTH), min_size=0, max_size=3),
        min_size=40,
        max_size=40,
    ),
    to_traditional=st.booleans(),
    widen=st.booleans(),
)
def test_random_mixed_evasions_still_stop(
    index: int, fillers: list[str], to_traditional: bool, widen: bool
) -> None:
    rule, term = _CN_TERMS[index]
    text = traditional(term.text) if to_traditional else term.text
    if widen:
        text = full_width(text)
    mixed = "".join(ch + fillers[i % len(fillers)] for i, ch in enumerate(text))
    assert stops("cn-collection", rule, mixed), mixed
