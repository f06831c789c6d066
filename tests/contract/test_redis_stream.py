"""The Redis send queue as Redis sees it (gateway/store/redis_stream.py): a
Stream per shard read by the consumer group ``dispatch``, the consumer being
the dispatcher's owner. Who holds which pending entry, that a dead consumer's
entries move exactly when its lease passes on the caller's clock, and that a
message leaving the queue leaves no entry behind."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from gateway.models import Status
from gateway.store.redis_store import RedisStore
from gateway.store.redis_stream import GROUP
from tests.contract.conftest import REDIS_URL, delete_prefix, new_redis_store, require_redis
from tests.contract.helpers import LEASE, T0, make_message, put


@pytest.fixture
async def redis_store() -> AsyncIterator[RedisStore]:
    await require_redis()
    prefix = f"lendsms-test-{secrets.token_hex(6)}"
    store = new_redis_store(prefix, shards=4)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
        await delete_prefix(REDIS_URL, prefix)


@dataclass(frozen=True)
class Queue:
    entries: int  # XLEN over all shards
    pending: int  # entries delivered to a consumer and not acknowledged
    leases: int  # the pending-lease index
    later: int  # waiting in the later set


async def queue(store: RedisStore) -> Queue:
    entries = pending = leases = later = 0
    for tag in store.keys.tags():
        q = f"{tag}:q"
        leases += await store.redis.zcard(f"{tag}:pl")
        later += await store.redis.zcard(f"{tag}:z")
        if not await store.redis.exists(q):
            continue
        entries += await store.redis.xlen(q)
        pending += (await store.redis.xpending(q, GROUP))["pending"]
    return Queue(entries, pending, leases, later)


async def holder(store: RedisStore, message_id: str) -> str | None:
    """The consumer whose pending entry the message's is (None: not pending)."""
    tag = store.keys.message_tag(message_id)
    sid = await store.redis.hget(store.keys.message(message_id), "sid")
    assert sid is not None
    rows = await store.redis.xpending_range(f"{tag}:q", GROUP, sid, sid, 1)
    return None if not rows else str(rows[0]["consumer"])


async def test_two_owners_claiming_concurrently_get_disjoint_entries(
    redis_store: RedisStore,
) -> None:
    ids = {(await put(redis_store, Status.QUEUED)).id for _ in range(40)}
    lease = T0 + LEASE
    got: dict[str, list[str]] = {"w1": [], "w2": []}
    for _ in range(3):  # the same shards, the same instant, on two connections
        one, two = await asyncio.gather(
            redis_store.claim_due(T0, 6, "w1", lease), redis_store.claim_due(T0, 6, "w2", lease)
        )
        assert len(one) <= 6 and len(two) <= 6
        got["w1"] += [i.message_id for i in one]
        got["w2"] += [i.message_id for i in two]
    both = got["w1"] + got["w2"]
    assert got["w1"] and got["w2"] and len(both) == len(set(both)) >= 18
    assert set(both) <= ids
    for owner, claimed in got.items():
        assert {await holder(redis_store, mid) for mid in claimed} == {owner}
    rest = [i.message_id for i in await redis_store.claim_due(T0, 100, "w3", lease)]
    assert sorted(rest + got["w1"] + got["w2"]) == sorted(ids)
    assert await queue(redis_store) == Queue(entries=40, pending=40, leases=40, later=0)


async def test_a_dead_owner_loses_its_entries_exactly_when_its_lease_passes(
    redis_store: RedisStore,
) -> None:
    ids = sorted([(await put(redis_store, Status.QUEUED)).id for _ in range(6)])
    lease = T0 + LEASE
    assert sorted(i.message_id for i in await redis_store.claim_due(T0, 10, "dead", lease)) == ids
    # the dead owner never acks; at its lease's last instant the entries are still its
    assert await redis_store.claim_due(lease, 10, "w2", lease + LEASE) == []
    assert {await holder(redis_store, mid) for mid in ids} == {"dead"}

    after = lease + timedelta(milliseconds=1)
    taken = await redis_store.claim_due(after, 10, "w2", after + LEASE)
    assert sorted(i.message_id for i in taken) == ids
    assert {(i.status, i.attempts) for i in taken} == {(Status.QUEUED, 0)}
    assert {await holder(redis_store, mid) for mid in ids} == {"w2"}
    assert await redis_store.claim_due(after, 10, "w3", after + LEASE) == []  # w2's now
    for tag in redis_store.keys.tags():  # the dead consumer is forgotten with its last entry
        if await redis_store.redis.exists(f"{tag}:q"):
            consumers = await redis_store.redis.xinfo_consumers(f"{tag}:q", GROUP)
            assert "dead" not in {str(c["name"]) for c in consumers}
    assert await queue(redis_store) == Queue(entries=6, pending=6, leases=6, later=0)


