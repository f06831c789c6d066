"""The store contract for ``erase_borrower``: one borrower's messages and
stored idempotency answers read ``[erased]``, those not yet handed to a
provider are cancelled, another borrower is untouched — on SQLite and Redis.
(What leaves the files is backend-specific: tests/integration/test_erase_store.py
and tests/contract/test_redis_only.py.)"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gateway.accept import accepted_body, new_message_id
from gateway.crypto import BlindIndex
from gateway.models import ERASED, Event, Message, Status
from gateway.store.base import ClaimState, IdempotencyRecord, Store

T0 = datetime(2025, 6, 2, 3, 0, tzinfo=UTC)
PHONE = "+8613812345678"
BODY = "【安心消费金融】您本期应还1,086.40元，最后还款日12月8日。"


IDEMPOTENCY_KEY: dict[str, str] = {}  # message id -> the key it was accepted under


def index_of(store: Store) -> BlindIndex:
    index = getattr(store, "index", None)
    assert isinstance(index, BlindIndex)
    return index


async def accept(
    store: Store, borrower: str, status: Status = Status.QUEUED, **changes: object
) -> Message:
    key = f"key-{secrets.token_hex(4)}"
    m = Message(
        id=new_message_id(T0, f"acme\x00{key}"),
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
    IDEMPOTENCY_KEY[m.id] = key
    idem = IdempotencyRecord(key, "hash", 202, accepted_body(m), T0 + timedelta(days=1))
    due = T0 if status in (Status.QUEUED, Status.SCHEDULED) else None
    await store.commit_acceptance(m, idem, due)
    return m


async def test_erase_scrubs_one_borrower_only(store: Store) -> None:
    queued = await accept(store, "B-gone")
    held = await accept(store, "B-gone", Status.HELD)
    template = await accept(
        store, "B-gone", template="repayment_due", params={"amount": "1086.40"},
        callback_url="https://hooks.example.com/sms",
    )  # fmt: skip
    sending = await accept(store, "B-gone")
    await store.begin_attempt(sending.id, "p1", T0, "w", T0 + timedelta(seconds=30))
    kept = await accept(store, "B-keep")
    index = index_of(store)

    done = await store.erase_borrower("acme", index.borrower("acme", "B-gone"), T0)

    gone = [queued, held, template, sending]
    assert sorted(done.messages) == sorted(m.id for m in gone)
    assert sorted(done.cancelled) == sorted([queued.id, held.id, template.id])
    assert done.answers == 4
    for m in gone:
        got = await store.get_message(m.id)
        assert got is not None and got.erased
        assert (got.to, got.to_masked, got.text, got.body, got.borrower_id, got.reference) == (
            (ERASED,) * 6
        )
    got_template = await store.get_message(template.id)
    assert got_template is not None and got_template.template == "repayment_due"
    assert got_template.params == {"amount": ERASED} and got_template.callback_url == ERASED
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


async def test_erased_idempotency_answers_are_still_replayed(store: Store) -> None:
    gone = await accept(store, "B-gone")
    kept = await accept(store, "B-keep")
    await store.erase_borrower("acme", index_of(store).borrower("acme", "B-gone"), T0)
    answers = {}
    for m in (gone, kept):
        claim = await store.claim_idempotency("acme", IDEMPOTENCY_KEY[m.id], "other", T0, 30)
        assert claim.state is ClaimState.DONE and claim.response is not None
        assert claim.request_hash == "hash" and claim.response["id"] == m.id
        answers[m.id] = claim.response
    assert answers[gone.id]["to_masked"] == ERASED and answers[gone.id]["body"] == ERASED
    assert answers[kept.id]["body"] == BODY and answers[kept.id]["to_masked"] == kept.to_masked


async def test_erase_again_is_harmless(store: Store) -> None:
    m = await accept(store, "B-gone")
    owner = index_of(store).borrower("acme", "B-gone")
    first = await store.erase_borrower("acme", owner, T0)
    second = await store.erase_borrower("acme", owner, T0 + timedelta(seconds=1))
    assert first.cancelled == (m.id,) and second.cancelled == ()
    assert second.messages == (m.id,) and second.answers == 1
    got = await store.get_message(m.id)
    assert got is not None and got.erased and got.status is Status.CANCELLED
    assert [e.status for e in got.events] == [Status.QUEUED, Status.CANCELLED]


async def test_erase_of_an_unknown_borrower_changes_nothing(store: Store) -> None:
    m = await accept(store, "B-keep")
    index = index_of(store)
    done = await store.erase_borrower("acme", index.borrower("acme", "B-none"), T0)
    assert (done.messages, done.cancelled, done.answers) == ((), (), 0)
    other_client = await store.erase_borrower("other", index.borrower("other", "B-keep"), T0)
    assert other_client.messages == ()
    got = await store.get_message(m.id)
    assert got is not None and got.body == BODY and got.status is Status.QUEUED
