"""The store contract for messages: round trips, the state machine, and the
queue entry every status keeps or drops — on SQLite and on Redis."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.errors import TransitionError
from gateway.models import TERMINAL, TRANSITIONS, Event, Status
from gateway.store.base import Store
from tests.contract.helpers import (
    BODY,
    BORROWER,
    CALLBACK,
    LEASE,
    PHONE,
    REFERENCE,
    T0,
    TEXT,
    due_for,
    make_message,
    put,
    seed,
)

FAR = T0 + timedelta(days=9)


async def claimable(store: Store) -> set[str]:
    """Every message id in the queue (claimed far in the future, by a probe)."""
    return {i.message_id for i in await store.claim_due(FAR, 1000, "probe", FAR + LEASE)}


async def test_commit_and_get_round_trip_every_field(store: Store) -> None:
    m = make_message(
        Status.SCHEDULED,
        events=(
            Event(at=T0, status=Status.SCHEDULED, detail="quiet hours until 08:00"),
            Event(at=T0 + timedelta(seconds=1), status=Status.SCHEDULED, detail=None),
        ),
        template="repayment_due",
        params={"amount": "1086.40", "name": "张伟"},
    )
    await store.commit_acceptance(m, None, due_for(Status.SCHEDULED))

    got = await store.get_message(m.id)

    assert got == m
    assert got.to == PHONE and got.text == TEXT and got.body == BODY
    assert got.borrower_id == BORROWER and got.reference == REFERENCE
    assert got.callback_url == CALLBACK and got.params == {"amount": "1086.40", "name": "张伟"}
    assert got.findings[0].start == 5 and got.findings[1].end is None
    assert got.events[1].detail is None and got.created_at.tzinfo is not None
    assert got.scheduled_at == T0 + timedelta(hours=1)
    assert got.provider is None and got.provider_message_id is None and got.attempts == 0


async def test_optional_fields_round_trip_as_none(store: Store) -> None:
    m = make_message(reference=None, callback_url=None, findings=(), events=())
    await store.commit_acceptance(m, None, T0)
    assert await store.get_message(m.id) == m


async def test_a_detail_with_separators_round_trips(store: Store) -> None:
    m = await put(store, Status.QUEUED)
    moved = await store.transition(m.id, Status.CANCELLED, T0, detail="a|b|c")
    assert moved.events[-1] == Event(T0, Status.CANCELLED, "a|b|c")


async def test_unknown_message_is_none(store: Store) -> None:
    assert await store.get_message("msg_nope") is None


@pytest.mark.parametrize("old", list(Status), ids=str)
async def test_every_pair_of_statuses_follows_transitions(store: Store, old: Status) -> None:
    wrong: list[str] = []
    for new in Status:
        m = await seed(store, old)
        before = await store.get_message(m.id)
        assert before is not None
        allowed = new in TRANSITIONS[old] or (new is old and old not in TERMINAL)
        at = T0 + timedelta(minutes=5)
        try:
            moved = await store.transition(m.id, new, at, detail=f"to {new}")
        except TransitionError:
            if allowed:
                wrong.append(f"{old}->{new} refused")
            if await store.get_message(m.id) != before:
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


async def test_expect_mismatch_raises_and_changes_nothing(store: Store) -> None:
    m = await put(store, Status.QUEUED)
    with pytest.raises(TransitionError):
        await store.transition(
            m.id, Status.CANCELLED, T0, expect=frozenset({Status.HELD, Status.SCHEDULED})
        )
    with pytest.raises(TransitionError):
        await store.transition(m.id, Status.CANCELLED, T0, expect=frozenset())
    got = await store.get_message(m.id)
    assert got is not None and got.status is Status.QUEUED and len(got.events) == 1
    moved = await store.transition(
        m.id, Status.CANCELLED, T0, expect=frozenset({Status.QUEUED, Status.HELD})
    )
    assert moved.status is Status.CANCELLED


async def test_transition_of_unknown_message_is_key_error(store: Store) -> None:
    with pytest.raises(KeyError):
        await store.transition("msg_missing", Status.CANCELLED, T0)


async def test_transition_records_provider_and_provider_message_id(store: Store) -> None:
    m = await seed(store, Status.SENDING)
    sent = await store.transition(m.id, Status.SENT, T0, provider_message_id="pm-77")
    assert sent.provider == "p1" and sent.provider_message_id == "pm-77"
    again = await store.get_message(m.id)
    assert again is not None and again.provider_message_id == "pm-77"


@pytest.mark.parametrize("terminal", sorted(TERMINAL - {Status.BLOCKED, Status.REJECTED}), ids=str)
async def test_terminal_status_drops_the_queue_entry(store: Store, terminal: Status) -> None:
    m = await seed(store, Status.SENDING)
    assert await store.queue_depth() == {"sending": 1}
    if terminal in (Status.DELIVERED, Status.UNDELIVERED):
        await store.transition(m.id, Status.SENT, T0)
    await store.transition(m.id, terminal, T0)
    assert await claimable(store) == set()
    assert await store.queue_depth() == {}
    assert await store.oldest_due(FAR) is None


async def test_held_rejected_and_sent_are_not_queued(store: Store) -> None:
    held = await put(store, Status.HELD)
    blocked = await put(store, Status.BLOCKED)
    assert await store.queue_depth() == {}
    released = await store.transition(held.id, Status.QUEUED, T0, due_at=T0)
    assert await store.oldest_due(T0) == T0
    assert await claimable(store) == {released.id}
    rejected = await seed(store, Status.REJECTED)
    sending = await seed(store, Status.SENDING)
    await store.transition(sending.id, Status.SENT, T0)
    assert await store.queue_depth() == {"queued": 1}
    assert blocked.id not in await claimable(store) and rejected.id != released.id


async def test_queued_and_scheduled_keep_the_entry_with_due_at(store: Store) -> None:
    m = await seed(store, Status.SENDING)
    retry_at = T0 + timedelta(seconds=42)
    await store.transition(m.id, Status.QUEUED, T0, due_at=retry_at)
    assert await store.oldest_due(FAR) == retry_at
    # the requeue dropped the lease: claimable as soon as it is due
    assert await store.claim_due(retry_at - timedelta(seconds=1), 5, "w2", FAR) == []
    items = await store.claim_due(retry_at, 5, "w2", retry_at + LEASE)
    assert [(i.message_id, i.status, i.attempts) for i in items] == [(m.id, Status.QUEUED, 1)]

    window = T0 + timedelta(hours=8)
    scheduled = await store.transition(m.id, Status.SCHEDULED, T0, due_at=window)
    assert scheduled.scheduled_at == window
    assert await store.oldest_due(FAR) == window
    assert await store.oldest_due(window - timedelta(seconds=1)) is None

    later = T0 + timedelta(minutes=3)
    await store.transition(m.id, Status.QUEUED, later)  # no due_at: due at once
    assert await store.oldest_due(FAR) == later
    assert await store.queue_depth() == {"queued": 1}


async def test_acceptance_queues_only_with_a_due_time(store: Store) -> None:
    queued = await put(store, Status.QUEUED)
    await put(store, Status.HELD)
    await put(store, Status.BLOCKED)
    unqueued = make_message(Status.QUEUED)
    await store.commit_acceptance(unqueued, None, None)
    assert await claimable(store) == {queued.id}
    assert await store.queue_depth() == {"queued": 1}
