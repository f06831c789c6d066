"""The re-checks the dispatcher runs immediately before each hand-off to a
provider (DESIGN.md invariants 6-7; the time-to-live is the dispatcher's own):

- an opt-out (or a withdrawn consent) recorded since acceptance: ``cancelled``,
  and the caps reservation is given back;
- outside the recipient's window (a retry, a failover, a late claim): back to
  ``scheduled`` for the next start, or ``expired`` when the time-to-live ends
  first.

A store that cannot answer raises :class:`PolicyUnavailable` (a
``StoreUnavailable``): the dispatcher defers the message; nothing is sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from config.contact import contact_pack
from config.policies import PolicyError
from gateway.dispatch import Verdict
from gateway.models import Message, Status
from gateway.policy.optouts import refusal
from gateway.policy.quiet_hours import QuietHours
from gateway.policy.zones import recipient_zones

if TYPE_CHECKING:
    from gateway.policy.service import ContactPolicy


class HandoffChecks:
    def __init__(self, policy: ContactPolicy) -> None:
        self.policy = policy

    async def _pack_name(self, message: Message) -> str | None:
        client = await self.policy.client(message.client_id)
        return None if client is None else client.policy

    async def contact(self, message: Message, now: datetime) -> Verdict | None:
        name = await self._pack_name(message)
        try:
            pack = contact_pack(name or "")
        except PolicyError:
            return Verdict(Status.CANCELLED, "the client's policy pack is unknown")
        state = await self.policy.state(message.client_id, message.to)
        rule = refusal(pack, message.purpose, state)
        if rule is None:
            return None
        await self.policy.release(message)
        reason = "the recipient opted out" if rule == "opt_out" else "no recorded consent"
        return Verdict(Status.CANCELLED, f"{rule}: {reason} before hand-off")

    async def window(self, message: Message, now: datetime) -> Verdict | None:
        name = await self._pack_name(message)
        try:
            rules = contact_pack(name or "").quiet_hours
        except PolicyError:
            return Verdict(Status.CANCELLED, "the client's policy pack is unknown")
        hours = QuietHours(rules)
        if hours.exempt(message.purpose):
            return None
        zones = recipient_zones(message.to, rules.fallback_zones)
        if hours.is_open(now, zones):
            return None
        when = hours.place(now, zones, message.id)
        if when is None or when >= message.expires_at:
            return Verdict(Status.EXPIRED, "time-to-live ends before the recipient's window opens")
        return Verdict(
            Status.SCHEDULED, "outside the recipient's allowed hours: rescheduled", due_at=when
        )
