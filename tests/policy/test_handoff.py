"""The dispatcher's re-check immediately before the hand-off (DESIGN.md
invariants 6-7), through the real app: a message accepted inside the window
but claimed after it closes goes back to ``scheduled``; one whose time-to-live
ends first ``expired``; an opt-out recorded while a message waits cancels it
and gives its caps back."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from config.settings import Settings
from gateway.app import create_app
from gateway.appkeys import STORE
from gateway.auth import new_key
from gateway.clock import FakeClock
from gateway.models import Client, Message, Status
from tests.conftest import CN_MOBILE, auth, wait_for
from tests.policy.conftest import OVERDUE

SHANGHAI = ZoneInfo("Asia/Shanghai")
BODY = {"to": CN_MOBILE, "borrower_id": "B-1", "purpose": "overdue_notice", "text": OVERDUE}


def cn(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI).astimezone(UTC)  # type: ignore[misc]


class Runs:
    """Gateways started one after another on the same settings and clock
    (the first accepts without dispatching; a later one dispatches)."""

    def __init__(self, aiohttp_client: Any, settings: Settings, clock: FakeClock) -> None:
        self.aiohttp_client, self.settings, self.clock = aiohttp_client, settings, clock
        self.token = ""

    async def start(self, *, dispatch: bool) -> TestClient[Any, Any]:
        app = create_app(self.settings, dispatch=dispatch, clock=self.clock)
        http: TestClient[Any, Any] = await self.aiohttp_client(app)
        store = app[STORE]
        if not self.token:
            await store.put_client(
                Client("acme", "cn-collection"), webhook_secret=None, create=True
            )
            made = new_key("acme", frozenset({"send"}), self.clock.now())
            await store.add_key(made.key, made.secret_hash)
            self.token = made.token
        return http

    async def message(self, http: TestClient[Any, Any], mid: str) -> Message:
        found = await http.server.app[STORE].get_message(mid)
        assert found is not None
        return found


@pytest.fixture
async def runs(aiohttp_client: Any, make_settings: Callable[..., Settings]) -> AsyncIterator[Runs]:
    settings = make_settings(messages={"ttl": {"repayment_reminder": 600}})
    yield Runs(aiohttp_client, settings, FakeClock(cn(2026, 1, 15, 20, 55)))


async def accept(runs: Runs, **over: Any) -> str:
    http = await runs.start(dispatch=False)
    resp = await http.post("/v1/messages", json={**BODY, **over}, headers=auth(runs.token))
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    assert body["status"] == "queued"
    await http.close()
    return str(body["id"])


async def test_claimed_after_the_window_closed_goes_back_to_scheduled(runs: Runs) -> None:
    mid = await accept(runs)
    runs.clock.set(cn(2026, 1, 15, 21, 1))
    http = await runs.start(dispatch=True)

    async def rescheduled() -> bool:
        return (await runs.message(http, mid)).status is Status.SCHEDULED

    await wait_for(rescheduled, what="moved back to scheduled")
    message = await runs.message(http, mid)
    assert message.events[-1].detail == "outside the recipient's allowed hours: rescheduled"
    assert message.scheduled_at is not None
    assert cn(2026, 1, 16, 8, 0) <= message.scheduled_at < cn(2026, 1, 16, 8, 10)
    runs.clock.set(message.scheduled_at)

    async def sent() -> bool:
        return (await runs.message(http, mid)).status is Status.SENT

    await wait_for(sent, what="sent when the window opened")


async def test_time_to_live_ending_before_the_window_expires_it(runs: Runs) -> None:
    mid = await accept(runs, purpose="repayment_reminder")  # ttl 600 s: ends 21:05
    runs.clock.set(cn(2026, 1, 15, 21, 1))
    http = await runs.start(dispatch=True)

    async def expired() -> bool:
        return (await runs.message(http, mid)).status is Status.EXPIRED

    await wait_for(expired, what="expired")
    detail = (await runs.message(http, mid)).events[-1].detail
    assert detail == "time-to-live ends before the recipient's window opens"


def reservations(settings: Settings, member: str) -> int:
    db = sqlite3.connect(settings.policy.path)
    try:
        return int(
            db.execute("SELECT COUNT(*) FROM cap_entries WHERE member=?", (member,)).fetchone()[0]
        )
    finally:
        db.close()


async def test_opt_out_while_waiting_cancels_and_gives_caps_back(runs: Runs) -> None:
    runs.clock.set(cn(2026, 1, 15, 23, 0))
    http = await runs.start(dispatch=True)
    resp = await http.post("/v1/messages", json=BODY, headers=auth(runs.token))
    body = await resp.json()
    assert body["status"] == "scheduled"
    assert reservations(runs.settings, body["id"]) == 4  # 2 rules x borrower and number
    resp = await http.post("/v1/opt-outs", json={"to": CN_MOBILE, "scope": "collection"},
                           headers=auth(runs.token))  # fmt: skip
    assert resp.status == 201
    runs.clock.set(datetime.fromisoformat(body["scheduled_at"]))

    async def cancelled() -> bool:
        return (await runs.message(http, body["id"])).status is Status.CANCELLED

    await wait_for(cancelled, what="cancelled at hand-off")
    message = await runs.message(http, body["id"])
    assert message.events[-1].detail == "opt_out: the recipient opted out before hand-off"
    assert reservations(runs.settings, body["id"]) == 0
