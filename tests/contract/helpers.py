"""Messages for the contract tests, and ways to bring one into a status."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gateway.models import Action, Event, Finding, Message, Status
from gateway.store.base import Store

T0 = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
PHONE = "+8613812345678"
TEXT = "尊敬的张伟先生，您尾号4417的借款已逾期3天，请尽快还款。"
BODY = "尊敬的张**先生，您尾号****的借款已逾期3天，请尽快还款。"
BORROWER = "BRW-7731-secret-borrower"
REFERENCE = "LOAN-REF-99812-ZX"
CALLBACK = "https://lender.example/cb/receipts-4417"
LEASE = timedelta(seconds=30)


def make_message(
    status: Status = Status.QUEUED, *, at: datetime = T0, **changes: object
) -> Message:
    message = Message(
        id=f"msg_{int(at.timestamp() * 1000):012x}{secrets.token_hex(8)}",
        client_id="acme",
        to=PHONE,
        to_masked="+86138****5678",
        region="CN",
        borrower_id=BORROWER,
        purpose="overdue_notice",
        recipient_role="borrower",
        text=TEXT,
        body=BODY,
        segments=1,
        encoding="UCS-2",
        findings=(
            Finding("pii", "pii.cn_name", "name", Action.MASK, 5, 7),
            Finding("content", "cn.threat.family", "threat", Action.NOTE),
        ),
        status=status,
        created_at=at,
        updated_at=at,
        scheduled_at=at + timedelta(hours=1) if status is Status.SCHEDULED else None,
        expires_at=at + timedelta(days=1),
        reference=REFERENCE,
        callback_url=CALLBACK,
        events=(Event(at=at, status=status, detail="accepted"),),
    )
    return replace(message, **changes)  # type: ignore[arg-type]


def due_for(status: Status, at: datetime = T0) -> datetime | None:
    if status is Status.QUEUED:
        return at
    if status is Status.SCHEDULED:
        return at + timedelta(hours=1)
    return None


async def put(store: Store, status: Status = Status.QUEUED, **changes: object) -> Message:
    m = make_message(status, **changes)  # type: ignore[arg-type]
    await store.commit_acceptance(m, None, due_for(status))
    return m


async def seed(store: Store, status: Status) -> Message:
    """A message in ``status``, reached the way the service reaches it."""
    if status in (Status.QUEUED, Status.SCHEDULED, Status.HELD, Status.BLOCKED):
        return await put(store, status)
    if status is Status.REJECTED:
        held = await put(store, Status.HELD)
        return await store.transition(held.id, Status.REJECTED, T0)
    m = await put(store, Status.QUEUED)
    await store.begin_attempt(m.id, "p1", T0, "w1", T0 + LEASE)
    if status is Status.SENDING:
        got = await store.get_message(m.id)
        assert got is not None
        return got
    if status in (Status.DELIVERED, Status.UNDELIVERED):
        await store.transition(m.id, Status.SENT, T0)
    await store.transition(m.id, status, T0)
    got = await store.get_message(m.id)
    assert got is not None and got.status is status
    return got
