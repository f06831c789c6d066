"""Contact policy through the real app (SQLite store, audit log, outbox, the
SQLite policy backend) with an injected clock: caps and 429 (acceptance 1),
quiet hours and the hand-off re-check (acceptance 2), opt-outs through the
API and inbound replies (acceptance 3), consents, and the admin delete."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import ClientResponse

from gateway.appkeys import CONTACT, INBOUND_HANDLERS, STORE
from gateway.clock import FakeClock
from gateway.models import Client
from providers.base import InboundSms
from tests.conftest import CN_MOBILE, Gateway, auth, wait_for
from tests.policy.conftest import (
    CODE,
    DAYTIME,
    MARKETING,
    OVERDUE,
    REMINDER,
    US_REMINDER,
    gateway_starter,
)

PROBLEM = "https://lendsms.dev/problems/"
SHANGHAI = ZoneInfo("Asia/Shanghai")
OTHER_CN = "+8613912345678"
US_NY = "+12125550123"
Start = Callable[..., Awaitable[Gateway]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(DAYTIME)


@pytest.fixture
def policy_gateway(start_gateway: Start, clock: FakeClock) -> Start:
    return gateway_starter(start_gateway, clock)


def cn(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI).astimezone(UTC)  # type: ignore[misc]


async def post(gw: Gateway, token: str, path: str, body: dict[str, Any]) -> ClientResponse:
    return await gw.http.post(path, json=body, headers=auth(token))


async def send(gw: Gateway, token: str, **over: Any) -> tuple[int, Any, ClientResponse]:
    body = {"to": CN_MOBILE, "borrower_id": "B-1", "purpose": "overdue_notice", "text": OVERDUE}
    body.update(over)
    resp = await post(gw, token, "/v1/messages", body)
    return resp.status, await resp.json(content_type=None), resp


def sent_ids(gw: Gateway) -> set[str]:
    return {line["id"] for line in gw.outbox()}


async def view(gw: Gateway, token: str, message_id: str) -> dict[str, Any]:
    resp = await gw.http.get(f"/v1/messages/{message_id}", headers=auth(token))
    return dict(await resp.json())


# ------------------------------------------------------------- acceptance 1


async def test_fifty_concurrent_overdue_notices_three_accepted(policy_gateway: Start) -> None:
    gw = await policy_gateway(dispatch=False)
    token = await gw.key()
    answers = await asyncio.gather(*(send(gw, token) for _ in range(50)))
    accepted = [a for a in answers if a[0] == 202]
    refused = [a for a in answers if a[0] == 429]
    assert len(accepted) == 3 and len(refused) == 47
    for _, body, resp in refused:
        assert body["type"] == PROBLEM + "cap-exceeded"
        assert body["rule"] == "cap.overdue_notice.day"
        assert resp.content_type == "application/problem+json"
        # the rest of the calendar day in Shanghai: 10:00 -> midnight
        assert int(resp.headers["Retry-After"]) == 14 * 3600
        assert CN_MOBILE not in json.dumps(body) and "B-1" not in json.dumps(body)


async def test_caps_per_number_and_per_borrower(policy_gateway: Start) -> None:
    gw = await policy_gateway(dispatch=False)
    token = await gw.key()
    for i in range(3):  # three borrowers share one number
        assert (await send(gw, token, borrower_id=f"B-{i}"))[0] == 202
    status, body, _ = await send(gw, token, borrower_id="B-9")
    assert status == 429 and body["rule"] == "cap.overdue_notice.day"
    # another number for one of those borrowers: the borrower's own count
    assert (await send(gw, token, to=OTHER_CN, borrower_id="B-9"))[0] == 202
    # all non-exempt purposes together: 3 notices + 2 reminders, then marketing
    await post(gw, token, "/v1/consents",
               {"to": OTHER_CN, "scope": "marketing", "evidence": "web form"})  # fmt: skip
    for _ in range(2):
        assert (await send(gw, token, to=OTHER_CN, borrower_id="B-9"))[0] == 202
    for _ in range(2):
        s, _, _ = await send(gw, token, to=OTHER_CN, borrower_id="B-9",
                             purpose="repayment_reminder", text=REMINDER)  # fmt: skip
        assert s == 202
    status, body, _ = await send(gw, token, to=OTHER_CN, borrower_id="B-9",
                                 purpose="marketing", text=MARKETING)  # fmt: skip
    assert status == 429 and body["rule"] == "cap.non_exempt.day"


async def test_verification_codes_per_number(policy_gateway: Start, clock: FakeClock) -> None:
    gw = await policy_gateway(dispatch=False)
    token = await gw.key()
    code = {"purpose": "verification_code", "text": CODE}
    assert (await send(gw, token, **code))[0] == 202
    status, body, resp = await send(gw, token, borrower_id="B-2", **code)
    assert status == 429 and body["rule"] == "cap.verification_code.1m"
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    for _ in range(4):
        clock.advance(61)
        assert (await send(gw, token, **code))[0] == 202
    clock.advance(61)
    status, body, _ = await send(gw, token, **code)
    assert status == 429 and body["rule"] == "cap.verification_code.1h"


async def test_cancelled_message_gives_its_reservation_back(policy_gateway: Start) -> None:
    gw = await policy_gateway(dispatch=False)
    token = await gw.key()
    ids = [(await send(gw, token))[1]["id"] for _ in range(3)]
    assert (await send(gw, token))[0] == 429
    resp = await gw.http.post(f"/v1/messages/{ids[0]}/cancel", headers=auth(token))
    assert resp.status == 200
    assert (await send(gw, token))[0] == 202
    assert (await send(gw, token))[0] == 429


async def test_one_lenders_traffic_never_spends_anothers(policy_gateway: Start) -> None:
    gw = await policy_gateway(dispatch=False)
    first, second = await gw.key("lender-a"), await gw.key("lender-b")
    for _ in range(3):
        assert (await send(gw, first))[0] == 202
    assert (await send(gw, first))[0] == 429
    assert (await send(gw, second))[0] == 202


# ------------------------------------------------------------- acceptance 2


async def test_night_message_waits_for_the_window_then_goes(
    policy_gateway: Start, clock: FakeClock
) -> None:
    clock.set(cn(2026, 1, 15, 23, 0))
    gw = await policy_gateway()
    token = await gw.key()
    status, body, _ = await send(gw, token)
    assert status == 202 and body["status"] == "scheduled"
    when = datetime.fromisoformat(body["scheduled_at"])
    assert cn(2026, 1, 16, 8, 0) <= when < cn(2026, 1, 16, 8, 10)
    assert {"kind": "policy", "rule": "quiet_hours", "category": "contact", "action": "note",
            "start": None, "end": None} in body["findings"]  # fmt: skip
    stored = await gw.app[STORE].get_message(body["id"])
    ttl = gw.settings.messages.ttl["overdue_notice"]
    assert stored.expires_at == when + timedelta(seconds=ttl)  # counted from the send time

    clock.set(when - timedelta(seconds=1))
    # a verification code (exempt) to another number: once it is out, the
    # dispatcher has polled after the clock moved, and left the notice alone
    _, sentinel, _ = await send(gw, token, to=OTHER_CN, purpose="verification_code", text=CODE)
    await wait_for(lambda: sentinel["id"] in sent_ids(gw), what="sentinel sent")
    assert body["id"] not in sent_ids(gw)

    clock.set(when)
    await wait_for(lambda: body["id"] in sent_ids(gw), what="notice sent at the window")
    statuses = [e["status"] for e in (await view(gw, token, body["id"]))["events"]]
    assert statuses[0] == "scheduled" and statuses[-1] == "sent"


async def test_scheduled_at_is_honoured_the_same_way(
    policy_gateway: Start, clock: FakeClock
) -> None:
    gw = await policy_gateway(dispatch=False)
    token = await gw.key()
    inside = cn(2026, 1, 16, 10, 30)
    status, body, _ = await send(gw, token, scheduled_at=inside.isoformat())
    assert status == 202 and datetime.fromisoformat(body["scheduled_at"]) == inside
    late = cn(2026, 1, 16, 22, 0)
    status, body, _ = await send(gw, token, scheduled_at=late.isoformat())
    when = datetime.fromisoformat(body["scheduled_at"])
    assert cn(2026, 1, 17, 8, 0) <= when < cn(2026, 1, 17, 8, 10)


async def test_us_pack_uses_the_consumers_zone(policy_gateway: Start, clock: FakeClock) -> None:
    clock.set(datetime(2026, 1, 15, 12, 30, tzinfo=UTC))  # 07:30 in New York
    gw = await policy_gateway(dispatch=False)
    token = await gw.key()
    await gw.app[STORE].put_client(
        Client(id="acme", policy="us-fdcpa"), webhook_secret=None, create=False
    )
    status, body, _ = await send(gw, token, to=US_NY, purpose="repayment_reminder",
                                 text=US_REMINDER)  # fmt: skip
    assert status == 202 and body["status"] == "scheduled"
    when = datetime.fromisoformat(body["scheduled_at"])
    opening = datetime(2026, 1, 15, 13, 0, tzinfo=UTC)  # 08:00 EST
    assert opening <= when < opening + timedelta(minutes=10)
    # one a day per number (another borrower) and per borrower (another number)
    status, body, _ = await send(gw, token, to=US_NY, borrower_id="B-2",
                                 purpose="overdue_notice", text=US_REMINDER)  # fmt: skip
    assert status == 429 and body["rule"] == "cap.collection.day"
    status, body, _ = await send(gw, token, to="+13105550123",
                                 purpose="overdue_notice", text=US_REMINDER)  # fmt: skip
    assert status == 429 and body["rule"] == "cap.collection.day"
    status, body, _ = await send(gw, token, to="+13105550123", borrower_id="B-3",
                                 purpose="overdue_notice", text=US_REMINDER)  # fmt: skip
    assert status == 202
    pacific = datetime(2026, 1, 15, 16, 0, tzinfo=UTC)  # 08:00 PST
    assert pacific <= datetime.fromisoformat(body["scheduled_at"]) < pacific + timedelta(minutes=10)


async def test_exempt_purposes_go_at_night(policy_gateway: Start, clock: FakeClock) -> None:
    clock.set(cn(2026, 1, 15, 3, 0))
    gw = await policy_gateway(dispatch=False)
    token = await gw.key()
    status, body, _ = await send(gw, token, purpose="verification_code", text=CODE)
    assert status == 202 and body["status"] == "queued"
    status, body, _ = await send(gw, token, purpose="service", text=REMINDER)
    assert status == 202 and body["status"] == "queued"


# ------------------------------------------------------------- acceptance 3


async def test_opt_out_through_the_api(policy_gateway: Start) -> None:
    gw = await policy_gateway()
    token = await gw.key()
    await post(gw, token, "/v1/consents",
               {"to": CN_MOBILE, "scope": "marketing", "evidence": "app checkbox v3"})  # fmt: skip
    resp = await post(gw, token, "/v1/opt-outs", {"to": CN_MOBILE, "scope": "all"})
    assert resp.status == 201 and await resp.json() == {"opted_out": True, "scopes": ["all"]}
    for purpose, text in (("overdue_notice", OVERDUE), ("marketing", MARKETING),
                          ("repayment_reminder", REMINDER)):  # fmt: skip
        status, body, _ = await send(gw, token, purpose=purpose, text=text)
        assert status == 422 and body["type"] == PROBLEM + "blocked"
        assert [f["rule"] for f in body["findings"]] == ["opt_out"]
    status, body, _ = await send(gw, token, purpose="verification_code", text=CODE)
    assert status == 202
    await wait_for(lambda: body["id"] in sent_ids(gw), what="the code still goes")
    # national form with a region finds the same number
    resp = await post(gw, token, "/v1/opt-outs/query", {"to": "13812345678", "region": "CN"})
    assert await resp.json() == {"opted_out": True, "scopes": ["all"]}


async def test_opt_out_scopes(policy_gateway: Start) -> None:
    gw = await policy_gateway(dispatch=False)
    token = await gw.key()
    await post(gw, token, "/v1/consents",
               {"to": CN_MOBILE, "scope": "marketing", "evidence": "app checkbox v3"})  # fmt: skip
    await post(gw, token, "/v1/opt-outs", {"to": CN_MOBILE, "scope": "marketing"})
    status, body, _ = await send(gw, token, purpose="marketing", text=MARKETING)
    assert status == 422 and body["findings"][0]["rule"] == "opt_out"
    assert (await send(gw, token))[0] == 202  # collection still goes
    await post(gw, token, "/v1/opt-outs", {"to": CN_MOBILE, "scope": "collection"})
    assert (await send(gw, token))[0] == 422
    assert (await send(gw, token, purpose="service", text=REMINDER))[0] == 202
    other = await gw.key("lender-b")  # opt-outs belong to one client
    assert (await send(gw, other))[0] == 202


async def test_inbound_stop_replies(policy_gateway: Start) -> None:
    gw = await policy_gateway()
    token, other = await gw.key(), await gw.key("lender-b")
    first = (await send(gw, token))[1]["id"]
    await wait_for(lambda: first in sent_ids(gw), what="a message through outbox")
    contact = gw.app[CONTACT]
    assert await contact.inbound("退订", CN_MOBILE, "some-other-provider") == []
    assert await contact.inbound("你好", CN_MOBILE, "outbox") == []
    [action] = await contact.inbound("退订", CN_MOBILE.lstrip("+"), "outbox")
    assert (action.client, action.intent, action.scope) == ("acme", "opt_out", "all")
    for purpose, text in (("overdue_notice", OVERDUE), ("marketing", MARKETING)):
        status, body, _ = await send(gw, token, purpose=purpose, text=text)
        assert status == 422 and body["findings"][0]["rule"] == "opt_out"
    status, body, _ = await send(gw, token, purpose="verification_code", text=CODE)
    assert status == 202
    await wait_for(lambda: body["id"] in sent_ids(gw), what="the code still goes")
    assert (await send(gw, other))[0] == 202  # lender-b never sent through outbox
    [action] = await contact.inbound("开通", CN_MOBILE, "outbox")
    assert action.intent == "opt_in"
    assert (await send(gw, token, borrower_id="B-2"))[0] == 202


async def test_inbound_stop_from_a_us_number(policy_gateway: Start, clock: FakeClock) -> None:
    clock.set(datetime(2026, 1, 15, 19, 0, tzinfo=UTC))  # 14:00 in New York
    gw = await policy_gateway()
    token = await gw.key()
    await gw.app[STORE].put_client(
        Client(id="acme", policy="us-fdcpa"), webhook_secret=None, create=False
    )
    code = {"to": US_NY, "purpose": "verification_code", "text": "Acme: your code is 482913."}
    first = (await send(gw, token, **code))[1]["id"]
    await wait_for(lambda: first in sent_ids(gw), what="a message through outbox")
    contact = gw.app[CONTACT]
    assert contact.on_inbound in gw.app[INBOUND_HANDLERS]  # the provider-callback hook
    await contact.on_inbound("outbox", InboundSms(sender=US_NY, text="Stop"))
    resp = await post(gw, token, "/v1/opt-outs/query", {"to": US_NY})
    assert await resp.json() == {"opted_out": True, "scopes": ["all"]}
    status, body, _ = await send(gw, token, to=US_NY, purpose="repayment_reminder",
                                 text=US_REMINDER)  # fmt: skip
    # the content stage's appended FDCPA disclosure comes first; the opt-out blocks
    assert status == 422 and "opt_out" in {f["rule"] for f in body["findings"]}


async def test_marketing_needs_a_consent(policy_gateway: Start) -> None:
    gw = await policy_gateway(dispatch=False)
    token = await gw.key()
    status, body, _ = await send(gw, token, purpose="marketing", text=MARKETING)
    assert status == 422 and [f["rule"] for f in body["findings"]] == ["no_consent"]
    consent = {"to": CN_MOBILE, "scope": "marketing", "evidence": "signed 2026-01-02"}
    resp = await post(gw, token, "/v1/consents", consent)
    assert resp.status == 201
    assert (await send(gw, token, purpose="marketing", text=MARKETING))[0] == 202
    resp = await post(gw, token, "/v1/consents/delete", {"to": CN_MOBILE})
    assert resp.status == 200 and (await resp.json())["consented"] is False
    assert (await send(gw, token, purpose="marketing", text=MARKETING))[0] == 422


async def test_deleting_an_opt_out_is_admin_only_and_audited(policy_gateway: Start) -> None:
    gw = await policy_gateway(dispatch=False)
    send_key, admin = await gw.key(), await gw.key(scopes=("admin",))
    await post(gw, send_key, "/v1/opt-outs", {"to": CN_MOBILE, "scope": "all"})
    body = {"to": CN_MOBILE, "reason": "borrower called to re-subscribe, ticket 88"}
    assert (await post(gw, send_key, "/v1/opt-outs/delete", body)).status == 403
    resp = await post(gw, admin, "/v1/opt-outs/delete", body)
    assert resp.status == 200 and await resp.json() == {"opted_out": False, "scopes": []}
    assert (await send(gw, send_key))[0] == 202
    records = [
        json.loads(line)
        for segment in (gw.settings.base_dir / "var" / "audit").glob("*.jsonl")
        for line in segment.read_text().splitlines()
    ]
    [record] = [r for r in records if r["event"] == "opt_out_deleted"]
    assert record["clear"]["client"] == "acme" and record["clear"]["to_hash"]
    raw = json.dumps(record, ensure_ascii=False)
    assert "13812345678" not in raw and "ticket 88" not in raw


async def test_opt_out_endpoints_validate(policy_gateway: Start) -> None:
    gw = await policy_gateway(dispatch=False)
    token = await gw.key()
    cases = [
        ("/v1/opt-outs", {"to": CN_MOBILE, "scope": "everything"}),
        ("/v1/opt-outs", {"to": "+86138", "scope": "all"}),
        ("/v1/opt-outs", {"to": CN_MOBILE}),
        ("/v1/opt-outs/query", {"to": CN_MOBILE, "extra": 1}),
        ("/v1/consents", {"to": CN_MOBILE, "scope": "collection", "evidence": "x"}),
        ("/v1/consents", {"to": CN_MOBILE, "scope": "marketing"}),
    ]
    for path, body in cases:
        resp = await post(gw, token, path, body)
        assert resp.status == 400, (path, body)
        assert "138" not in await resp.text()
    resp = await gw.http.post("/v1/opt-outs/query", json={"to": CN_MOBILE})
    assert resp.status == 401
