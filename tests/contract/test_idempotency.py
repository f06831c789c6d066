"""The store contract for idempotency keys: claim, in flight, lease expiry,
the stored answer and its expiry, release — on SQLite and on Redis."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from gateway.models import Status
from gateway.store.base import ClaimState, IdempotencyRecord, Store
from tests.contract.helpers import BODY, T0, make_message


async def test_idempotency_claim_in_flight_reclaim_and_done(store: Store) -> None:
    first = await store.claim_idempotency("acme", "k1", "hash-a", T0, 30)
    assert first.state is ClaimState.CLAIMED and first.request_hash == "hash-a"

    dup = await store.claim_idempotency("acme", "k1", "hash-b", T0 + timedelta(seconds=29), 30)
    assert dup.state is ClaimState.IN_FLIGHT and dup.request_hash == "hash-a"
    other = await store.claim_idempotency("other", "k1", "hash-x", T0, 30)
    assert other.state is ClaimState.CLAIMED

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

    gone = await store.claim_idempotency("acme", "k1", "hash-d", expires, 30)
    assert gone.state is ClaimState.CLAIMED and gone.request_hash == "hash-d"


async def test_a_blocked_answer_is_replayed_with_its_status(store: Store) -> None:
    m = make_message(Status.BLOCKED)
    record = IdempotencyRecord("k9", "h", 422, {"id": m.id, "status": "blocked"}, T0 + timedelta(1))
    await store.claim_idempotency("acme", "k9", "h", T0, 30)
    await store.commit_acceptance(m, record, None)
    done = await store.claim_idempotency("acme", "k9", "h", T0, 30)
    assert (done.state, done.status_code, done.response) == (
        ClaimState.DONE, 422, {"id": m.id, "status": "blocked"},
    )  # fmt: skip


async def test_release_idempotency_frees_a_claim_but_not_an_answer(store: Store) -> None:
    await store.claim_idempotency("acme", "k2", "hash-a", T0, 30)
    await store.release_idempotency("acme", "k2")
    again = await store.claim_idempotency("acme", "k2", "hash-b", T0, 30)
    assert again.state is ClaimState.CLAIMED and again.request_hash == "hash-b"

    m = make_message()
    record = IdempotencyRecord("k2", "hash-b", 202, {"id": m.id}, T0 + timedelta(days=1))
    await store.commit_acceptance(m, record, T0)
    await store.release_idempotency("acme", "k2")
    await store.release_idempotency("acme", "never-claimed")
    done = await store.claim_idempotency("acme", "k2", "hash-b", T0, 30)
    assert done.state is ClaimState.DONE and done.response == {"id": m.id}


async def test_keys_with_odd_characters_are_independent(store: Store) -> None:
    names = ["a b", "a\x00b", "ключ", "{tag}", "a:b", "a" * 200]
    for name in names:
        claim = await store.claim_idempotency("acme", name, f"h-{name}", T0, 30)
        assert claim.state is ClaimState.CLAIMED
    for name in names:
        claim = await store.claim_idempotency("acme", name, "other", T0, 30)
        assert claim.state is ClaimState.IN_FLIGHT and claim.request_hash == f"h-{name}"


async def test_twenty_concurrent_claims_of_one_key_give_exactly_one_owner(store: Store) -> None:
    claims = await asyncio.gather(
        *(store.claim_idempotency("acme", "race", f"h{n}", T0, 30) for n in range(20))
    )
    owners = [c for c in claims if c.state is ClaimState.CLAIMED]
    assert len(owners) == 1
    assert all(
        c.state is ClaimState.IN_FLIGHT and c.request_hash == owners[0].request_hash
        for c in claims
        if c is not owners[0]
    )
