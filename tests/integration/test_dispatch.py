"""The dispatcher's decisions against a real SQLite store and a real audit log,
with scripted providers: sends, refusals, retries and backoff, failover,
ambiguous outcomes and status queries (DESIGN.md invariant 9), interrupted
attempts, time-to-live, hand-off checks, routes, and the worker loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from config.settings import DispatchSettings, RouteSettings
from gateway.audit import AuditWriter
from gateway.clock import FakeClock
from gateway.crypto import BlindIndex, FieldCipher
from gateway.dispatch import Dispatcher, HandoffCheck, Verdict
from gateway.metrics import Metrics
from gateway.models import Event, Message, Status
from gateway.store.base import QueueItem
from gateway.store.sqlite import SqliteStore
from providers.base import (
    Capabilities,
    DeliveryState,
    OutboundSms,
    Outcome,
    Provider,
    ProviderError,
    SendResult,
    StatusResult,
)
from providers.routing import Router
from tests.conftest import wait_for

T0 = datetime(2025, 6, 2, 3, 0, tzinfo=UTC)
PHONE = "+8613812345678"
BODY = "【安心消费金融】您本期应还1,086.40元，最后还款日12月8日。"
BASE = 10.0  # backoff_base, seconds of the fake clock
LEASE = 30.0

HANG = object()  # a script step: the call never answers (the dispatcher times out)


@dataclass
class Gate:
    """A script step: wait until the test opens it, then answer ``result``."""

    result: SendResult
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class CallCheck:
    """What was true when a provider's send() was entered."""

    message_id: str
    sending_records: int  # "sending" audit records for the message already on disk
    status: Status | None  # the message's status in the store
    attempts: int


class ScriptedProvider:
    """Answers send() and query_status() from scripts, and records every call."""

    def __init__(
        self,
        name: str,
        script: Sequence[object] = (),
        *,
        statuses: Sequence[object] = (),
        status_query: bool = False,
        max_segments: int = 10,
        log: list[str] | None = None,
    ) -> None:
        self.name = name
        self.capabilities = Capabilities(max_segments=max_segments, status_query=status_query)
        self.script = list(script)
        self.statuses = list(statuses)
        self.sent: list[OutboundSms] = []
        self.queries: list[tuple[str, str | None]] = []
        self.checks: list[CallCheck] = []
        self.log = log if log is not None else []
        self.audit: AuditWriter | None = None
        self.store: SqliteStore | None = None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(self, sms: OutboundSms) -> SendResult:
        self.sent.append(sms)
        self.log.append(f"send:{self.name}")
        await self._check(sms)
        if not self.script:
            raise AssertionError(f"{self.name}: unexpected send")
        step = self.script.pop(0)
        if step is HANG:
            await asyncio.Event().wait()
        if isinstance(step, Gate):
            step.entered.set()
            await step.opened.wait()
            return step.result
        if isinstance(step, BaseException):
            raise step
        assert isinstance(step, SendResult)
        return step

    async def query_status(
        self, message_id: str, provider_message_id: str | None
    ) -> StatusResult | None:
        self.queries.append((message_id, provider_message_id))
        self.log.append(f"query:{self.name}")
        if not self.statuses:
            raise AssertionError(f"{self.name}: unexpected status query")
        step = self.statuses.pop(0)
        if isinstance(step, BaseException):
            raise step
        assert step is None or isinstance(step, StatusResult)
        return step

    async def _check(self, sms: OutboundSms) -> None:
        records = 0
        if self.audit is not None and self.audit.segment is not None:
            for line in self.audit.segment.read_bytes().splitlines():
                rec = json.loads(line)
                if rec["event"] == "sending" and rec["message_id"] == sms.message_id:
                    records += 1
        status, attempts = None, -1
        if self.store is not None:
            m = await self.store.get_message(sms.message_id)
            if m is not None:
                status, attempts = m.status, m.attempts
        self.checks.append(CallCheck(sms.message_id, records, status, attempts))


assert isinstance(ScriptedProvider("x"), Provider)


# -- fixtures -----------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "lendsms.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(
        db_path, FieldCipher(secrets.token_bytes(32)), BlindIndex(secrets.token_bytes(32))
    )
    await s.open()
    yield s
    await s.close()


