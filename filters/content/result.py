"""What the content filter answers for one message."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["APPEND", "BLOCK", "HOLD", "ContentFinding", "ContentResult", "MessageContext"]

BLOCK = "block"
HOLD = "hold"
APPEND = "append"


@dataclass(frozen=True, slots=True)
class MessageContext:
    """What the filter needs to know about a message besides its text.

    ``untrusted`` are spans (original offsets) filled in from template
    parameters: an attestation of the template never covers them.
    ``templated``: the text is a configured template, rendered.
    """

    purpose: str
    role: str = "borrower"
    region: str | None = None
    signatures: tuple[str, ...] = ()
    link_domains: tuple[str, ...] = ()
    attests: frozenset[str] = frozenset()
    untrusted: tuple[tuple[int, int], ...] = ()
    templated: bool = False


@dataclass(frozen=True, slots=True)
class ContentFinding:
    """One finding. ``start``/``end`` are code points into the submitted text,
    None for the message as a whole. ``allowed`` names what made a lexicon
    hit harmless (``context:anti_fraud``, ``template:legal_action_authorized``);
    allowed hits are reported by ``explain`` but never stop a message."""

    rule: str
    category: str
    action: str  # block | hold | append
    start: int | None
    end: int | None
    term: str = ""
    allowed: str | None = None


@dataclass(frozen=True, slots=True)
class ContentResult:
    findings: tuple[ContentFinding, ...]  # active ones, in text order
    allowed: tuple[ContentFinding, ...] = ()
    body: str | None = None  # the rewritten body when something was appended
    appended: tuple[str, ...] = field(default=())

    @property
    def decision(self) -> str | None:
        """``block`` beats ``hold``; None when nothing stops the message."""
        actions = {f.action for f in self.findings}
        if BLOCK in actions:
            return BLOCK
        if HOLD in actions:
            return HOLD
        return None
