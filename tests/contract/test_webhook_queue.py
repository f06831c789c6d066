"""The store contract for the queue of client status webhooks: enqueue, claim with
a lease (one owner at a time; claimable again once the lease has passed), retry
(only by the owner holding it), finish, the backlog count, erasure of a
borrower's jobs — on every backend. Personal data (the callback URL, the body's
``reference``) is sealed at rest."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from redis.crc import key_slot

from gateway.models import Message
from gateway.store.base import Store
from gateway.store.delivery import WebhookBacklog, WebhookJob
from gateway.store.redis_store import RedisStore
from gateway.store.sqlite import SqliteStore
from tests.contract.conftest import keys
from tests.contract.helpers import CALLBACK, REFERENCE, T0
from tests.contract.test_erase import accept, index_of
from tests.contract.test_redis_only import everything

LEASE = timedelta(seconds=10)


def job(at_seconds: float = 0, **changes: object) -> WebhookJob:
    body = json.dumps(
        {"id": "msg_1", "status": "delivered", "at": "2025-03-04T05:06:07Z",
         "detail": "receipt from tc: DELIVRD", "reference": REFERENCE},
        ensure_ascii=False,
    ).encode()  # fmt: skip
    made = WebhookJob(
        id=f"wh_{secrets.token_hex(12)}",
        message_id="msg_1",
        client_id="acme",
        url=CALLBACK,
        body=body,
        attempts=0,
        due=T0 + timedelta(seconds=at_seconds),
    )
    return replace(made, **changes)  # type: ignore[arg-type]


async def test_enqueue_claim_finish(store: Store) -> None:
    j = job()
    await store.enqueue_webhook(j)
    assert await store.webhook_backlog(T0) == WebhookBacklog(pending=1, due=1, oldest_due=T0)
    got = await store.claim_webhooks(T0, 10, "a", T0 + LEASE)
    assert got == [j]  # URL and body back exactly as queued
    assert await store.webhook_backlog(T0) == WebhookBacklog(pending=1, due=0)  # leased
    await store.finish_webhook(j.id)
    assert await store.webhook_backlog(T0 + LEASE * 2) == WebhookBacklog(pending=0, due=0)
    assert await store.claim_webhooks(T0 + LEASE * 2, 10, "a", T0 + LEASE * 3) == []
    await store.finish_webhook(j.id)  # finishing twice is harmless


async def test_not_before_due_oldest_first_and_limit(store: Store) -> None:
    later, first, second = job(60), job(0), job(5)
    for j in (later, second, first):
        await store.enqueue_webhook(j)
    t = T0 + timedelta(seconds=10)
    assert await store.webhook_backlog(t) == WebhookBacklog(pending=3, due=2, oldest_due=T0)
    assert [j.id for j in await store.claim_webhooks(t, 1, "a", t + LEASE)] == [first.id]
    assert [j.id for j in await store.claim_webhooks(t, 10, "a", t + LEASE)] == [second.id]
    assert await store.claim_webhooks(t, 10, "a", t + LEASE) == []
    assert await store.claim_webhooks(t, 0, "a", t + LEASE) == []
    await store.finish_webhook(first.id)
    await store.finish_webhook(second.id)
    at = T0 + timedelta(seconds=60)
    assert [j.id for j in await store.claim_webhooks(at, 10, "b", at + LEASE)] == [later.id]


async def test_a_lease_keeps_others_out_until_it_passes(store: Store) -> None:
    j = job()
    await store.enqueue_webhook(j)
    assert len(await store.claim_webhooks(T0, 10, "a", T0 + LEASE)) == 1
    almost = T0 + LEASE - timedelta(milliseconds=1)
    assert await store.claim_webhooks(almost, 10, "b", almost + LEASE) == []
    # "a" died: once its lease has passed, "b" takes the job over
    after = T0 + LEASE
    taken = await store.claim_webhooks(after, 10, "b", after + LEASE)
    assert [t.id for t in taken] == [j.id] and taken[0].attempts == 0
    # "a" comes back late: it no longer holds the job, its retry changes nothing
    assert await store.retry_webhook(j.id, "a", T0, 1) is False
    assert await store.claim_webhooks(after, 10, "c", after + LEASE) == []
    assert await store.webhook_backlog(after) == WebhookBacklog(pending=1, due=0)


async def test_retry_releases_the_lease_with_a_new_due_time(store: Store) -> None:
    j = job()
    await store.enqueue_webhook(j)
    await store.claim_webhooks(T0, 10, "a", T0 + LEASE)
    due = T0 + timedelta(seconds=3)
    assert await store.retry_webhook(j.id, "a", due, 1) is True
    assert await store.retry_webhook(j.id, "a", due, 1) is False  # no longer leased
    early = T0 + timedelta(seconds=2)
    assert await store.claim_webhooks(early, 10, "b", early + LEASE) == []
    assert await store.webhook_backlog(early) == WebhookBacklog(pending=1, due=0)
    # due before the old lease would have ended: the retry really released it
    got = await store.claim_webhooks(due, 10, "b", due + LEASE)
    assert got == [replace(j, attempts=1, due=due)]
    await store.finish_webhook(j.id)
    assert await store.retry_webhook(j.id, "b", due, 2) is False  # gone: not brought back
    assert await store.webhook_backlog(due + LEASE) == WebhookBacklog(pending=0, due=0)


async def test_two_owners_never_hold_the_same_job(store: Store) -> None:
    jobs = [job(i / 100) for i in range(40)]
    for j in jobs:
        await store.enqueue_webhook(j)
    t = T0 + timedelta(seconds=1)
    claims = await asyncio.gather(
        *(store.claim_webhooks(t, 7, f"owner-{n}", t + LEASE) for n in range(8))
    )
    ids = [j.id for claim in claims for j in claim]
    assert len(ids) == len(set(ids)) == 40
    assert set(ids) == {j.id for j in jobs}


async def test_sqlite_keeps_url_and_reference_sealed(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = SqliteStore(path, *keys())
    await store.open()
    try:
        j = job()
        await store.enqueue_webhook(j)
        await store.claim_webhooks(T0, 10, "a", T0 + LEASE)
    finally:
        await store.close()
    raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    assert j.id.encode() in raw  # the search works
    for secret in (REFERENCE, CALLBACK, "DELIVRD"):
        assert secret.encode() not in raw, secret


async def test_redis_webhook_keys_share_one_slot_and_keep_data_sealed(store: Store) -> None:
    if not isinstance(store, RedisStore):
        pytest.skip("Redis only")
    j = job()
    await store.enqueue_webhook(j)
    await store.claim_webhooks(T0, 10, "a", T0 + LEASE)
    index = f"{store.keys.webhooks()[0][:-1]}mj:{j.message_id}"  # the message's job ids
    assert len({key_slot(k.encode()) for k in [*store.keys.webhooks(), index]}) == 1
    if store.cluster:
        return  # everything() reads one node
    names, raw = await everything(store)
    assert set(names) == {*store.keys.webhooks(), index}
    assert j.id.encode() in raw
    for secret in (REFERENCE, CALLBACK, "DELIVRD"):
        assert secret.encode() not in raw, secret
    await store.finish_webhook(j.id)  # the index goes with its last job
    names, _ = await everything(store)
    assert not set(names) & {*store.keys.webhooks(), index}


async def test_a_job_that_cannot_be_opened_does_not_hold_up_the_others(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    old = SqliteStore(path, *keys())
    await old.open()
    stale = job()
    await old.enqueue_webhook(stale)  # sealed under a data key since replaced
    await old.close()
    store = SqliteStore(path, *keys())
    await store.open()
    try:
        fine = job(1)
        await store.enqueue_webhook(fine)
        t = T0 + timedelta(seconds=1)
        assert [j.id for j in await store.claim_webhooks(t, 10, "a", t + LEASE)] == [fine.id]
        assert await store.webhook_backlog(t) == WebhookBacklog(pending=2, due=0)
    finally:
        await store.close()


async def test_an_expired_lease_counts_from_its_end(store: Store) -> None:
    await store.enqueue_webhook(job())
    await store.claim_webhooks(T0, 10, "a", T0 + LEASE)  # "a" dies holding it
    later = T0 + LEASE * 3
    backlog = await store.webhook_backlog(later)
    assert backlog == WebhookBacklog(pending=1, due=1, oldest_due=T0 + LEASE)


async def test_erasure_deletes_the_borrowers_queued_webhooks(store: Store) -> None:
    first, second = await accept(store, "B-gone"), await accept(store, "B-gone")
    kept = await accept(store, "B-keep")

    def for_message(m: Message, at: float = 0) -> WebhookJob:
        return job(at, message_id=m.id)

    gone = [for_message(first), for_message(first, 1), for_message(second, 2)]
    other = for_message(kept, 3)
    for j in (*gone, other):
        await store.enqueue_webhook(j)
    await store.claim_webhooks(T0, 1, "a", T0 + LEASE)  # one of them in flight
    await store.erase_borrower("acme", index_of(store).borrower("acme", "B-gone"), T0)

    t = T0 + LEASE * 2
    assert await store.webhook_backlog(t) == WebhookBacklog(1, 1, oldest_due=other.due)
    assert await store.claim_webhooks(t, 10, "b", t + LEASE) == [other]
    assert await store.retry_webhook(gone[0].id, "a", t, 1) is False  # not brought back
    await store.finish_webhook(gone[0].id)  # the late owner finishing is harmless
    await store.erase_borrower("acme", index_of(store).borrower("acme", "B-gone"), T0)
    if isinstance(store, SqliteStore):
        raw = b"".join(
            p.read_bytes() for p in (store.path, Path(f"{store.path}-wal")) if p.exists()
        )
    else:
        assert isinstance(store, RedisStore)
        if store.cluster:
            return  # everything() reads one node
        names, raw = await everything(store)
        tag = store.keys.webhooks()[0][:-1]
        assert f"{tag}mj:{kept.id}" in names
        assert not {f"{tag}mj:{m.id}" for m in (first, second)} & set(names)
    assert other.id.encode() in raw  # the search works
    for j in gone:
        assert j.id.encode() not in raw, j.id


async def test_redis_cleanup_of_a_half_written_job_drops_its_index_entry(store: Store) -> None:
    if not isinstance(store, RedisStore):
        pytest.skip("Redis only")
    j, k = job(message_id="msg_half"), job(message_id="msg_half2")
    await store.enqueue_webhook(j)
    await store.enqueue_webhook(k)
    jobs, attempts = store.keys.webhooks()[:2]
    await store.redis.hdel(attempts, j.id)  # lost half of each: as by eviction
    await store.redis.hdel(jobs, k.id)
    assert await store.claim_webhooks(T0, 10, "a", T0 + LEASE) == []
    tag = jobs[:-1]
    for m in ("msg_half", "msg_half2"):
        assert await store.redis.exists(f"{tag}mj:{m}") == 0, m
    assert await store.webhook_backlog(T0) == WebhookBacklog(pending=0, due=0)