@pytest.fixture
async def audit(tmp_path: Path, clock: FakeClock) -> AsyncIterator[AuditWriter]:
    w = AuditWriter(
        tmp_path / "audit",
        instance_id="dispatch-test",
        seal_key=secrets.token_bytes(32),
        chain_key=secrets.token_bytes(32),
        clock=clock,
    )
    await w.start()
    yield w
    await w.close()


@dataclass
class Rig:
    store: SqliteStore
    audit: AuditWriter
    clock: FakeClock
    db_path: Path

    def dispatcher(
        self,
        *providers: ScriptedProvider,
        routes: Sequence[RouteSettings] | None = None,
        checks: Sequence[HandoffCheck] = (),
        **settings: Any,
    ) -> Dispatcher:
        for p in providers:
            p.audit, p.store = self.audit, self.store
        options: dict[str, Any] = {
            "workers": 2,
            "max_attempts": 3,
            "backoff_base": BASE,
            "backoff_max": 1000.0,
            "poll_interval": 0.02,
            "lease_seconds": LEASE,
            "provider_timeout": 0.1,
        }
        options.update(settings)
        if routes is None:
            routes = [RouteSettings(providers=tuple(p.name for p in providers))]
        return Dispatcher(
            DispatchSettings(**options),
            self.store,
            self.audit,
            {p.name: p for p in providers},
            Router(routes),
            self.clock,
            Metrics(),
            owner="worker-1",
            checks=tuple(checks),
        )

    async def accept(self, **changes: Any) -> Message:
        now = self.clock.now()
        m = Message(
            id=f"msg_{secrets.token_hex(8)}",
            client_id="acme",
            to=PHONE,
            to_masked="+86138****5678",
            region="CN",
            borrower_id="b-1",
            purpose="repayment_reminder",
            recipient_role="borrower",
            text=BODY,
            body=BODY,
            segments=1,
            encoding="UCS-2",
            findings=(),
            status=Status.QUEUED,
            created_at=now,
            updated_at=now,
            scheduled_at=None,
            expires_at=now + timedelta(days=1),
            events=(Event(at=now, status=Status.QUEUED, detail="accepted"),),
        )
        m = replace(m, **changes)
        await self.store.commit_acceptance(m, None, now)
        return m

    async def claim(self) -> list[QueueItem]:
        now = self.clock.now()
        return list(await self.store.claim_due(now, 10, "worker-1", now + timedelta(seconds=LEASE)))

    async def claim_one(self, message_id: str) -> QueueItem:
        items = await self.claim()
        assert [i.message_id for i in items] == [message_id]
        return items[0]

    async def get(self, message_id: str) -> Message:
        m = await self.store.get_message(message_id)
        assert m is not None
        return m

    def due_at(self, message_id: str) -> datetime | None:
        with contextlib.closing(sqlite3.connect(self.db_path)) as db:
            row = db.execute("SELECT due_at FROM queue WHERE message_id=?", (message_id,))
            found = row.fetchone()
        return None if found is None else datetime.fromtimestamp(found[0], UTC)

    def audit_events(self, message_id: str) -> list[str]:
        assert self.audit.segment is not None
        out = []
        for line in self.audit.segment.read_bytes().splitlines():
            rec = json.loads(line)
            if rec["message_id"] == message_id:
                out.append(rec["event"])
        return out


@pytest.fixture
def rig(store: SqliteStore, audit: AuditWriter, clock: FakeClock, db_path: Path) -> Rig:
    return Rig(store, audit, clock, db_path)


def sent(pmid: str = "pm-1") -> SendResult:
    return SendResult(Outcome.SENT, provider_message_id=pmid)


def assert_recorded_before_each_send(*providers: ScriptedProvider) -> None:
    """Invariant 9: every call found its attempt durable (audit and store) first."""
    for p in providers:
        seen: dict[str, int] = {}
        for check in p.checks:
            seen[check.message_id] = seen.get(check.message_id, 0) + 1
            assert check.status is Status.SENDING, check
            assert check.sending_records >= seen[check.message_id], check
            assert check.attempts >= seen[check.message_id], check


# -- one outcome per call -------------------------------------------------------


