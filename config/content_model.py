"""The shape of a content policy as data: what ``config.content`` loads
from a pack and its lexicon files, and what ``filters.content`` builds its
automata from. Plain frozen data; no I/O, no gateway types."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


class Severity(enum.StrEnum):
    """What a content hit asks for. ``block`` beats ``hold``."""

    HOLD = "hold"
    BLOCK = "block"


class Scope(enum.StrEnum):
    """How far a context or co-occurring term may be from a hit."""

    CLAUSE = "clause"  # between commas / sentence ends
    SENTENCE = "sentence"  # between sentence ends
    MESSAGE = "message"


@dataclass(frozen=True, slots=True)
class Term:
    """One literal pattern, as written in a lexicon file (alternations expanded).

    ``prefix`` (written ``word*``) lets a Latin term match the start of a
    longer word (``jail*`` -> "jailed"). ``pinyin`` holds the toneless
    readings used to catch pinyin spellings (``zuolao``, ``zuo牢``);
    ``forms`` other written forms matched like the term itself: traditional
    spellings that per-character conversion does not undo (借口 is written
    藉口) and, for rules that ask for them, homophone spellings from the
    lexicon's ``homophones.toml`` (做牢 / 座牢 for 坐牢, 拘流 for 拘留).
    """

    text: str
    prefix: bool = False
    pinyin: tuple[str, ...] = ()
    forms: tuple[str, ...] = ()  # traditional (OpenCC) and homophone spellings


@dataclass(frozen=True, slots=True)
class Rule:
    """A lexicon rule: terms of one category, an action and a legal source.

    * ``with_terms``: the rule fires only when one of these also occurs within
      ``with_scope`` (e.g. a credit-reporting word together with an
      exaggeration such as "一辈子").
    * ``allow_contexts``: names of :class:`Context` groups that, found within
      their scope, make the hit harmless (an anti-fraud warning that mentions
      private accounts). Threat categories have none: negation does not save
      a threat.
    * ``allowed_by``: template attestations that allow the hit when it comes
      from the template's own text (not from a parameter).
    * ``escalated_by``: template attestations that turn the rule's action
      into ``block`` and switch ``allowed_by`` off (legal-action wording in a
      template that declares the debt ``time_barred``: Reg F §1006.26(b)).
    * ``roles`` / ``purposes``: empty means every role / purpose.
    """

    id: str
    category: str
    severity: Severity
    source: str
    terms: tuple[Term, ...]
    with_terms: tuple[Term, ...] = ()
    with_scope: Scope = Scope.SENTENCE
    allow_contexts: tuple[str, ...] = ()
    allowed_by: tuple[str, ...] = ()
    escalated_by: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Context:
    """Allow-context: words whose presence makes some hits harmless.

    ``negated_by``: words that, written right before a context word, undo it
    ("别以为是诈骗", "this is not a scam"), as written in the lexicon.
    """

    name: str
    terms: tuple[Term, ...]
    scope: Scope = Scope.CLAUSE
    negated_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    number: int  # compliance.md §3 row, 0 for categories beyond the 13
    title: str


@dataclass(frozen=True, slots=True)
class Instruction:
    """A required instruction (unsubscribe, opt-out) for some purposes.

    ``missing`` is ``"block"`` or ``"append"``; with ``append`` the
    ``append_text`` is added to the body (before a trailing 【signature】).
    ``markers`` are matched case-insensitively on the normalised text.
    """

    rule: str
    source: str
    category: str
    purposes: tuple[str, ...]
    missing: str
    append_text: str
    markers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SignatureRules:
    """【signature】 rules for packs whose carriers require one."""

    required: bool
    rule: str
    source: str
    authority_rule: str
    authority_source: str
    authority_terms: tuple[str, ...]
    min_chars: int = 2
    max_chars: int = 16


@dataclass(frozen=True, slots=True)
class SimpleRule:
    rule: str
    source: str
    category: str


@dataclass(frozen=True, slots=True)
class Structure:
    signature: SignatureRules | None = None
    instructions: tuple[Instruction, ...] = ()
    links: SimpleRule | None = None
    link_tlds: tuple[str, ...] = ()
    length: SimpleRule | None = None
    max_segments: int = 0  # 0: no limit
    contact_amounts: SimpleRule | None = None  # money figures to a contact


@dataclass(frozen=True, slots=True)
class LearnedHold:
    """The pack's learned second stage (``filters/content/learned.py``): a
    message the lexicon lets through but the model at ``path`` scores at or
    above the threshold is held for human review, never blocked. ``threshold``
    None: the model's own per-language threshold (chosen by cross-validation
    when it was trained)."""

    model: str  # the name in the pack file
    path: str  # the resolved model file
    threshold: float | None = None
    rule: str = "learned.hold"
    source: str = (
        "compliance.md §3 (wording that looks like the stops of the labelled corpora: "
        "held for review); docs/content-learned.md"
    )


@dataclass(frozen=True, slots=True)
class PackSpec:
    """Everything the content filter of one pack is built from.

    ``t2s`` maps traditional code points to simplified characters (from
    OpenCC); ``syllables`` maps the Chinese characters of pinyin-enabled
    terms to one toneless reading each.
    """

    name: str
    language: str
    rules: tuple[Rule, ...]
    contexts: tuple[Context, ...] = ()
    categories: tuple[Category, ...] = ()
    structure: Structure = Structure()
    t2s: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    syllables: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    learned: LearnedHold | None = None

    @property
    def term_count(self) -> int:
        return sum(len(r.terms) + len(r.with_terms) for r in self.rules) + sum(
            len(c.terms) for c in self.contexts
        )
