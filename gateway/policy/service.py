"""Wires the contact policy for the app: the backend the settings name
(``policy.backend``), the pipeline stages, the dispatcher's hand-off checks,
reservation releases, the opt-out / consent operations of the HTTP API and
the inbound keyword handler for the provider callbacks."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Protocol

import phonenumbers

from config.contact import contact_pack
from config.policies import PolicyError
from config.settings import PolicySettings
from gateway.audit import AuditWriter
from gateway.audit_ports import AuditUnavailable
from gateway.clock import Clock
from gateway.crypto import BlindIndex, FieldCipher
from gateway.dispatch import HandoffCheck
from gateway.models import Client, Message
from gateway.pipeline import Stage
from gateway.policy.caps import (
    BorrowerCaps,
    CapCheck,
    CapDenied,
    CapStore,
    Counter,
    PolicyUnavailable,
    ms,
)
from gateway.policy.gate import ContactGate
from gateway.policy.handoff import HandoffChecks
from gateway.policy.inbound import InboundAction, match
from gateway.policy.optouts import ContactRegistry, ContactState
from gateway.policy.redis_store import RedisPolicyStore
from gateway.policy.senders import RecentSenders
from gateway.policy.sqlite_store import SqlitePolicyStore
from gateway.policy.stages import ContactPolicyStage
from providers.base import InboundSms

log = logging.getLogger("lendsms.policy")
INBOUND_LOOKBACK = timedelta(days=30)
ClientLookup = Callable[[str], Awaitable[Client | None]]
AuditLookup = Callable[[], AuditWriter | None]  # the app's writer, once it is open


class PolicyBackend(CapStore, ContactRegistry, Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...


def open_backend(settings: PolicySettings) -> PolicyBackend:
    """The adapter the settings name; no I/O yet."""
    if settings.backend == "redis":
        return RedisPolicyStore(
            settings.redis_url, prefix=settings.redis_prefix, timeout=settings.timeout
        )
    return SqlitePolicyStore(settings.path)


class ContactPolicy:
    def __init__(
        self,
        backend: PolicyBackend,
        clock: Clock,
        index: BlindIndex,
        cipher: FieldCipher,
        *,
        clients: ClientLookup,
        senders: RecentSenders,
        audit: AuditLookup | None = None,
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.index = index
        self.cipher = cipher
        self.caps = BorrowerCaps(index)
        self.client = clients
        self.senders = senders
        self.audit = audit

    async def open(self) -> None:
        await self.backend.open()

    async def close(self) -> None:
        await self.backend.close()

    def stages(self) -> list[Stage]:
        return [ContactPolicyStage(self)]

    def checks(self) -> tuple[HandoffCheck, ...]:
        checks = HandoffChecks(self)
        return (checks.contact, checks.window)

    # -- caps -----------------------------------------------------------------
    async def reserve(
        self, client: str, member: str, at: int, counters: Sequence[Counter]
    ) -> CapDenied | None:
        now = ms(self.clock.now())
        check = CapCheck(client, member, max(at, now), now, tuple(counters))
        return await self.backend.reserve(check)

    async def check_and_reserve(
        self,
        client: str,
        e164: str,
        gate: ContactGate,
        reservation: tuple[str, int, Sequence[Counter]],
    ) -> str | CapDenied | None:
        """The contact check of ``gate``, then (when it passes) the reservation
        (member, at, counters): the refusing rule, a :class:`CapDenied`, or None
        when reserved. One round trip on Redis, where one script does both."""
        member, at, counters = reservation
        phone = self.phone(e164)
        now = ms(self.clock.now())
        check = CapCheck(client, member, max(at, now), now, tuple(counters))
        if isinstance(self.backend, RedisPolicyStore):
            return await self.backend.check_and_reserve(phone, gate, check)
        rule = gate.refusal(await self.backend.state(client, phone))
        return rule if rule is not None else await self.backend.reserve(check)

    async def release_member(self, client: str, member: str) -> None:
        """Give a reservation back; an unreachable store keeps it (the counters
        over-count until the window passes: safe, never under-counting)."""
        try:
            await self.backend.release(client, member)
        except PolicyUnavailable:
            log.warning("a cap reservation could not be given back now")

    async def release(self, message: Message) -> None:
        """For a message that ends blocked, rejected or cancelled before sending."""
        await self.release_member(message.client_id, message.id)

    # -- opt-outs and consents ------------------------------------------------
    def phone(self, e164: str) -> str:
        return self.index.phone(e164)

    async def state(self, client: str, e164: str) -> ContactState:
        return await self.backend.state(client, self.phone(e164))

    async def opt_out(self, client: str, e164: str, scope: str, source: str) -> ContactState:
        await self.backend.add_opt_out(client, self.phone(e164), scope, self.clock.now(), source)
        return await self.state(client, e164)

    async def lift(self, client: str, e164: str) -> int:
        return await self.backend.remove_opt_outs(client, self.phone(e164))

    async def consent(self, client: str, e164: str, purpose: str, evidence: str) -> None:
        sealed = self.cipher.seal(evidence, aad=f"consent:{client}".encode())
        await self.backend.add_consent(client, self.phone(e164), purpose, self.clock.now(), sealed)

    async def withdraw(self, client: str, e164: str, purpose: str) -> bool:
        return await self.backend.remove_consent(client, self.phone(e164), purpose)

    # -- inbound replies ------------------------------------------------------
    async def on_inbound(self, provider: str, reply: InboundSms) -> None:
        """The provider-callback hook (gateway.callbacks.register_inbound_handler)."""
        actions = await self.inbound(reply.text, reply.sender, provider)
        if actions:
            log.info("inbound opt-out keyword", extra={"provider": provider,
                                                       "clients": len(actions)})  # fmt: skip
            await self.audit_inbound(provider, reply, actions)

    async def audit_inbound(
        self, provider: str, reply: InboundSms, actions: Sequence[InboundAction]
    ) -> None:
        """One audit record per opt-out / opt-in an inbound reply caused, written
        AFTER the store recorded them all: honouring an opt-out matters more than
        its record, so an audit outage never keeps one from taking effect.

        When an append fails we raise :class:`AuditUnavailable` and the callback
        answers the provider 503 (not 200), as for a receipt it cannot record:
        the provider pushes the reply again, the store writes are idempotent
        (the same opt-out again, or lifting what is already lifted), and the
        records get written once the log is back. The price is a duplicate
        record for a client whose append succeeded before another's failed; a
        missing record would be worse. Were the provider to give up, the opt-out
        still stands. The writer's hook counts the failure
        (``lendsms_audit_failures_total``); the log line names no number."""
        writer = self.audit() if self.audit is not None else None
        e164 = _e164(reply.sender)
        if writer is None or e164 is None:  # no audit log in this app (tests, extensions)
            return
        phone = self.phone(e164)
        failed = 0
        for action in actions:
            try:
                await writer.append(
                    f"{action.intent}_inbound",  # opt_out_inbound / opt_in_inbound
                    message_id=None,
                    clear={
                        "client": action.client,
                        "provider": provider,
                        "scope": action.scope,
                        "match": action.match,  # keyword, phrase or start_keyword
                        "to_hash": phone,  # the blind index, as opt_out_deleted
                    },
                    sealed={"to": e164, "text": reply.text},  # never the number in clear
                )
            except AuditUnavailable:
                failed += 1
        if failed:
            log.error("inbound opt-outs recorded but not audited",
                      extra={"provider": provider, "records": failed})  # fmt: skip
            raise AuditUnavailable("inbound opt-out records not written")

    async def inbound(self, text: str, number: str, provider: str) -> list[InboundAction]:
        """An inbound reply from ``number`` through ``provider``: record (or lift)
        an opt-out for every client that sent to it there in the last 30 days."""
        e164 = _e164(number)
        if e164 is None:
            return []
        now = self.clock.now()
        phone = self.phone(e164)
        actions: list[InboundAction] = []
        for client_id in await self.senders.clients(phone, provider, now - INBOUND_LOOKBACK):
            client = await self.client(client_id)
            try:
                rules = contact_pack(client.policy if client else "").opt_out
            except PolicyError:
                continue
            found = match(text, rules)
            if found is None:
                continue
            intent, matched = found
            if intent == "opt_out":
                source = f"inbound:{provider}"
                await self.backend.add_opt_out(client_id, phone, rules.scope, now, source)
                actions.append(InboundAction(client_id, intent, rules.scope, matched))
            else:
                await self.backend.remove_opt_outs(client_id, phone)
                actions.append(InboundAction(client_id, intent, None, matched))
        return actions


def _e164(number: str) -> str | None:
    raw = number.strip()
    if not raw.startswith("+"):
        raw = "+" + raw.lstrip("0")
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
