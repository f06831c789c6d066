"""The store contract for compliance review: the queue with its filters and
cursor pages, the summary counts, and the reviewer registry — on SQLite and
on Redis."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.models import Action, Event, Finding, Message, Status
from gateway.store.base import Store
from gateway.store.review import Reviewer, ReviewQuery, ReviewSource
from tests.contract.helpers import make_message

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
THREAT = Finding("content", "cn.violence.threat", "violence", Action.HOLD, 0, 2)
FEES = Finding("content", "cn.fees.hidden", "fees", Action.BLOCK, 3, 5)
MASKED = Finding("pii", "pii.cn_name", "name", Action.MASK, 5, 7)
OPTED_OUT = Finding("policy", "opt_out", "contact", Action.BLOCK)
HELD_BLOCKED = frozenset({Status.HELD, Status.BLOCKED})


async def put(
    store: Store,
    status: Status,
    findings: tuple[Finding, ...],
    *,
    minutes: int,
    client: str = "acme",
    purpose: str = "overdue_notice",
) -> Message:
    at = T0 + timedelta(minutes=minutes)
    m = replace(
        make_message(status, at=at),
        client_id=client,
        purpose=purpose,
        findings=findings,
        events=(Event(at=at, status=status, detail="accepted"),),
    )
    await store.commit_acceptance(m, None, at if status is Status.QUEUED else None)
    return m


async def ids(store: Store, **query: object) -> list[str]:
    q = ReviewQuery(**{"statuses": HELD_BLOCKED, "source": ReviewSource.ALL, **query})  # type: ignore[arg-type]
    return [m.id for m in (await store.list_for_review(q)).messages]


async def test_queue_filters_and_order(store: Store) -> None:
    held = await put(store, Status.HELD, (MASKED, THREAT), minutes=1)
    blocked = await put(store, Status.BLOCKED, (FEES,), minutes=2, purpose="marketing")
    policy = await put(store, Status.BLOCKED, (OPTED_OUT,), minutes=3)
    other = await put(store, Status.HELD, (THREAT,), minutes=4, client="globex")
    await put(store, Status.QUEUED, (MASKED,), minutes=5)  # never in review
    released = await put(store, Status.HELD, (THREAT,), minutes=6)
    await put(store, Status.HELD, (THREAT,), minutes=7)
    await store.transition(released.id, Status.QUEUED, T0)  # reviewed: out of the queue

    listed = await ids(store)
    assert listed[1:] == [other.id, policy.id, blocked.id, held.id]  # newest first
    assert await ids(store, statuses=frozenset({Status.BLOCKED})) == [policy.id, blocked.id]
    assert await ids(store, statuses=frozenset()) == []
    assert await ids(store, clients=frozenset({"globex"})) == [other.id]
    assert await ids(store, clients=frozenset()) == []
    assert await ids(store, purpose="marketing") == [blocked.id]
    assert (await ids(store, category="violence"))[1:] == [other.id, held.id]
    assert await ids(store, category="name") == [held.id]  # any finding's category
    assert (await ids(store, source=ReviewSource.CONTENT))[1:] == [other.id, blocked.id, held.id]
    assert await ids(store, source=ReviewSource.POLICY) == [policy.id]
    after, before = T0 + timedelta(minutes=2), T0 + timedelta(minutes=4)
    assert await ids(store, after=after, before=before) == [policy.id, blocked.id]
    page = await store.list_for_review(ReviewQuery(HELD_BLOCKED, source=ReviewSource.ALL))
    loaded = {m.id: m for m in page.messages}
    assert loaded[held.id].text == held.text  # a whole message, decrypted
    assert loaded[held.id].findings == (MASKED, THREAT)


async def test_cursor_walks_every_page_once(store: Store) -> None:
    made = [await put(store, Status.HELD, (THREAT,), minutes=i % 3) for i in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await store.list_for_review(ReviewQuery(HELD_BLOCKED, cursor=cursor, limit=3))
        seen += [m.id for m in page.messages]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    expected = sorted(made, key=lambda m: (m.created_at, m.id), reverse=True)
    assert seen == [m.id for m in expected]


async def test_bad_cursors_are_value_errors(store: Store) -> None:
    for bad in ("", "nonsense", "r1.!!!", "r1." + "A" * 300, "r1.WzEsMiwzXQ"):
        with pytest.raises(ValueError):
            await store.list_for_review(ReviewQuery(HELD_BLOCKED, cursor=bad))


async def test_counts_include_reviewed_messages(store: Store) -> None:
    await put(store, Status.HELD, (THREAT, FEES), minutes=1)
    rejected = await put(store, Status.HELD, (THREAT,), minutes=2, client="globex")
    await store.transition(rejected.id, Status.REJECTED, T0)
    approved = await put(store, Status.HELD, (THREAT,), minutes=3)
    await store.transition(approved.id, Status.QUEUED, T0)
    await put(store, Status.BLOCKED, (OPTED_OUT,), minutes=60 * 24)  # the next day
    await put(store, Status.BLOCKED, (MASKED,), minutes=60 * 24 + 1)  # no stopping finding
    await put(store, Status.QUEUED, (MASKED,), minutes=4)  # never stopped
    since, until = T0 - timedelta(hours=9), T0 + timedelta(days=2)
    counts = {
        (c.day, str(c.status), c.category): c.count
        for c in await store.review_counts(None, since, until)
    }
    assert counts == {
        ("2026-11-20", "held", "violence"): 1,
        ("2026-11-20", "held", "fees"): 1,
        ("2026-11-20", "rejected", "violence"): 1,
        ("2026-11-20", "queued", "violence"): 1,
        ("2026-11-21", "blocked", "contact"): 1,
        ("2026-11-21", "blocked", ""): 1,
    }
    only_acme = await store.review_counts(frozenset({"acme"}), since, until)
    assert {str(c.status) for c in only_acme} == {"held", "queued", "blocked"}
    assert await store.review_counts(frozenset(), since, until) == []
    assert await store.review_counts(None, T0 + timedelta(days=3), T0 + timedelta(days=4)) == []
    # [since, until): a message created at until is not counted
    edge = await store.review_counts(None, since, T0 + timedelta(minutes=1))
    assert edge == []


async def test_reviewers_round_trip(store: Store) -> None:
    ana = Reviewer("Ana Li", can_reveal=True, clients=("acme",), created_at=T0)
    await store.put_reviewer(ana, "scrypt$hash-1", create=True)
    with pytest.raises(ValueError):
        await store.put_reviewer(ana, "scrypt$hash-2", create=True)
    stored = await store.get_reviewer("Ana Li")
    assert stored is not None and stored.reviewer == ana and stored.password_hash == "scrypt$hash-1"
    disabled = replace(ana, disabled_at=T0 + timedelta(days=1))
    await store.put_reviewer(disabled, "scrypt$hash-3", create=False)
    again = await store.get_reviewer("Ana Li")
    assert again is not None and again.reviewer == disabled and again.password_hash.endswith("3")
    bob = Reviewer("Bob", can_reveal=False, clients=(), created_at=T0)
    await store.put_reviewer(bob, "scrypt$hash-b", create=True)
    assert [r.name for r in await store.list_reviewers()] == ["Ana Li", "Bob"]
    assert await store.get_reviewer("nobody") is None


async def test_reviewer_sign_out_instant(store: Store) -> None:
    ana = Reviewer("Ana Li", can_reveal=False, clients=(), created_at=T0)
    await store.put_reviewer(ana, "scrypt$hash-1", create=True)
    stored = await store.get_reviewer("Ana Li")
    assert stored is not None and stored.reviewer.signed_out_at is None
    # to the microsecond: sessions issued in the same second must not survive
    first = T0 + timedelta(hours=1, microseconds=123457)
    assert await store.end_reviewer_sessions("Ana Li", first)
    stored = await store.get_reviewer("Ana Li")
    assert stored is not None and stored.reviewer.signed_out_at == first
    assert (await store.list_reviewers())[0].signed_out_at == first
    # it only moves forward
    assert await store.end_reviewer_sessions("Ana Li", first - timedelta(microseconds=1))
    again = await store.get_reviewer("Ana Li")
    assert again is not None and again.reviewer.signed_out_at == first
    # a replace without an instant keeps the stored one; with one, moves it forward
    await store.put_reviewer(replace(ana, can_reveal=True), "scrypt$hash-2", create=False)
    kept = await store.get_reviewer("Ana Li")
    assert kept is not None and kept.reviewer.signed_out_at == first and kept.reviewer.can_reveal
    later = first + timedelta(seconds=5)
    await store.put_reviewer(replace(ana, signed_out_at=later), "scrypt$hash-3", create=False)
    moved = await store.get_reviewer("Ana Li")
    assert moved is not None and moved.reviewer.signed_out_at == later
    assert moved.password_hash == "scrypt$hash-3"
    await store.put_reviewer(replace(ana, signed_out_at=first), "scrypt$hash-4", create=False)
    back = await store.get_reviewer("Ana Li")
    assert back is not None and back.reviewer.signed_out_at == later
    # unknown names: False, and nothing appears
    assert not await store.end_reviewer_sessions("nobody", later)
    assert await store.get_reviewer("nobody") is None
    assert [r.name for r in await store.list_reviewers()] == ["Ana Li"]
    bob = Reviewer("Bob", can_reveal=False, clients=(), created_at=T0)
    await store.put_reviewer(bob, "scrypt$hash-b", create=True)
    by_name = {r.name: r.signed_out_at for r in await store.list_reviewers()}
    assert by_name == {"Ana Li": later, "Bob": None}
