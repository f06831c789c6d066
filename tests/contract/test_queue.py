"""The store contract for dispatch: claiming due messages under leases, the
takeover of a dead worker's lease, attempts, and the queue metrics — on SQLite
and on Redis. Leases and due times are the caller's clock on both."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from gateway.errors import TransitionError
from gateway.models import Event, Status
from gateway.store.base import Store
from tests.contract.helpers import LEASE, T0, make_message, put, seed


async def test_claim_due_honours_due_at(store: Store) -> None:
    soon = await put(store, Status.QUEUED)
    later = make_message(Status.SCHEDULED)
    await store.commit_acceptance(later, None, T0 + timedelta(hours=1))
    lease = T0 + timedelta(hours=5)

    first = await store.claim_due(T0, 10, "w1", lease)
    assert [(i.message_id, i.status, i.attempts) for i in first] == [(soon.id, Status.QUEUED, 0)]
    assert await store.claim_due(T0 + timedelta(minutes=59), 10, "w1", lease) == []
    second = await store.claim_due(T0 + timedelta(hours=1), 10, "w1", lease)
    assert [(i.message_id, i.status) for i in second] == [(later.id, Status.SCHEDULED)]


async def test_a_leased_item_is_not_claimed_again_until_the_lease_passes(store: Store) -> None:
    m = await put(store, Status.QUEUED)
    lease = T0 + LEASE
    assert [i.message_id for i in await store.claim_due(T0, 10, "w1", lease)] == [m.id]
    assert await store.claim_due(T0 + timedelta(seconds=1), 10, "w2", lease) == []
    assert await store.claim_due(lease, 10, "w2", lease + LEASE) == []
    after = lease + timedelta(milliseconds=1)
    again = await store.claim_due(after, 10, "w2", after + LEASE)
    assert [i.message_id for i in again] == [m.id]
    assert await store.claim_due(after, 10, "w1", after + LEASE) == []  # w2 holds it now


async def test_claim_due_respects_the_limit_and_takes_the_oldest_first(store: Store) -> None:
    ids = []
    for i in range(7):
        m = make_message(Status.QUEUED)
        await store.commit_acceptance(m, None, T0 - timedelta(seconds=10 - i))
        ids.append(m.id)
    lease = T0 + LEASE

    batches = [await store.claim_due(T0, 2, "w1", lease) for _ in range(4)]

    assert [[i.message_id for i in b] for b in batches] == [ids[:2], ids[2:4], ids[4:6], ids[6:]]
    assert await store.claim_due(T0, 2, "w1", lease) == []
    assert await store.claim_due(T0, 0, "w1", lease) == []
    assert await store.queue_depth() == {"queued": 7}
    assert await store.oldest_due(T0) == T0 - timedelta(seconds=10)


async def test_begin_attempt_counts_attempts_and_records_the_provider(store: Store) -> None:
    m = await put(store, Status.QUEUED)
    lease = T0 + LEASE
    assert await store.last_attempt_provider(m.id) is None
    assert await store.attempts_by_provider(m.id) == {}

    one = await store.begin_attempt(m.id, "aliyun", T0, "w1", lease)
    assert one.status is Status.SENDING and one.attempts == 1 and one.provider == "aliyun"
    assert one.events[-1] == Event(T0, Status.SENDING, "attempt 1 via aliyun")
    assert await store.last_attempt_provider(m.id) == "aliyun"

    t1 = T0 + timedelta(seconds=1)
    two = await store.begin_attempt(m.id, "twilio", t1, "w1", lease + timedelta(seconds=1))
    assert two.attempts == 2 and two.provider == "twilio"
    assert await store.last_attempt_provider(m.id) == "twilio"
    assert await store.attempts_by_provider(m.id) == {"aliyun": 1, "twilio": 1}
    stored = await store.get_message(m.id)
    assert stored == two
    assert await store.oldest_due(t1) is None  # sending is not waiting
    assert await store.queue_depth() == {"sending": 1}


async def test_a_dead_workers_sending_message_comes_back_as_sending(store: Store) -> None:
    """Invariant 9: the attempt was recorded, the worker died; once its lease
    passes another worker gets the message with status sending (it asks the
    provider before anything is resent), and the begin_attempt lease counts."""
    m = await put(store, Status.QUEUED)
    claim_lease = T0 + timedelta(seconds=5)
    assert len(await store.claim_due(T0, 10, "w1", claim_lease)) == 1
    attempt_lease = T0 + timedelta(seconds=60)
    await store.begin_attempt(m.id, "p1", T0, "w1", attempt_lease)
    # the attempt extended the lease past the claim's
    assert await store.claim_due(claim_lease + timedelta(seconds=1), 10, "w2", T0 + LEASE) == []
    later = attempt_lease + timedelta(seconds=1)
    items = await store.claim_due(later, 10, "w2", later + LEASE)
    assert [(i.message_id, i.status, i.attempts) for i in items] == [(m.id, Status.SENDING, 1)]


@pytest.mark.parametrize("status", [Status.HELD, Status.CANCELLED, Status.SENT], ids=str)
async def test_begin_attempt_refuses_a_message_that_is_not_sendable(
    store: Store, status: Status
) -> None:
    m = await seed(store, status)
    with pytest.raises(TransitionError):
        await store.begin_attempt(m.id, "p1", T0, "w1", T0 + LEASE)
    got = await store.get_message(m.id)
    assert got is not None and got.status is status and got.attempts == m.attempts


async def test_two_owners_claiming_at_once_get_disjoint_sets(store: Store) -> None:
    ids = set()
    for _ in range(30):
        ids.add((await put(store, Status.QUEUED)).id)
    lease = T0 + LEASE
    results = await asyncio.gather(*(store.claim_due(T0, 8, f"w{n}", lease) for n in range(6)))
    claimed = [i.message_id for batch in results for i in batch]
    assert len(claimed) == len(set(claimed))  # nobody got a message twice
    assert set(claimed) <= ids
    rest = await store.claim_due(T0, 100, "w9", lease)
    assert set(claimed) | {i.message_id for i in rest} == ids
    assert not set(claimed) & {i.message_id for i in rest}
