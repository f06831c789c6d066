"""Inbound replies: an opt-out keyword (STOP, 退订, TD, ...) records an opt-out,
START / 开通 lifts it, for every client that sent to the number through that
provider in the last 30 days, each by its own pack's keywords."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from config.contact import OptOutRules

Intent = Literal["opt_out", "opt_in"]
# which of a pack's lists matched (the audit records it, never the reply itself)
Match = Literal["keyword", "phrase", "start_keyword"]
_EDGES = re.compile(r"^[\W_]+|[\W_]+$")
_WORDS = re.compile(r"[\W_]+")
FIRST_WORD_MIN = 3  # shorter keywords (T, N, R, TD) count only as the whole reply


@dataclass(frozen=True, slots=True)
class InboundAction:
    client: str
    intent: Intent
    scope: str | None  # the scope recorded (opt_out), None for opt_in
    match: Match = "keyword"


def normalize_reply(text: str) -> str:
    folded = " ".join(unicodedata.normalize("NFKC", text).upper().split())
    return _EDGES.sub("", folded)


def _matches(reply: str, keywords: frozenset[str]) -> bool:
    if reply in keywords:
        return True
    words = [w for w in _WORDS.split(reply) if w]
    return bool(words) and len(words[0]) >= FIRST_WORD_MIN and words[0] in keywords


def classify(text: str, rules: OptOutRules) -> Intent | None:
    """What a reply asks for under one pack's keywords (an opt-out wins)."""
    found = match(text, rules)
    return found[0] if found is not None else None


def match(text: str, rules: OptOutRules) -> tuple[Intent, Match] | None:
    """:func:`classify`, with which list matched."""
    reply = normalize_reply(text)
    if not reply:
        return None
    if _matches(reply, rules.keywords):
        return "opt_out", "keyword"
    if any(p in reply for p in rules.phrases):
        return "opt_out", "phrase"
    if _matches(reply, rules.start_keywords):
        return "opt_in", "start_keyword"
    return None
