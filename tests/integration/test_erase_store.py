"""``SqliteStore.erase_borrower``: one borrower's messages and stored
idempotency answers read ``[erased]``, those not yet sent are cancelled, the
old ciphertext leaves the database files, another borrower is untouched. The
backend-neutral erase contract (erasing again, an unknown borrower) runs on
SQLite and Redis in tests/contract/test_erase.py."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.accept import accepted_body
from gateway.crypto import BlindIndex, FieldCipher
from gateway.models import ERASED, Event, Message, Status
from gateway.store.base import ClaimState, IdempotencyRecord
from gateway.store.sqlite import SqliteStore

T0 = datetime(2025, 6, 2, 3, 0, tzinfo=UTC)
PHONE = "+8613812345678"
BODY = "【安心消费金融】您本期应还1,086.40元，最后还款日12月8日。"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(
        tmp_path / "lendsms.db",
        FieldCipher(secrets.token_bytes(32)),
        BlindIndex(secrets.token_bytes(32)),
    )
    await s.open()
    yield s
    await s.close()


async def accept(
    store: SqliteStore, borrower: str, status: Status = Status.QUEUED, **changes: object
) -> Message:
    m = Message(
        id=f"msg_{secrets.token_hex(8)}",
        client_id="acme",
        to=PHONE,
        to_masked="+86138****5678",
        region="CN",
        borrower_id=borrower,
        purpose="repayment_reminder",
        recipient_role="borrower",
        text=BODY,
        body=BODY,
        segments=1,
        encoding="UCS-2",
        findings=(),
        status=status,
        created_at=T0,
        updated_at=T0,
        scheduled_at=None,
        expires_at=T0 + timedelta(days=1),
        reference="loan-77812",
        events=(Event(at=T0, status=status, detail="accepted"),),
    )
    m = replace(m, **changes)  # type: ignore[arg-type]
    idem = IdempotencyRecord(f"key-{m.id}", "hash", 202, accepted_body(m), T0 + timedelta(days=1))
    due = T0 if status in (Status.QUEUED, Status.SCHEDULED) else None
    await store.commit_acceptance(m, idem, due)
    return m


def sealed_tokens(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        tokens = {r[0] for r in db.execute("SELECT sealed FROM messages")}
        tokens |= {r[0] for r in db.execute("SELECT response FROM idempotency")}
    return tokens


def file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


async def test_erase_scrubs_one_borrower_only(store: SqliteStore) -> None:
    queued = await accept(store, "B-gone")
    held = await accept(store, "B-gone", Status.HELD)
    template = await accept(
        store, "B-gone", template="repayment_due", params={"amount": "1086.40"},
        callback_url="https://hooks.example.com/sms",
    )  # fmt: skip
    sending = await accept(store, "B-gone")
    await store.begin_attempt(sending.id, "p1", T0, "w", T0 + timedelta(seconds=30))
    kept = await accept(store, "B-keep")
    before = {
        m.id: t
        for m, t in zip([queued, held, template, sending], await tokens_of(store), strict=True)
    }

    raw = file_bytes(store.path)
    assert all(part.encode() in raw for token in before.values() for part in token)

    done = await store.erase_borrower("acme", store.index.borrower("acme", "B-gone"), T0)

    assert sorted(done.messages) == sorted(before)
    assert sorted(done.cancelled) == sorted([queued.id, held.id, template.id])
    assert done.answers == 4 and done.flushed
    for m in (queued, held, template, sending):
        got = await store.get_message(m.id)
        assert got is not None and got.erased
        assert (got.to, got.to_masked, got.text, got.body, got.borrower_id, got.reference) == (
            (ERASED,) * 6
        )
    got_template = await store.get_message(template.id)
    assert got_template is not None
    assert got_template.template == "repayment_due"
    assert got_template.params == {"amount": ERASED}
    assert got_template.callback_url == ERASED
    assert (await store.get_message(queued.id)).callback_url is None  # type: ignore[union-attr]
    for m in (queued, held, template):
        got = await store.get_message(m.id)
        assert got is not None and got.status is Status.CANCELLED
        assert got.events[-1].detail == "erased"
    still = await store.get_message(sending.id)
    assert still is not None and still.status is Status.SENDING  # a provider may have it
    assert await store.queue_depth() == {"sending": 1, "queued": 1}  # the kept one

    other = await store.get_message(kept.id)
    assert other is not None and not other.erased
    assert (other.to, other.body, other.borrower_id, other.status) == (
        PHONE, BODY, "B-keep", Status.QUEUED,
    )  # fmt: skip

    claim = await store.claim_idempotency("acme", f"key-{queued.id}", "hash", T0, 30)
    assert claim.state is ClaimState.DONE and claim.response is not None
    assert claim.response["to_masked"] == ERASED and claim.response["body"] == ERASED
    assert claim.response["id"] == queued.id
    claim = await store.claim_idempotency("acme", f"key-{kept.id}", "hash", T0, 30)
    assert claim.response is not None and claim.response["body"] == BODY

    raw = file_bytes(store.path)
    for token in before.values():
        for part in token:
            assert part.encode() not in raw, "old ciphertext is still in the database files"


async def tokens_of(store: SqliteStore) -> list[tuple[str, str]]:
    """(sealed fields, idempotency answer) of each message, in acceptance order."""

    def op(db: sqlite3.Connection) -> list[tuple[str, str]]:
        rows = db.execute(
            "SELECT m.sealed, i.response FROM messages m JOIN idempotency i"
            " ON i.key = 'key-' || m.id ORDER BY m.rowid"
        ).fetchall()
        return [(str(a), str(b)) for a, b in rows]

    return (await store._run(op))[:4]
