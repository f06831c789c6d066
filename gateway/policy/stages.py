"""The contact-policy pipeline stage (after the filters and the client's
``scheduled_at``). In this order:

1. opt-outs and consents: ``opt_out`` and ``no_consent`` blocks;
2. quiet hours: outside the window, schedule for its next start;
3. caps: reserve every cap of the message (last, so a block never spends a
   reservation; the draft gives it back if not committed).

1 and 3 are one store call (:meth:`ContactPolicy.check_and_reserve`; one
round trip on Redis): 2 is pure, so it is worked out first and 1 decides
before anything is reserved. A store that cannot answer fails the request
closed (503, nothing sent).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from config.contact import ContactPack, contact_pack
from config.policies import PolicyError
from gateway.errors import CapExceeded, Unavailable
from gateway.models import Action, Decision, Finding
from gateway.pipeline import NOTHING, Draft, StageResult
from gateway.policy.caps import CapDenied, PolicyUnavailable, ms
from gateway.policy.gate import ContactGate
from gateway.policy.quiet_hours import QuietHours
from gateway.policy.zones import recipient_zones

if TYPE_CHECKING:
    from gateway.policy.service import ContactPolicy

UNKNOWN_PACK = Finding("policy", "contact.unknown_pack", "contact", Action.BLOCK)
UNAVAILABLE = "the contact-policy store is unavailable; nothing was sent"


def pack_of(draft: Draft) -> ContactPack | None:
    try:
        return contact_pack(draft.client.policy)
    except PolicyError:
        return None


def unavailable() -> Unavailable:
    return Unavailable(UNAVAILABLE, headers={"Retry-After": "5"})


class ContactPolicyStage:
    """Opt-outs and consents of the client for this number, quiet hours, caps."""

    name = "contact_policy"

    def __init__(self, policy: ContactPolicy) -> None:
        self.policy = policy

    async def __call__(self, draft: Draft) -> StageResult:
        pack = pack_of(draft)
        if pack is None:
            return StageResult(findings=(UNKNOWN_PACK,), decision=Decision.BLOCK)
        req = draft.request
        zones = recipient_zones(req.to, pack.quiet_hours.fallback_zones, req.to_zones)
        placed = quiet_hours(pack, draft, zones)
        rules = pack.rules_for(req.purpose)
        gate = ContactGate.of(pack, req.purpose)
        try:
            if placed.decision is Decision.BLOCK or not rules:  # nothing to reserve
                state = await self.policy.state(draft.client.id, req.to)
                outcome: str | CapDenied | None = gate.refusal(state)
            else:
                at = _send_at(draft, placed)
                outcome = await self._check_and_reserve(draft, (pack, gate), at, zones[0])
        except PolicyUnavailable:
            raise unavailable() from None
        if isinstance(outcome, CapDenied):
            raise cap_exceeded(outcome)
        if outcome is not None:
            finding = Finding("policy", outcome, "contact", Action.BLOCK)
            return StageResult(findings=(finding,), decision=Decision.BLOCK)
        return placed

    async def _check_and_reserve(
        self, draft: Draft, rules: tuple[ContactPack, ContactGate], at: datetime, zone: ZoneInfo
    ) -> str | CapDenied | None:
        req = draft.request
        client_id = draft.client.id
        pack, gate = rules
        counters = self.policy.caps.counters(
            pack.rules_for(req.purpose), client=client_id, borrower_id=req.borrower_id,
            to=req.to, at=at, zone=zone,
        )  # fmt: skip
        member = draft.message_id or "tmp_" + secrets.token_hex(12)
        outcome = await self.policy.check_and_reserve(
            client_id, req.to, gate, (member, ms(at), counters)
        )
        if outcome is None:
            draft.compensations.append(self._give_back(client_id, member))
        return outcome

    def _give_back(self, client_id: str, member: str) -> Callable[[], Awaitable[None]]:
        async def give_back() -> None:
            await self.policy.release_member(client_id, member)

        return give_back


def quiet_hours(pack: ContactPack, draft: Draft, zones: Sequence[ZoneInfo]) -> StageResult:
    """Outside the window in any of the recipient's ``zones``: scheduled for the
    next start (the client's ``scheduled_at`` is moved the same way)."""
    hours = QuietHours(pack.quiet_hours)
    if hours.exempt(draft.request.purpose):
        return NOTHING
    start = draft.send_at or draft.now
    when = hours.place(start, zones, draft.message_id or secrets.token_hex(8))
    if when == start:
        return NOTHING
    if when is None:  # the candidate zones' windows never overlap
        f = Finding("policy", "quiet_hours.no_window", "contact", Action.BLOCK)
        return StageResult(findings=(f,), decision=Decision.BLOCK)
    note = Finding("policy", "quiet_hours", "contact", Action.NOTE)
    return StageResult(findings=(note,), decision=Decision.SCHEDULE, send_at=when)


def _send_at(draft: Draft, placed: StageResult) -> datetime:
    """When the message will be sent once ``placed`` is merged (as Pipeline.run does)."""
    if placed.send_at is None:
        return draft.send_at or draft.now
    return max(placed.send_at, draft.send_at or placed.send_at)


def cap_exceeded(denied: CapDenied) -> CapExceeded:
    who = "borrower" if denied.subject == "borrower" else "recipient number"
    return CapExceeded(
        f"the {who} has reached the contact cap {denied.rule}; nothing was sent",
        extra={"rule": f"cap.{denied.rule}"},
        headers={"Retry-After": str(max(1, math.ceil(denied.retry_after)))},
    )