async def test_sent(rig: Rig) -> None:
    p1 = ScriptedProvider("p1", [sent("pm-42")])
    d = rig.dispatcher(p1)
    m = await rig.accept()

    await d.handle(await rig.claim_one(m.id))

    got = await rig.get(m.id)
    assert got.status is Status.SENT
    assert got.provider == "p1" and got.provider_message_id == "pm-42" and got.attempts == 1
    assert [e.status for e in got.events] == [Status.QUEUED, Status.SENDING, Status.SENT]
    assert len(p1.sent) == 1
    sms = p1.sent[0]
    assert (sms.message_id, sms.to, sms.body, sms.purpose, sms.client_id) == (
        m.id, PHONE, BODY, "repayment_reminder", "acme",
    )  # fmt: skip
    assert rig.due_at(m.id) is None  # no queue entry is left
    assert rig.audit_events(m.id) == ["sending", "sent"]
    assert_recorded_before_each_send(p1)


async def test_permanent_refusal_fails_the_message(rig: Rig) -> None:
    p1 = ScriptedProvider("p1", [SendResult(Outcome.PERMANENT, code="invalid_number")])
    p2 = ScriptedProvider("p2")
    d = rig.dispatcher(p1, p2)
    m = await rig.accept()

    await d.handle(await rig.claim_one(m.id))

    got = await rig.get(m.id)
    assert got.status is Status.FAILED
    assert got.events[-1].detail == "p1 refused: invalid_number"
    assert len(p1.sent) == 1 and p2.sent == []  # a permanent refusal is not failed over
    assert rig.due_at(m.id) is None
    assert rig.audit_events(m.id) == ["sending", "failed"]


@pytest.mark.parametrize("outcome", [Outcome.RETRY, Outcome.RETRY_LATER], ids=str)
async def test_retry_requeues_with_backoff(rig: Rig, outcome: Outcome) -> None:
    p1 = ScriptedProvider("p1", [SendResult(outcome, code="busy")] * 2)
    d = rig.dispatcher(p1, max_attempts=5)
    m = await rig.accept()

    await d.handle(await rig.claim_one(m.id))

    got = await rig.get(m.id)
    assert got.status is Status.QUEUED and got.attempts == 1
    assert got.events[-1].detail == "retry: p1 said busy"
    due = rig.due_at(m.id)
    assert due is not None
    first_delay = (due - rig.clock.now()).total_seconds()
    assert BASE / 2 <= first_delay <= BASE  # first retry: base, jittered down to half
    assert await rig.claim() == []  # not before it is due

    rig.clock.set(due)
    await d.handle(await rig.claim_one(m.id))
    due2 = rig.due_at(m.id)
    assert due2 is not None
    second_delay = (due2 - rig.clock.now()).total_seconds()
    assert BASE <= second_delay <= 2 * BASE  # exponential
    assert len(p1.sent) == 2
    assert_recorded_before_each_send(p1)


async def test_retry_jitter_stays_within_bounds(rig: Rig) -> None:
    p1 = ScriptedProvider("p1", [SendResult(Outcome.RETRY, code="busy")] * 8)
    d = rig.dispatcher(p1)
    delays = []
    for _ in range(8):
        m = await rig.accept()
        await d.handle(await rig.claim_one(m.id))
        due = rig.due_at(m.id)
        assert due is not None
        delays.append((due - rig.clock.now()).total_seconds())
    assert all(BASE / 2 <= x <= BASE for x in delays), delays


async def test_retry_after_is_respected(rig: Rig) -> None:
    p1 = ScriptedProvider("p1", [SendResult(Outcome.RETRY, code="throttled", retry_after=600)])
    d = rig.dispatcher(p1)
    m = await rig.accept()

    await d.handle(await rig.claim_one(m.id))

    due = rig.due_at(m.id)
    assert due is not None
    assert (due - rig.clock.now()).total_seconds() == pytest.approx(600)
    rig.clock.advance(599)
    assert await rig.claim() == []


async def test_retries_end_in_failed_after_max_attempts(rig: Rig) -> None:
    p1 = ScriptedProvider("p1", [SendResult(Outcome.RETRY, code="busy")] * 3)
    d = rig.dispatcher(p1, max_attempts=3)
    m = await rig.accept()

    for _ in range(3):
        await d.handle(await rig.claim_one(m.id))
        due = rig.due_at(m.id)
        if due is not None:
            rig.clock.set(due)

    got = await rig.get(m.id)
    assert got.status is Status.FAILED and got.attempts == 3
    assert got.events[-1].detail == "attempts exhausted (busy)"
    assert len(p1.sent) == 3
    assert rig.due_at(m.id) is None
    rig.clock.advance(3600)
    assert await rig.claim() == []


