"""The store contract on a real SQLite file: round trips, what reaches the
disk, the state machine, the queue and its leases, attempts, idempotency,
clients and keys, and a store that cannot serve."""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.crypto import BlindIndex, FieldCipher
from gateway.errors import StoreUnavailable, TransitionError
from gateway.models import (
    TERMINAL,
    TRANSITIONS,
    Action,
    ApiKey,
    Client,
    Event,
    Finding,
    Message,
    Status,
)
from gateway.store.base import ClaimState, IdempotencyRecord
from gateway.store.sqlite import SqliteStore

T0 = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
PHONE = "+8613812345678"
TEXT = "尊敬的张伟先生，您尾号4417的借款已逾期3天，请尽快还款。"
BODY = "尊敬的张**先生，您尾号****的借款已逾期3天，请尽快还款。"
BORROWER = "BRW-7731-secret-borrower"
REFERENCE = "LOAN-REF-99812-ZX"
CALLBACK = "https://lender.example/cb/receipts-4417"


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


_counter = iter(range(10**9))


def make_message(
    status: Status = Status.QUEUED, *, at: datetime = T0, **changes: object
) -> Message:
    n = next(_counter)
    message = Message(
        id=f"msg_{n:06d}{secrets.token_hex(4)}",
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
    return replace(message, **changes)


def due_for(status: Status, at: datetime = T0) -> datetime | None:
    if status is Status.QUEUED:
        return at
    if status is Status.SCHEDULED:
        return at + timedelta(hours=1)
    return None


async def put(store: SqliteStore, status: Status = Status.QUEUED, **changes: object) -> Message:
    m = make_message(status, **changes)
    await store.commit_acceptance(m, None, due_for(status))
    return m


async def seed(store: SqliteStore, status: Status) -> Message:
    """A message in ``status``, reached the way the service reaches it."""
    if status in (Status.QUEUED, Status.SCHEDULED, Status.HELD, Status.BLOCKED):
        return await put(store, status)
    if status is Status.REJECTED:
        held = await put(store, Status.HELD)
        return await store.transition(held.id, Status.REJECTED, T0)
    m = await put(store, Status.QUEUED)
    await store.begin_attempt(m.id, "p1", T0, "w1", T0 + timedelta(seconds=30))
    if status is Status.SENDING:
        return m
    if status in (Status.DELIVERED, Status.UNDELIVERED):
        await store.transition(m.id, Status.SENT, T0)
    await store.transition(m.id, status, T0)
    got = await store.get_message(m.id)
    assert got is not None and got.status is status
    return got


def exists(path: Path) -> bool:
    return path.exists()


def queue_rows(path: Path) -> dict[str, tuple[float, str | None, float]]:
    """The queue table as another process sees it."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT message_id, due_at, lease_owner, lease_until FROM queue")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}


# -- round trip -------------------------------------------------------------


async def test_commit_and_get_round_trip_every_field(store: SqliteStore) -> None:
    m = make_message(
        Status.SCHEDULED,
        events=(
            Event(at=T0, status=Status.SCHEDULED, detail="quiet hours until 08:00"),
            Event(at=T0 + timedelta(seconds=1), status=Status.SCHEDULED, detail=None),
        ),
    )
    await store.commit_acceptance(m, None, due_for(Status.SCHEDULED))

    got = await store.get_message(m.id)

    assert got == m
    # the fields dataclass equality covers, spelled out for the ones that matter
    assert got.to == PHONE and got.text == TEXT and got.body == BODY
    assert got.borrower_id == BORROWER and got.reference == REFERENCE
    assert got.callback_url == CALLBACK
    assert got.findings == m.findings
    assert got.findings[0].start == 5 and got.findings[1].end is None
    assert got.events == m.events
    assert got.created_at.tzinfo is not None
    assert got.scheduled_at == T0 + timedelta(hours=1)
    assert got.provider is None and got.provider_message_id is None and got.attempts == 0


async def test_optional_fields_round_trip_as_none(store: SqliteStore) -> None:
    m = make_message(reference=None, callback_url=None, findings=())
    await store.commit_acceptance(m, None, T0)
    got = await store.get_message(m.id)
    assert got == m
    assert got.reference is None and got.callback_url is None and got.findings == ()


async def test_unknown_message_is_none(store: SqliteStore) -> None:
    assert await store.get_message("msg_nope") is None


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


@pytest.mark.parametrize("old", list(Status), ids=str)
async def test_every_pair_of_statuses_follows_transitions(store: SqliteStore, old: Status) -> None:
    wrong: list[str] = []
    for new in Status:
        m = await seed(store, old)
        before = await store.get_message(m.id)
        assert before is not None
        # a same-status move (re-attempt, new due time) is fine for a live
        # message; a terminal status is final
        allowed = new in TRANSITIONS[old] or (new is old and old not in TERMINAL)
        at = T0 + timedelta(minutes=5)
        try:
            moved = await store.transition(m.id, new, at, detail=f"to {new}")
        except TransitionError:
            if allowed:
                wrong.append(f"{old}->{new} refused")
            after = await store.get_message(m.id)
            if after != before:  # refused: nothing changed, no event added
                wrong.append(f"{old}->{new} refused but changed the message")
            continue
        if not allowed:
            wrong.append(f"{old}->{new} allowed")
            continue
        if moved.status is not new or moved.updated_at != at:
            wrong.append(f"{old}->{new} returned {moved.status}")
        if moved.events[-1] != Event(at=at, status=new, detail=f"to {new}"):
            wrong.append(f"{old}->{new} recorded no event")
        if len(moved.events) != len(before.events) + 1:
            wrong.append(f"{old}->{new} event count")
    assert wrong == []


async def test_transitions_table_is_exercised() -> None:
    # the pair test above is only meaningful if the table has both kinds
    pairs = [(o, n) for o in Status for n in Status]
    allowed = [p for p in pairs if p[1] in TRANSITIONS[p[0]]]
    assert 0 < len(allowed) < len(pairs)
    assert all(TRANSITIONS[s] == frozenset() for s in TERMINAL)


async def test_expect_mismatch_raises_and_changes_nothing(store: SqliteStore) -> None:
    m = await put(store, Status.QUEUED)
    with pytest.raises(TransitionError):
        await store.transition(
            m.id, Status.CANCELLED, T0, expect=frozenset({Status.HELD, Status.SCHEDULED})
        )
    got = await store.get_message(m.id)
    assert got is not None and got.status is Status.QUEUED and len(got.events) == 1
    # the same move with a matching expectation goes through
    moved = await store.transition(
        m.id, Status.CANCELLED, T0, expect=frozenset({Status.QUEUED, Status.HELD})
    )
    assert moved.status is Status.CANCELLED


async def test_transition_of_unknown_message_is_key_error(store: SqliteStore) -> None:
    with pytest.raises(KeyError):
        await store.transition("msg_missing", Status.CANCELLED, T0)


async def test_transition_records_provider_and_provider_message_id(store: SqliteStore) -> None:
    m = await seed(store, Status.SENDING)
    sent = await store.transition(m.id, Status.SENT, T0, provider_message_id="pm-77")
    assert sent.provider == "p1" and sent.provider_message_id == "pm-77"
    again = await store.get_message(m.id)
    assert again is not None and again.provider_message_id == "pm-77"


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


async def test_claim_due_honours_due_at(store: SqliteStore) -> None:
    soon = await put(store, Status.QUEUED)
    later = make_message(Status.SCHEDULED)
    await store.commit_acceptance(later, None, T0 + timedelta(hours=1))
    lease = T0 + timedelta(hours=5)

    first = await store.claim_due(T0, 10, "w1", lease)
    assert [i.message_id for i in first] == [soon.id]
    assert first[0].status is Status.QUEUED and first[0].attempts == 0

    assert await store.claim_due(T0 + timedelta(minutes=59), 10, "w1", lease) == []
    second = await store.claim_due(T0 + timedelta(hours=1), 10, "w1", lease)
    assert [(i.message_id, i.status) for i in second] == [(later.id, Status.SCHEDULED)]


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


async def test_claim_due_respects_the_limit_and_takes_the_oldest_first(
    store: SqliteStore,
) -> None:
    ids = []
    for i in range(5):
        m = make_message(Status.QUEUED)
        await store.commit_acceptance(m, None, T0 - timedelta(seconds=10 - i))
        ids.append(m.id)
    lease = T0 + timedelta(seconds=30)

    first = await store.claim_due(T0, 2, "w1", lease)
    second = await store.claim_due(T0, 2, "w1", lease)
    third = await store.claim_due(T0, 2, "w1", lease)

    assert [i.message_id for i in first] == ids[:2]
    assert [i.message_id for i in second] == ids[2:4]
    assert [i.message_id for i in third] == ids[4:]
    assert await store.claim_due(T0, 2, "w1", lease) == []
    assert await store.queue_depth() == {"queued": 5}


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


@pytest.mark.parametrize("status", [Status.HELD, Status.CANCELLED, Status.SENT], ids=str)
async def test_begin_attempt_refuses_a_message_that_is_not_sendable(
    store: SqliteStore, status: Status
) -> None:
    m = await seed(store, status)
    with pytest.raises(TransitionError):
        await store.begin_attempt(m.id, "p1", T0, "w1", T0 + timedelta(seconds=30))
    got = await store.get_message(m.id)
    assert got is not None and got.status is status and got.attempts == m.attempts


# -- idempotency ------------------------------------------------------------


async def test_idempotency_claim_in_flight_reclaim_and_done(store: SqliteStore) -> None:
    first = await store.claim_idempotency("acme", "k1", "hash-a", T0, 30)
    assert first.state is ClaimState.CLAIMED and first.request_hash == "hash-a"

    dup = await store.claim_idempotency("acme", "k1", "hash-b", T0 + timedelta(seconds=29), 30)
    assert dup.state is ClaimState.IN_FLIGHT and dup.request_hash == "hash-a"
    # another client's key of the same name is independent
    other = await store.claim_idempotency("other", "k1", "hash-x", T0, 30)
    assert other.state is ClaimState.CLAIMED

    # the first claimer died: once its lease passes the key can be claimed again
    t2 = T0 + timedelta(seconds=31)
    retaken = await store.claim_idempotency("acme", "k1", "hash-b", t2, 30)
    assert retaken.state is ClaimState.CLAIMED and retaken.request_hash == "hash-b"

    m = make_message()
    response = {"id": m.id, "status": "queued", "to_masked": m.to_masked, "body": BODY,
                "findings": [{"rule": "r1"}]}  # fmt: skip
    expires = t2 + timedelta(days=1)
    await store.commit_acceptance(m, IdempotencyRecord("k1", "hash-b", 202, response, expires), T0)

    done = await store.claim_idempotency("acme", "k1", "hash-c", t2 + timedelta(seconds=1), 30)
    assert done.state is ClaimState.DONE
    assert done.request_hash == "hash-b" and done.status_code == 202
    assert done.response == response

    # once the record expires, the key is free again
    gone = await store.claim_idempotency("acme", "k1", "hash-d", expires, 30)
    assert gone.state is ClaimState.CLAIMED and gone.request_hash == "hash-d"


async def test_release_idempotency_frees_a_claim_but_not_an_answer(store: SqliteStore) -> None:
    await store.claim_idempotency("acme", "k2", "hash-a", T0, 30)
    await store.release_idempotency("acme", "k2")
    again = await store.claim_idempotency("acme", "k2", "hash-b", T0, 30)
    assert again.state is ClaimState.CLAIMED and again.request_hash == "hash-b"

    m = make_message()
    record = IdempotencyRecord("k2", "hash-b", 202, {"id": m.id}, T0 + timedelta(days=1))
    await store.commit_acceptance(m, record, T0)
    await store.release_idempotency("acme", "k2")
    done = await store.claim_idempotency("acme", "k2", "hash-b", T0, 30)
    assert done.state is ClaimState.DONE and done.response == {"id": m.id}


# -- clients and keys -------------------------------------------------------


async def test_clients_put_update_get_list(store: SqliteStore) -> None:
    zeta = Client(id="zeta", policy="us-fdcpa", signatures=("【安心】",), rate=5.0,
                  link_domains=("a.example",))  # fmt: skip
    await store.put_client(zeta, webhook_secret="whsec-1", create=True)
    await store.put_client(Client(id="acme", policy="cn-collection"), webhook_secret=None,
                           create=True)  # fmt: skip
    with pytest.raises(ValueError, match="already exists"):
        await store.put_client(zeta, webhook_secret=None, create=True)

    got = await store.get_client("zeta")
    assert got == replace(zeta, has_webhook_secret=True)
    assert [c.id for c in await store.list_clients()] == ["acme", "zeta"]

    changed = replace(zeta, policy="cn-collection", rate=None, signatures=())
    await store.put_client(changed, webhook_secret=None, create=False)
    got = await store.get_client("zeta")
    assert got == replace(changed, has_webhook_secret=True)  # the secret was kept
    acme = await store.get_client("acme")
    assert acme is not None and acme.has_webhook_secret is False

    with pytest.raises(ValueError, match="no client"):
        await store.put_client(Client(id="ghost", policy="x"), webhook_secret=None, create=False)
    assert await store.get_client("ghost") is None


async def test_keys_add_get_list_revoke(store: SqliteStore) -> None:
    await store.put_client(Client(id="acme", policy="cn-collection"), webhook_secret=None,
                           create=True)  # fmt: skip
    k1 = ApiKey("key_1", "acme", frozenset({"send", "review"}), T0)
    k2 = ApiKey("key_2", "acme", frozenset({"admin"}), T0 + timedelta(seconds=1))
    await store.add_key(k2, "hash-2")
    await store.add_key(k1, "hash-1")
    with pytest.raises(ValueError, match="no client"):
        await store.add_key(ApiKey("key_3", "ghost", frozenset({"send"}), T0), "hash-3")

    stored = await store.get_key("key_1")
    assert stored is not None and stored.key == k1 and stored.secret_hash == "hash-1"
    assert await store.get_key("key_3") is None
    assert [k.id for k in await store.list_keys()] == ["key_1", "key_2"]

    when = T0 + timedelta(minutes=1)
    assert await store.revoke_key("key_1", when) is True
    assert await store.revoke_key("key_1", when + timedelta(minutes=1)) is False
    assert await store.revoke_key("key_missing", when) is False
    revoked = await store.get_key("key_1")
    assert revoked is not None and revoked.key.revoked_at == when  # the first revocation
    listed = {k.id: k for k in await store.list_keys()}
    assert listed["key_1"].revoked_at == when and listed["key_2"].revoked_at is None


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
