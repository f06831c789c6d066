"""Content policy: lexicon categories (one Aho-Corasick automaton per view and
pack over evasion-resistant views of the normalised text) with allow-contexts,
and structural rules (signature, unsubscribe / opt-out, links, length).

Pure: the pack is handed in as data (:class:`PackSpec`, loaded by
``config.content``); nothing here reads files.
"""

from config.content_model import (
    Category,
    Context,
    Instruction,
    PackSpec,
    Rule,
    Scope,
    Severity,
    SignatureRules,
    SimpleRule,
    Structure,
    Term,
)
from filters.content.engine import ContentFilter
from filters.content.result import ContentFinding, ContentResult, MessageContext

__all__ = [
    "Category",
    "ContentFilter",
    "ContentFinding",
    "ContentResult",
    "Context",
    "Instruction",
    "MessageContext",
    "PackSpec",
    "Rule",
    "Scope",
    "Severity",
    "SignatureRules",
    "SimpleRule",
    "Structure",
    "Term",
]
