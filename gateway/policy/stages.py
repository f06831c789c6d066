"""The contact-policy pipeline stages, in the order they run (after the
filters and the client's ``scheduled_at``):

1. :class:`ContactStage`: ``opt_out`` and ``no_consent`` blocks;
2. :class:`QuietHoursStage`: outside the window, schedule for its next start;
3. :class:`CapsStage`: reserve every cap of the message (last, so a block
   never spends a reservation; the draft gives it back if not committed).

A store that cannot answer fails the request closed (503, nothing sent).
"""

from __future__ import annotations

import math
import secrets
from typing import TYPE_CHECKING

from config.contact import ContactPack, contact_pack
from config.policies import PolicyError
from gateway.errors import CapExceeded, Unavailable
from gateway.models import Action, Decision, Finding
from gateway.pipeline import NOTHING, Draft, StageResult
from gateway.policy.caps import CapDenied, PolicyUnavailable, ms
from gateway.policy.optouts import refusal
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


class ContactStage:
    """Opt-outs and consents of the client for this number."""

    name = "opt_out"

    def __init__(self, policy: ContactPolicy) -> None:
        self.policy = policy

    async def __call__(self, draft: Draft) -> StageResult:
        pack = pack_of(draft)
        if pack is None:
            return StageResult(findings=(UNKNOWN_PACK,), decision=Decision.BLOCK)
        try:
            state = await self.policy.state(draft.client.id, draft.request.to)
        except PolicyUnavailable:
            raise unavailable() from None
        rule = refusal(pack, draft.request.purpose, state)
        if rule is None:
            return NOTHING
        finding = Finding("policy", rule, "contact", Action.BLOCK)
        return StageResult(findings=(finding,), decision=Decision.BLOCK)


class QuietHoursStage:
    """Outside the window in any of the recipient's zones: scheduled for the
    next start (the client's ``scheduled_at`` is moved the same way)."""

    name = "quiet_hours"

    async def __call__(self, draft: Draft) -> StageResult:
        pack = pack_of(draft)
        if pack is None:
            return StageResult(findings=(UNKNOWN_PACK,), decision=Decision.BLOCK)
        hours = QuietHours(pack.quiet_hours)
        if hours.exempt(draft.request.purpose):
            return NOTHING
        zones = recipient_zones(draft.request.to, pack.quiet_hours.fallback_zones)
        start = draft.send_at or draft.now
        when = hours.place(start, zones, draft.message_id or secrets.token_hex(8))
        if when == start:
            return NOTHING
        if when is None:  # the candidate zones' windows never overlap
            f = Finding("policy", "quiet_hours.no_window", "contact", Action.BLOCK)
            return StageResult(findings=(f,), decision=Decision.BLOCK)
        note = Finding("policy", "quiet_hours", "contact", Action.NOTE)
        return StageResult(findings=(note,), decision=Decision.SCHEDULE, send_at=when)


class CapsStage:
    """Reserves the message's caps; over a cap: 429 with the rule and Retry-After."""

    name = "caps"

    def __init__(self, policy: ContactPolicy) -> None:
        self.policy = policy

    async def __call__(self, draft: Draft) -> StageResult:
        pack = pack_of(draft)
        if pack is None:
            return StageResult(findings=(UNKNOWN_PACK,), decision=Decision.BLOCK)
        req = draft.request
        rules = pack.rules_for(req.purpose)
        if not rules:
            return NOTHING
        at = draft.send_at or draft.now
        zone = recipient_zones(req.to, pack.quiet_hours.fallback_zones)[0]
        counters = self.policy.caps.counters(
            rules, client=draft.client.id, borrower_id=req.borrower_id, to=req.to, at=at, zone=zone
        )
        member = draft.message_id or "tmp_" + secrets.token_hex(12)
        try:
            denied = await self.policy.reserve(draft.client.id, member, ms(at), counters)
        except PolicyUnavailable:
            raise unavailable() from None
        if denied is not None:
            raise cap_exceeded(denied)
        client_id = draft.client.id

        async def give_back() -> None:
            await self.policy.release_member(client_id, member)

        draft.compensations.append(give_back)
        return NOTHING


def cap_exceeded(denied: CapDenied) -> CapExceeded:
    who = "borrower" if denied.subject == "borrower" else "recipient number"
    return CapExceeded(
        f"the {who} has reached the contact cap {denied.rule}; nothing was sent",
        extra={"rule": f"cap.{denied.rule}"},
        headers={"Retry-After": str(max(1, math.ceil(denied.retry_after)))},
    )