# -- failover -----------------------------------------------------------------


async def test_switch_provider_fails_over_to_the_next_on_the_route(rig: Rig) -> None:
    p1 = ScriptedProvider("p1", [SendResult(Outcome.SWITCH_PROVIDER, code="no_capacity")])
    p2 = ScriptedProvider("p2", [sent("pm-2")])
    d = rig.dispatcher(p1, p2)
    m = await rig.accept()

    await d.handle(await rig.claim_one(m.id))

    got = await rig.get(m.id)
    assert got.status is Status.SENT
    assert got.provider == "p2" and got.provider_message_id == "pm-2" and got.attempts == 2
    assert [s.message_id for s in p1.sent] == [m.id]
    assert [s.message_id for s in p2.sent] == [m.id]
    assert rig.audit_events(m.id) == ["sending", "sending", "sent"]
    assert_recorded_before_each_send(p1, p2)


async def test_route_order_decides_who_goes_first(rig: Rig) -> None:
    p1 = ScriptedProvider("p1")
    p2 = ScriptedProvider("p2", [sent()])
    d = rig.dispatcher(p1, p2, routes=[RouteSettings(providers=("p2", "p1"))])
    m = await rig.accept()
    await d.handle(await rig.claim_one(m.id))
    assert (await rig.get(m.id)).provider == "p2"
    assert p1.sent == []


async def test_all_providers_switching_requeues(rig: Rig) -> None:
    p1 = ScriptedProvider("p1", [SendResult(Outcome.SWITCH_PROVIDER, code="a")])
    p2 = ScriptedProvider("p2", [SendResult(Outcome.SWITCH_PROVIDER, code="b")])
    d = rig.dispatcher(p1, p2, max_attempts=5)
    m = await rig.accept()

    await d.handle(await rig.claim_one(m.id))

    got = await rig.get(m.id)
    assert got.status is Status.QUEUED and got.attempts == 2
    assert got.events[-1].detail == "retry: p2 said all_switched"
    due = rig.due_at(m.id)
    assert due is not None and due > rig.clock.now()


async def test_failover_is_checked_again_before_the_second_hand_off(rig: Rig) -> None:
    """A STOP that lands while the first provider answers stops the failover."""
    calls: list[Status] = []

    async def opt_out_after_first(message: Message, now: datetime) -> Verdict | None:
        calls.append(message.status)
        return None if len(calls) == 1 else Verdict(Status.CANCELLED, "opted out")

    p1 = ScriptedProvider("p1", [SendResult(Outcome.SWITCH_PROVIDER, code="no_capacity")])
    p2 = ScriptedProvider("p2", [sent()])
    d = rig.dispatcher(p1, p2, checks=[opt_out_after_first])
    m = await rig.accept()

    await d.handle(await rig.claim_one(m.id))

    got = await rig.get(m.id)
    assert got.status is Status.CANCELLED and got.events[-1].detail == "opted out"
    assert len(p1.sent) == 1 and p2.sent == []
    assert calls == [Status.QUEUED, Status.SENDING]


async def test_failover_expires_when_the_ttl_passes_meanwhile(rig: Rig) -> None:
    clock = rig.clock

    class SlowSwitch(ScriptedProvider):
        async def send(self, sms: OutboundSms) -> SendResult:
            result = await super().send(sms)
            clock.advance(120)  # the first provider took its time
            return result

    p1 = SlowSwitch("p1", [SendResult(Outcome.SWITCH_PROVIDER, code="no_capacity")])
    p2 = ScriptedProvider("p2", [sent()])
    d = rig.dispatcher(p1, p2)
    m = await rig.accept(expires_at=clock.now() + timedelta(seconds=60))

    await d.handle(await rig.claim_one(m.id))

    assert (await rig.get(m.id)).status is Status.EXPIRED
    assert p2.sent == []


