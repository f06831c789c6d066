"""The contact policy again, when a reviewer approves a held message: the
same rules as acceptance (gateway.policy.stages), applied at approval time.

- an opt-out or a withdrawn consent since: refused (409 with the rule);
- outside the recipient's window: scheduled for the next start (the same
  quiet-hours placement as acceptance), else due now;
- caps: the reservation made at acceptance (a held message keeps it) is given
  back and the caps are reserved again for the time it will now be sent; over
  a cap: refused (409 with the rule), and the message stays held without a
  reservation (it is not going to be sent then).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from config.contact import contact_pack
from config.policies import PolicyError
from gateway.models import Message
from gateway.policy.caps import ms
from gateway.policy.optouts import refusal
from gateway.policy.quiet_hours import QuietHours
from gateway.policy.service import ContactPolicy
from gateway.policy.zones import recipient_zones


@dataclass(frozen=True, slots=True)
class Refusal:
    rule: str
    detail: str


@dataclass(frozen=True, slots=True)
class Placement:
    send_at: datetime  # now, or the next opening of the recipient's window
    reserved: bool  # caps were reserved under the message id


async def recheck(
    policy: ContactPolicy, message: Message, policy_name: str, now: datetime
) -> Placement | Refusal:
    """Raises PolicyUnavailable (a StoreUnavailable) when the store cannot answer."""
    try:
        pack = contact_pack(policy_name)
    except PolicyError:
        return Refusal("contact.unknown_pack", "the client's policy pack is unknown")
    state = await policy.state(message.client_id, message.to)
    rule = refusal(pack, message.purpose, state)
    if rule is not None:
        why = "the recipient opted out" if rule == "opt_out" else "there is no recorded consent"
        return Refusal(rule, f"{why} since the message was held")
    zones = recipient_zones(message.to, pack.quiet_hours.fallback_zones)
    hours = QuietHours(pack.quiet_hours)
    send_at: datetime | None = now
    if not hours.exempt(message.purpose):
        send_at = hours.place(now, zones, message.id)
    if send_at is None:
        return Refusal("quiet_hours.no_window", "the recipient's time zones share no allowed hours")
    rules = pack.rules_for(message.purpose)
    if not rules:
        return Placement(send_at, reserved=False)
    counters = policy.caps.counters(
        rules,
        client=message.client_id,
        borrower_id=message.borrower_id,
        to=message.to,
        at=send_at,
        zone=zones[0],
    )
    # the acceptance-time reservation; an unreachable store raises (fail closed)
    await policy.backend.release(message.client_id, message.id)
    denied = await policy.reserve(message.client_id, message.id, ms(send_at), counters)
    if denied is not None:
        who = "borrower" if denied.subject == "borrower" else "recipient number"
        return Refusal(f"cap.{denied.rule}", f"the {who} has reached the contact cap")
    return Placement(send_at, reserved=True)
