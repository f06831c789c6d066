"""The dispatcher on both store backends: hand-off across crashes, at most
once (DESIGN.md invariant 9). A message taken over from a dead worker whose
attempt was recorded comes back ``sending`` and is resolved through the
provider's status query before anything is resent; the worker loop sends what
is due, once. The scripted providers and the rig are those of
tests/integration/test_dispatch.py."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.audit import AuditWriter
from gateway.clock import FakeClock
from gateway.models import Message, Status
from gateway.store.base import Store
from providers.base import DeliveryState, StatusResult
from tests.conftest import wait_for
from tests.integration.test_dispatch import (
    LEASE,
    T0,
    Gate,
    Rig,
    ScriptedProvider,
    assert_recorded_before_each_send,
    sent,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def audit(tmp_path: Path, clock: FakeClock) -> AsyncIterator[AuditWriter]:
    w = AuditWriter(
        tmp_path / "audit",
        instance_id="handoff-test",
        seal_key=secrets.token_bytes(32),
        chain_key=secrets.token_bytes(32),
        clock=clock,
    )
    await w.start()
    yield w
    await w.close()


@pytest.fixture
def rig(store: Store, audit: AuditWriter, clock: FakeClock, tmp_path: Path) -> Rig:
    return Rig(store, audit, clock, tmp_path / "unused.db")  # type: ignore[arg-type]


async def interrupted(rig: Rig) -> Message:
    """A message whose worker died mid-send: ``sending``, lease run out."""
    m = await rig.accept()
    now = rig.clock.now()
    assert [i.message_id for i in await rig.claim()] == [m.id]  # the dead worker's claim
    await rig.store.begin_attempt(m.id, "p1", now, "dead-worker", now + timedelta(seconds=5))
    assert await rig.claim() == []  # leased by the dead worker
    rig.clock.advance(6)
    return m


async def test_a_recorded_attempt_is_resolved_by_status_query_not_resent(rig: Rig) -> None:
    log: list[str] = []
    p1 = ScriptedProvider(
        "p1", statuses=[StatusResult(DeliveryState.ACCEPTED, "pm-int")], status_query=True,
        log=log,
    )  # fmt: skip
    d = rig.dispatcher(p1)
    m = await interrupted(rig)

    item = await rig.claim_one(m.id)
    assert item.status is Status.SENDING and item.attempts == 1
    await d.handle(item)

    got = await rig.get(m.id)
    assert got.status is Status.SENT and got.provider_message_id == "pm-int"
    assert log == ["query:p1"] and p1.sent == []
    assert await rig.store.queue_depth() == {}


async def test_not_found_is_queried_before_it_is_sent_again(rig: Rig) -> None:
    log: list[str] = []
    p1 = ScriptedProvider(
        "p1", [sent("pm-again")], statuses=[StatusResult(DeliveryState.NOT_FOUND)],
        status_query=True, log=log,
    )  # fmt: skip
    d = rig.dispatcher(p1)
    m = await interrupted(rig)

    await d.handle(await rig.claim_one(m.id))

    got = await rig.get(m.id)
    assert log == ["query:p1", "send:p1"]
    assert got.status is Status.SENT and got.attempts == 2
    assert_recorded_before_each_send(p1)


async def test_a_failed_status_query_leaves_it_sending_for_the_next_lease(rig: Rig) -> None:
    p1 = ScriptedProvider(
        "p1", statuses=[OSError("down"), StatusResult(DeliveryState.ACCEPTED, "pm-x")],
        status_query=True,
    )  # fmt: skip
    d = rig.dispatcher(p1)
    m = await interrupted(rig)
    await d.handle(await rig.claim_one(m.id))
    assert (await rig.get(m.id)).status is Status.SENDING
    assert await rig.claim() == []  # still leased by this worker
    rig.clock.advance(LEASE + 1)
    await d.handle(await rig.claim_one(m.id))
    got = await rig.get(m.id)
    assert got.status is Status.SENT and p1.sent == []


async def test_the_loop_sends_what_is_due_once(rig: Rig) -> None:
    p1 = ScriptedProvider("p1", [sent(f"pm-{i}") for i in range(5)])
    d = rig.dispatcher(p1)
    messages = [await rig.accept() for _ in range(5)]
    d.start()
    try:
        d.notify()

        async def all_sent() -> bool:
            return all([(await rig.get(m.id)).status is Status.SENT for m in messages])

        await wait_for(all_sent, what="all five sent")
        await asyncio.sleep(0.1)  # more polls: nothing is sent twice
    finally:
        await d.stop(grace=5)
    assert sorted(s.message_id for s in p1.sent) == sorted(m.id for m in messages)
    assert_recorded_before_each_send(p1)


async def test_a_worker_stopped_mid_send_hands_over_to_the_next(rig: Rig) -> None:
    gate = Gate(sent())
    p1 = ScriptedProvider(
        "p1", [gate], statuses=[StatusResult(DeliveryState.ACCEPTED, "pm-late")],
        status_query=True,
    )  # fmt: skip
    d = rig.dispatcher(p1, provider_timeout=30.0)
    m = await rig.accept()
    d.start()
    d.notify()
    await asyncio.wait_for(gate.entered.wait(), 10)
    await d.stop(grace=0.01)  # the send is cut off

    assert (await rig.get(m.id)).status is Status.SENDING
    rig.clock.advance(LEASE + 1)
    d2 = rig.dispatcher(p1)
    await d2.handle(await rig.claim_one(m.id))
    got = await rig.get(m.id)
    assert got.status is Status.SENT and got.provider_message_id == "pm-late"
    assert len(p1.sent) == 1