# -- ambiguous outcomes (invariant 9) ---------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [ProviderError("connection reset"), HANG, ConnectionResetError("reset")],
    ids=["provider_error", "timeout", "os_error"],
)
async def test_ambiguous_send_confirmed_by_status_query_is_not_resent(
    rig: Rig, failure: object
) -> None:
    log: list[str] = []
    p1 = ScriptedProvider(
        "p1",
        [failure],
        statuses=[StatusResult(DeliveryState.ACCEPTED, "pm-found")],
        status_query=True,
        log=log,
    )
    p2 = ScriptedProvider("p2", log=log)
    d = rig.dispatcher(p1, p2)
    m = await rig.accept()

    await d.handle(await rig.claim_one(m.id))

    got = await rig.get(m.id)
    assert got.status is Status.SENT
    assert got.provider_message_id == "pm-found"
    assert got.events[-1].detail == "confirmed by p1 status query"
    assert log == ["send:p1", "query:p1"]  # one send, no failover, no resend
    assert p1.queries == [(m.id, None)]
    rig.clock.advance(3600)
    assert await rig.claim() == []  # nothing left to send later either


@pytest.mark.parametrize(
    ("state", "final"),
    [(DeliveryState.DELIVERED, Status.DELIVERED), (DeliveryState.UNDELIVERED, Status.UNDELIVERED)],
    ids=str,
)
async def test_ambiguous_send_with_a_final_receipt(
    rig: Rig, state: DeliveryState, final: Status
) -> None:
    p1 = ScriptedProvider(
        "p1", [ProviderError("reset")], statuses=[StatusResult(state)], status_query=True
    )
    d = rig.dispatcher(p1)
    m = await rig.accept()
    await d.handle(await rig.claim_one(m.id))
    assert (await rig.get(m.id)).status is final
    assert len(p1.sent) == 1


async def test_ambiguous_send_not_found_is_requeued_not_resent_at_once(rig: Rig) -> None:
    log: list[str] = []
    p1 = ScriptedProvider(
        "p1",
        [ProviderError("reset"), sent("pm-2nd")],
        statuses=[StatusResult(DeliveryState.NOT_FOUND)],
        status_query=True,
        log=log,
    )
    d = rig.dispatcher(p1)
    m = await rig.accept()

    await d.handle(await rig.claim_one(m.id))

    got = await rig.get(m.id)
    assert got.status is Status.QUEUED and got.attempts == 1
    assert got.events[-1].detail == "retry: p1 said timeout"
    assert log == ["send:p1", "query:p1"]
    due = rig.due_at(m.id)
    assert due is not None and due > rig.clock.now()
    assert await rig.claim() == []

    rig.clock.set(due)
    await d.handle(await rig.claim_one(m.id))
    got = await rig.get(m.id)
    assert got.status is Status.SENT and got.provider_message_id == "pm-2nd"
    assert log == ["send:p1", "query:p1", "send:p1"]
    assert_recorded_before_each_send(p1)


async def test_ambiguous_send_not_found_on_the_last_attempt_fails(rig: Rig) -> None:
    p1 = ScriptedProvider(
        "p1",
        [ProviderError("reset")],
        statuses=[StatusResult(DeliveryState.NOT_FOUND)],
        status_query=True,
    )
    d = rig.dispatcher(p1, max_attempts=1)
    m = await rig.accept()
    await d.handle(await rig.claim_one(m.id))
    got = await rig.get(m.id)
    assert got.status is Status.FAILED and got.events[-1].detail == "attempts exhausted"
    assert len(p1.sent) == 1


async def test_ambiguous_send_without_status_query_fails(rig: Rig) -> None:
    p1 = ScriptedProvider("p1", [ProviderError("reset")])
    p2 = ScriptedProvider("p2")
    d = rig.dispatcher(p1, p2)
    m = await rig.accept()

    await d.handle(await rig.claim_one(m.id))

    got = await rig.get(m.id)
    assert got.status is Status.FAILED
    assert got.events[-1].detail == "ambiguous_timeout"
    assert len(p1.sent) == 1 and p2.sent == []  # never resent, not even elsewhere
    assert rig.audit_events(m.id) == ["sending", "failed"]