async def test_a_sent_batch_leaves_no_stream_entry_and_no_pending_entry(
    redis_store: RedisStore,
) -> None:
    for _ in range(12):
        await put(redis_store, Status.QUEUED)
    later = make_message(Status.SCHEDULED)
    await redis_store.commit_acceptance(later, None, T0 + timedelta(hours=1))
    assert await queue(redis_store) == Queue(entries=12, pending=0, leases=0, later=1)

    items = await redis_store.claim_due(T0, 100, "w1", T0 + LEASE)
    assert len(items) == 12
    assert await queue(redis_store) == Queue(entries=12, pending=12, leases=12, later=1)
    for item in items:
        await redis_store.begin_attempt(item.message_id, "p1", T0, "w1", T0 + LEASE)
        await redis_store.transition(item.message_id, Status.SENT, T0)
    assert await queue(redis_store) == Queue(entries=0, pending=0, leases=0, later=1)

    due = T0 + timedelta(hours=1)
    assert [i.message_id for i in await redis_store.claim_due(due, 5, "w1", due + LEASE)] == [
        later.id
    ]
    assert await queue(redis_store) == Queue(entries=1, pending=1, leases=1, later=0)
    await redis_store.begin_attempt(later.id, "p1", due, "w1", due + LEASE)
    retry = due + timedelta(minutes=5)  # a retry waits in the later set, not in the Stream
    await redis_store.transition(later.id, Status.QUEUED, due, due_at=retry)
    assert await queue(redis_store) == Queue(entries=0, pending=0, leases=0, later=1)
    await redis_store.claim_due(retry, 5, "w1", retry + LEASE)
    await redis_store.transition(later.id, Status.FAILED, retry)
    assert await queue(redis_store) == Queue(entries=0, pending=0, leases=0, later=0)
    assert await redis_store.queue_depth() == {}


async def test_entries_of_cancelled_and_erased_messages_are_acked_away(
    redis_store: RedisStore,
) -> None:
    erased = [await put(redis_store, Status.QUEUED) for _ in range(4)]
    cancelled = [await put(redis_store, Status.QUEUED, borrower_id="BRW-other") for _ in range(4)]
    kept = await put(redis_store, Status.QUEUED, borrower_id="BRW-other")
    scheduled = await put(redis_store, Status.SCHEDULED)  # in the later set: erased too
    claimed = await redis_store.claim_due(T0, 5, "w1", T0 + LEASE)  # some pending, some not
    assert len(claimed) == 5
    for m in cancelled:
        await redis_store.transition(m.id, Status.CANCELLED, T0)
    borrower = redis_store.index.borrower("acme", erased[0].borrower_id)
    done = await redis_store.erase_borrower("acme", borrower, T0)
    assert set(done.cancelled) == {m.id for m in erased} | {scheduled.id}

    pending = 1 if kept.id in {i.message_id for i in claimed} else 0
    assert await queue(redis_store) == Queue(entries=1, pending=pending, leases=pending, later=0)
    assert await redis_store.queue_depth() == {"queued": 1}
    rest = await redis_store.claim_due(T0 + timedelta(hours=2), 10, "w2", T0 + timedelta(hours=3))
    assert [i.message_id for i in rest] == [kept.id]


async def test_begin_attempt_renews_the_pending_entry_for_its_owner(
    redis_store: RedisStore,
) -> None:
    m = await put(redis_store, Status.QUEUED)
    assert len(await redis_store.claim_due(T0, 1, "w1", T0 + LEASE)) == 1
    later = T0 + LEASE + timedelta(seconds=1)  # w1's lease passed; w2 begins an attempt
    await redis_store.begin_attempt(m.id, "p1", later, "w2", later + LEASE)
    assert await holder(redis_store, m.id) == "w2"
    assert await redis_store.claim_due(later, 5, "w3", later + LEASE) == []

    # an attempt begun before any claim: a claim that reads the entry hands it to the holder
    fresh = await put(redis_store, Status.QUEUED)
    await redis_store.begin_attempt(fresh.id, "p1", T0, "w4", T0 + LEASE)
    assert await redis_store.claim_due(T0, 5, "w5", T0 + LEASE) == []
    assert await holder(redis_store, fresh.id) == "w4"
    after = T0 + LEASE + timedelta(milliseconds=1)
    items = await redis_store.claim_due(after, 5, "w5", after + LEASE)
    assert [(i.message_id, i.status) for i in items] == [(fresh.id, Status.SENDING)]
    assert await holder(redis_store, fresh.id) == "w5"
