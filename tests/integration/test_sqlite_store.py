"""The embedded store on a real SQLite file: what reaches the disk, the queue
table as another process sees it, and a store that cannot serve. The
backend-neutral contract (round trips, the state machine, claiming, attempts,
idempotency, clients and keys) runs on SQLite and Redis in tests/contract."""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.crypto import BlindIndex, FieldCipher
from gateway.errors import StoreUnavailable
from gateway.models import TERMINAL, TRANSITIONS, Client, Event, Status
from gateway.store.base import IdempotencyRecord
from gateway.store.sqlite import SqliteStore
from tests.contract.helpers import (
    BODY,
    BORROWER,
    CALLBACK,
    PHONE,
    REFERENCE,
    T0,
    TEXT,
    make_message,
    put,
    seed,
)


def open_raw_store(path: Path) -> SqliteStore:
    """As gateway.app.open_store builds it, with fresh random 32-byte keys."""
    return SqliteStore(
        path, FieldCipher(secrets.token_bytes(32)), BlindIndex(secrets.token_bytes(32))
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "lendsms.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStore]:
    s = open_raw_store(db_path)
    await s.open()
    yield s
    await s.close()


def exists(path: Path) -> bool:
    return path.exists()


def queue_rows(path: Path) -> dict[str, tuple[float, str | None, float]]:
    """The queue table as another process sees it."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT message_id, due_at, lease_owner, lease_until FROM queue")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}


# -- what reaches the disk -------------------------------------------------


async def test_personal_fields_never_reach_the_file_in_plaintext(
    store: SqliteStore, db_path: Path
) -> None:
    m = make_message()
    await store.commit_acceptance(
        m,
        IdempotencyRecord("idem-1", "h" * 64, 202, {"id": m.id, "to_masked": m.to_masked,
                                                     "body": BODY}, T0 + timedelta(days=1)),
        T0,
    )  # fmt: skip
    await store.transition(m.id, Status.SCHEDULED, T0, due_at=T0 + timedelta(hours=2))
    await store.put_client(
        Client(id="acme", policy="cn-collection"), webhook_secret="whsec-TOPSECRET", create=True
    )

    files = [p for p in (db_path, Path(f"{db_path}-wal")) if p.exists()]
    raw = b"".join(p.read_bytes() for p in files)

    assert m.id.encode() in raw  # the search works: the message really is in these files
    for secret in (
        PHONE,
        PHONE.lstrip("+"),
        "13812345678",
        "+86138****5678",
        TEXT,
        BODY,
        "逾期3天",
        BORROWER,
        REFERENCE,
        CALLBACK,
        "whsec-TOPSECRET",
    ):
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            assert secret.encode(encoding) not in raw, (secret[:6], encoding)


# -- the state machine ------------------------------------------------------


async def test_transitions_table_is_exercised() -> None:
    # the pair test (tests/contract/test_messages.py) is only meaningful if the
    # table has both kinds
    pairs = [(o, n) for o in Status for n in Status]
    allowed = [p for p in pairs if p[1] in TRANSITIONS[p[0]]]
    assert 0 < len(allowed) < len(pairs)
    assert all(TRANSITIONS[s] == frozenset() for s in TERMINAL)


# -- the queue table as another process sees it -----------------------------


@pytest.mark.parametrize("terminal", sorted(TERMINAL - {Status.BLOCKED, Status.REJECTED}), ids=str)
async def test_terminal_status_drops_the_queue_entry(
    store: SqliteStore, db_path: Path, terminal: Status
) -> None:
    m = await seed(store, Status.SENDING)
    assert m.id in queue_rows(db_path)
    if terminal in (Status.DELIVERED, Status.UNDELIVERED):
        await store.transition(m.id, Status.SENT, T0)
    await store.transition(m.id, terminal, T0)
    assert m.id not in queue_rows(db_path)
    assert await store.claim_due(T0 + timedelta(days=9), 10, "w", T0 + timedelta(days=10)) == []
    assert await store.queue_depth() == {}


async def test_held_rejected_and_sent_are_not_queued(store: SqliteStore, db_path: Path) -> None:
    held = await put(store, Status.HELD)
    assert held.id not in queue_rows(db_path)  # a held message waits for a reviewer
    released = await store.transition(held.id, Status.QUEUED, T0, due_at=T0)
    assert queue_rows(db_path)[released.id][0] == T0.timestamp()

    rejected = await seed(store, Status.REJECTED)
    assert rejected.id not in queue_rows(db_path)

    sending = await seed(store, Status.SENDING)
    assert sending.id in queue_rows(db_path)  # sending keeps its (leased) entry
    await store.transition(sending.id, Status.SENT, T0)
    assert sending.id not in queue_rows(db_path)


async def test_queued_and_scheduled_keep_the_entry_with_due_at(
    store: SqliteStore, db_path: Path
) -> None:
    m = await seed(store, Status.SENDING)
    retry_at = T0 + timedelta(seconds=42)
    await store.transition(m.id, Status.QUEUED, T0, due_at=retry_at)
    due, owner, lease = queue_rows(db_path)[m.id]
    assert due == retry_at.timestamp() and owner is None and lease == 0

    window = T0 + timedelta(hours=8)
    scheduled = await store.transition(m.id, Status.SCHEDULED, T0, due_at=window)
    assert queue_rows(db_path)[m.id][0] == window.timestamp()
    assert scheduled.scheduled_at == window

    # without a due_at a requeue is due at once
    later = T0 + timedelta(minutes=3)
    await store.transition(m.id, Status.QUEUED, later)
    assert queue_rows(db_path)[m.id][0] == later.timestamp()
    assert await store.queue_depth() == {"queued": 1}


async def test_acceptance_queues_only_with_a_due_time(store: SqliteStore, db_path: Path) -> None:
    queued = await put(store, Status.QUEUED)
    held = await put(store, Status.HELD)
    blocked = await put(store, Status.BLOCKED)
    rows = queue_rows(db_path)
    assert rows[queued.id][0] == T0.timestamp()
    assert held.id not in rows and blocked.id not in rows


# -- claiming and leases ----------------------------------------------------


async def test_a_leased_item_is_not_claimed_again_until_the_lease_passes(
    store: SqliteStore, db_path: Path
) -> None:
    m = await put(store, Status.QUEUED)
    lease = T0 + timedelta(seconds=30)
    assert [i.message_id for i in await store.claim_due(T0, 10, "w1", lease)] == [m.id]
    assert queue_rows(db_path)[m.id][1:] == ("w1", lease.timestamp())

    assert await store.claim_due(T0 + timedelta(seconds=1), 10, "w2", lease) == []
    assert await store.claim_due(lease, 10, "w2", lease + timedelta(seconds=30)) == []
    after = lease + timedelta(milliseconds=1)
    again = await store.claim_due(after, 10, "w2", after + timedelta(seconds=30))
    assert [i.message_id for i in again] == [m.id]
    assert queue_rows(db_path)[m.id][1] == "w2"


async def test_begin_attempt_counts_attempts_and_records_the_provider(
    store: SqliteStore, db_path: Path
) -> None:
    m = await put(store, Status.QUEUED)
    lease = T0 + timedelta(seconds=30)
    assert await store.last_attempt_provider(m.id) is None

    one = await store.begin_attempt(m.id, "aliyun", T0, "w1", lease)
    assert one.status is Status.SENDING and one.attempts == 1 and one.provider == "aliyun"
    assert one.events[-1] == Event(T0, Status.SENDING, "attempt 1 via aliyun")
    assert await store.last_attempt_provider(m.id) == "aliyun"
    assert queue_rows(db_path)[m.id][1:] == ("w1", lease.timestamp())

    t1 = T0 + timedelta(seconds=1)
    two = await store.begin_attempt(m.id, "twilio", t1, "w1", lease + timedelta(seconds=1))
    assert two.attempts == 2 and two.provider == "twilio"
    assert await store.last_attempt_provider(m.id) == "twilio"
    stored = await store.get_message(m.id)
    assert stored is not None and stored.attempts == 2 and stored.provider == "twilio"

    # the sending message is leased: not claimable until the lease passes
    assert await store.claim_due(t1, 10, "w2", t1 + timedelta(seconds=30)) == []
    later = lease + timedelta(seconds=2)
    items = await store.claim_due(later, 10, "w2", later + timedelta(seconds=30))
    assert [(i.message_id, i.status, i.attempts) for i in items] == [(m.id, Status.SENDING, 2)]
    assert await store.queue_depth() == {"sending": 1}


# -- a store that cannot serve ----------------------------------------------


async def test_a_closed_store_raises_store_unavailable(db_path: Path) -> None:
    s = open_raw_store(db_path)
    await s.open()
    m = await put(s, Status.QUEUED)
    await s.ping()
    await s.close()

    with pytest.raises(StoreUnavailable):
        await s.ping()
    with pytest.raises(StoreUnavailable):
        await s.get_message(m.id)
    with pytest.raises(StoreUnavailable):
        await s.claim_due(T0, 1, "w1", T0)
    with pytest.raises(StoreUnavailable):
        await s.commit_acceptance(make_message(), None, T0)
    await s.close()  # closing twice is harmless


async def test_a_closed_connection_raises_store_unavailable(store: SqliteStore) -> None:
    m = await put(store, Status.QUEUED)
    db = store._db
    assert db is not None
    db.close()  # the database goes away underneath the store
    with pytest.raises(StoreUnavailable):
        await store.get_message(m.id)
    with pytest.raises(StoreUnavailable):
        await store.transition(m.id, Status.CANCELLED, T0)


async def test_a_store_never_opened_raises_store_unavailable(db_path: Path) -> None:
    s = open_raw_store(db_path)
    try:
        with pytest.raises(StoreUnavailable):
            await s.ping()
        with pytest.raises(StoreUnavailable):
            await s.get_client("acme")
    finally:
        await s.close()
    assert not exists(db_path)  # nothing was created