async def test_a_status_query_that_fails_never_leads_to_a_blind_resend(rig: Rig) -> None:
    log: list[str] = []
    p1 = ScriptedProvider(
        "p1",
        [ProviderError("reset")],
        statuses=[ProviderError("query down"), StatusResult(DeliveryState.ACCEPTED, "pm-x")],
        status_query=True,
        log=log,
    )
    d = rig.dispatcher(p1)
    m = await rig.accept()

    await d.handle(await rig.claim_one(m.id))

    got = await rig.get(m.id)
    assert got.status is Status.SENDING  # still unknown: left for the next claim to ask
    assert log == ["send:p1", "query:p1"]
    assert await rig.claim() == []  # leased by the attempt

    rig.clock.advance(LEASE + 1)
    await d.handle(await rig.claim_one(m.id))

    got = await rig.get(m.id)
    assert got.status is Status.SENT and got.provider_message_id == "pm-x"
    assert log == ["send:p1", "query:p1", "query:p1"]  # asked twice, sent once


# -- interrupted attempts -------------------------------------------------------
# (confirmed by a status query, or not found and then sent: these run on both
# store backends in tests/contract/test_dispatch_handoff.py)


async def interrupted(rig: Rig, provider: str = "p1") -> Message:
    """A message whose worker died mid-send: ``sending``, lease run out."""
    m = await rig.accept()
    now = rig.clock.now()
    await rig.store.begin_attempt(m.id, provider, now, "dead-worker", now + timedelta(seconds=5))
    assert await rig.claim() == []  # leased by the dead worker
    rig.clock.advance(6)
    return m


async def test_interrupted_attempt_without_status_query_fails(rig: Rig) -> None:
    p1 = ScriptedProvider("p1")
    d = rig.dispatcher(p1)
    m = await interrupted(rig)

    await d.handle(await rig.claim_one(m.id))

    got = await rig.get(m.id)
    assert got.status is Status.FAILED and got.events[-1].detail == "ambiguous_timeout"
    assert p1.sent == []


async def test_interrupted_attempt_with_the_provider_gone_fails(rig: Rig) -> None:
    p2 = ScriptedProvider("p2")
    d = rig.dispatcher(p2)
    m = await interrupted(rig, provider="retired")

    await d.handle(await rig.claim_one(m.id))

    got = await rig.get(m.id)
    assert got.status is Status.FAILED and got.events[-1].detail == "ambiguous_timeout"
    assert p2.sent == []


# -- before the hand-off ----------------------------------------------------------


async def test_expired_message_is_never_sent(rig: Rig) -> None:
    p1 = ScriptedProvider("p1")
    d = rig.dispatcher(p1)
    m = await rig.accept(expires_at=rig.clock.now() + timedelta(minutes=5))
    item = await rig.claim_one(m.id)
    rig.clock.advance(5 * 60)

    await d.handle(item)

    got = await rig.get(m.id)
    assert got.status is Status.EXPIRED
    assert p1.sent == []
    assert rig.due_at(m.id) is None
    assert rig.audit_events(m.id) == ["expired"]


async def test_handoff_check_verdict_moves_the_message_and_nothing_is_sent(rig: Rig) -> None:
    window = rig.clock.now() + timedelta(hours=5)
    seen: list[tuple[str, datetime]] = []

    async def quiet_hours(message: Message, now: datetime) -> Verdict | None:
        seen.append((message.id, now))
        return Verdict(Status.SCHEDULED, "quiet hours", due_at=window)

    p1 = ScriptedProvider("p1")
    d = rig.dispatcher(p1, checks=[quiet_hours])
    m = await rig.accept()

    await d.handle(await rig.claim_one(m.id))

    got = await rig.get(m.id)
    assert got.status is Status.SCHEDULED and got.scheduled_at == window
    assert got.events[-1].detail == "quiet hours"
    assert rig.due_at(m.id) == window
    assert seen == [(m.id, rig.clock.now())]
    assert p1.sent == []
    assert rig.audit_events(m.id) == ["scheduled"]


async def test_handoff_checks_run_in_order_until_one_decides(rig: Rig) -> None:
    order: list[str] = []

    def check(name: str, verdict: Verdict | None) -> HandoffCheck:
        async def run(message: Message, now: datetime) -> Verdict | None:
            order.append(name)
            return verdict

        return run

    p1 = ScriptedProvider("p1")
    d = rig.dispatcher(
        p1,
        checks=[
            check("caps", None),
            check("opt-out", Verdict(Status.CANCELLED, "opted out")),
            check("never", Verdict(Status.FAILED, "unreachable")),
        ],
    )
    m = await rig.accept()
    await d.handle(await rig.claim_one(m.id))
    assert (await rig.get(m.id)).status is Status.CANCELLED
    assert order == ["caps", "opt-out"]
    assert p1.sent == []


