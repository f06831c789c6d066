"""Opt-outs and consents over a :class:`ContactRegistry` port.

Both belong to one client (lender) and are stored under the blind-index hash
of the E.164 number, never the number. Scopes: ``all``, ``marketing``,
``collection`` (``config.contact.SCOPE_PURPOSES``); verification codes fall
under none. A consent is recorded per purpose (``marketing``), with its
evidence sealed by the field cipher.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from config.contact import ContactPack, purposes_under


@dataclass(frozen=True, slots=True)
class ContactState:
    opt_outs: frozenset[str]  # scopes
    consents: frozenset[str]  # purposes


class ContactRegistry(Protocol):
    async def state(self, client: str, phone: str) -> ContactState:
        """``phone`` is the number's blind-index hash (so in every method)."""

    async def add_opt_out(
        self, client: str, phone: str, scope: str, at: datetime, source: str
    ) -> None: ...

    async def remove_opt_outs(self, client: str, phone: str) -> int:
        """Lift every scope; how many there were."""

    async def add_consent(
        self, client: str, phone: str, purpose: str, at: datetime, evidence: str
    ) -> None:
        """``evidence`` arrives sealed."""

    async def remove_consent(self, client: str, phone: str, purpose: str) -> bool: ...


def refusal(pack: ContactPack, purpose: str, state: ContactState) -> str | None:
    """The rule that stops ``purpose`` for a recipient in ``state``: ``opt_out``,
    ``no_consent``, or None."""
    if purpose in purposes_under(sorted(state.opt_outs)):
        return "opt_out"
    if purpose in pack.opt_out.consent_required and purpose not in state.consents:
        return "no_consent"
    return None