async def test_passing_checks_let_it_through(rig: Rig) -> None:
    async def fine(message: Message, now: datetime) -> Verdict | None:
        return None

    p1 = ScriptedProvider("p1", [sent()])
    d = rig.dispatcher(p1, checks=[fine])
    m = await rig.accept()
    await d.handle(await rig.claim_one(m.id))
    assert (await rig.get(m.id)).status is Status.SENT


async def test_no_route_fails_the_message(rig: Rig) -> None:
    p1 = ScriptedProvider("p1")
    d = rig.dispatcher(p1, routes=[RouteSettings(providers=("p1",), country="US")])
    m = await rig.accept()

    await d.handle(await rig.claim_one(m.id))

    got = await rig.get(m.id)
    assert got.status is Status.FAILED and got.events[-1].detail == "no_route"
    assert p1.sent == []


async def test_no_provider_on_the_route_can_carry_it(rig: Rig) -> None:
    p1 = ScriptedProvider("p1", max_segments=2)
    d = rig.dispatcher(p1)
    m = await rig.accept(segments=3)

    await d.handle(await rig.claim_one(m.id))

    got = await rig.get(m.id)
    assert got.status is Status.FAILED
    assert got.events[-1].detail == "no provider on the route can carry it"
    assert p1.sent == []


async def test_a_message_cancelled_after_the_claim_is_left_alone(rig: Rig) -> None:
    p1 = ScriptedProvider("p1")
    d = rig.dispatcher(p1)
    m = await rig.accept()
    item = await rig.claim_one(m.id)
    await rig.store.transition(m.id, Status.CANCELLED, rig.clock.now())

    await d.handle(item)

    got = await rig.get(m.id)
    assert got.status is Status.CANCELLED and len(got.events) == 2
    assert p1.sent == []


# -- audit before every call ------------------------------------------------------


async def test_every_attempt_is_audited_before_the_provider_is_called(rig: Rig) -> None:
    p1 = ScriptedProvider(
        "p1",
        [
            SendResult(Outcome.SWITCH_PROVIDER, code="x"),
            SendResult(Outcome.RETRY, code="busy"),
            ProviderError("reset"),
            SendResult(Outcome.SWITCH_PROVIDER, code="x"),
        ],
        statuses=[StatusResult(DeliveryState.NOT_FOUND)],
        status_query=True,
    )
    p2 = ScriptedProvider("p2", [SendResult(Outcome.RETRY, code="busy"), sent()])
    d = rig.dispatcher(p1, p2, max_attempts=10)
    m = await rig.accept()

    for _ in range(4):
        await d.handle(await rig.claim_one(m.id))
        if (await rig.get(m.id)).status is Status.SENT:
            break
        due = rig.due_at(m.id)
        assert due is not None
        rig.clock.set(due)

    got = await rig.get(m.id)
    assert got.status is Status.SENT
    assert (len(p1.checks), len(p2.checks)) == (4, 2) and got.attempts == 6
    assert rig.audit_events(m.id).count("sending") == 6
    assert_recorded_before_each_send(p1, p2)
    # and the check is not vacuous: each call saw exactly as many records as calls so far
    ordered = sorted([*p1.checks, *p2.checks], key=lambda c: c.attempts)
    assert [c.sending_records for c in ordered] == [1, 2, 3, 4, 5, 6]


# -- the worker loop ------------------------------------------------------------


async def test_loop_sends_what_is_due(rig: Rig) -> None:
    p1 = ScriptedProvider("p1", [sent(f"pm-{i}") for i in range(3)])
    d = rig.dispatcher(p1)
    messages = [await rig.accept() for _ in range(3)]
    d.start()
    try:
        d.notify()

        async def all_sent() -> bool:
            return all([(await rig.get(m.id)).status is Status.SENT for m in messages])

        await wait_for(all_sent, what="all three sent")
    finally:
        await d.stop(grace=5)
    assert sorted(s.message_id for s in p1.sent) == sorted(m.id for m in messages)
    assert d.in_flight == 0
    assert_recorded_before_each_send(p1)


async def test_stop_drains_sends_in_flight(rig: Rig) -> None:
    gate = Gate(sent("pm-drained"))
    p1 = ScriptedProvider("p1", [gate], log=[])
    d = rig.dispatcher(p1, provider_timeout=30.0)
    m = await rig.accept()
    d.start()
    d.notify()
    await asyncio.wait_for(gate.entered.wait(), 10)
    assert d.in_flight == 1

    stopping = asyncio.create_task(d.stop(grace=30))
    poller = d._poller
    assert poller is not None
    await wait_for(poller.done, what="the poller to stop")
    assert not stopping.done()  # stop() is waiting for the send in flight
    assert (await rig.get(m.id)).status is Status.SENDING

    gate.opened.set()
    await asyncio.wait_for(stopping, 10)

    got = await rig.get(m.id)
    assert got.status is Status.SENT and got.provider_message_id == "pm-drained"
    assert d.in_flight == 0
    assert len(p1.sent) == 1


async def test_stop_after_the_grace_leaves_the_attempt_to_be_resolved(rig: Rig) -> None:
    gate = Gate(sent())
    p1 = ScriptedProvider(
        "p1",
        [gate],
        statuses=[StatusResult(DeliveryState.ACCEPTED, "pm-late")],
        status_query=True,
    )
    d = rig.dispatcher(p1, provider_timeout=30.0)
    m = await rig.accept()
    d.start()
    d.notify()
    await asyncio.wait_for(gate.entered.wait(), 10)

    await d.stop(grace=0.01)  # the send is cut off

    assert d.in_flight == 0
    assert (await rig.get(m.id)).status is Status.SENDING
    # the next worker, after the lease, asks instead of resending
    rig.clock.advance(LEASE + 1)
    d2 = rig.dispatcher(p1)
    await d2.handle(await rig.claim_one(m.id))
    got = await rig.get(m.id)
    assert got.status is Status.SENT and got.provider_message_id == "pm-late"
    assert len(p1.sent) == 1


# -- erased borrowers (lendsms audit erase) ----------------------------------------


async def erase(rig: Rig, borrower: str = "b-1") -> None:
    await rig.store.erase_borrower(
        "acme", rig.store.index.borrower("acme", borrower), rig.clock.now()
    )


async def test_a_message_erased_after_its_claim_is_not_sent(rig: Rig) -> None:
    p1 = ScriptedProvider("p1")
    d = rig.dispatcher(p1)
    m = await rig.accept()
    item = await rig.claim_one(m.id)
    await erase(rig)  # cancels it: the queued message never reaches a provider

    await d.handle(item)

    got = await rig.get(m.id)
    assert got.status is Status.CANCELLED and got.events[-1].detail == "erased"
    assert got.erased and p1.sent == [] and rig.due_at(m.id) is None


async def test_an_interrupted_erased_message_is_cancelled_not_queried(rig: Rig) -> None:
    p1 = ScriptedProvider("p1", status_query=True)  # no scripts: any call fails the test
    d = rig.dispatcher(p1)
    m = await interrupted(rig)
    await erase(rig)  # a sending message keeps its status: a provider may have it

    await d.handle(await rig.claim_one(m.id))

    got = await rig.get(m.id)
    assert got.status is Status.CANCELLED and got.events[-1].detail == "erased"
    assert p1.sent == [] and p1.queries == []
    assert rig.audit_events(m.id) == ["cancelled"]


async def test_an_erase_during_a_failover_stops_the_next_hand_off(rig: Rig) -> None:
    gate = Gate(SendResult(Outcome.SWITCH_PROVIDER, code="no_capacity"))
    p1 = ScriptedProvider("p1", [gate])
    p2 = ScriptedProvider("p2", [sent()])
    d = rig.dispatcher(p1, p2, provider_timeout=30.0)
    m = await rig.accept()
    handling = asyncio.create_task(d.handle(await rig.claim_one(m.id)))
    other = await rig.accept(borrower_id="b-2")
    await asyncio.wait_for(gate.entered.wait(), 10)
    await erase(rig)
    gate.opened.set()
    await asyncio.wait_for(handling, 10)

    got = await rig.get(m.id)
    assert got.status is Status.CANCELLED and got.events[-1].detail == "erased"
    assert [s.message_id for s in p1.sent] == [m.id] and p2.sent == []
    assert rig.audit_events(m.id) == ["sending", "sending", "cancelled"]
    kept = await rig.get(other.id)
    assert kept.status is Status.QUEUED and kept.to == PHONE and kept.body == BODY
