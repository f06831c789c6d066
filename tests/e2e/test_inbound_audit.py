"""Opt-outs and opt-ins caused by an inbound reply, and opt-outs added over the
API, are audited (the number sealed, never in clear); the opt-out itself is
recorded first, so an audit outage never keeps it from taking effect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.appkeys import AUDIT, CONTACT, STORE
from gateway.audit import AuditUnavailable
from gateway.audit_read import iter_lines, opened
from gateway.audit_setup import open_keyring
from gateway.clock import FakeClock
from providers.base import InboundSms
from tests.conftest import CN_MOBILE, Gateway, auth, wait_for
from tests.integration.test_audit_fail_closed import disk_full
from tests.policy.conftest import DAYTIME, OVERDUE, gateway_starter

Start = Callable[..., Awaitable[Gateway]]
NATIONAL = CN_MOBILE.removeprefix("+86")


@pytest.fixture
def policy_gateway(start_gateway: Start) -> Start:
    return gateway_starter(start_gateway, FakeClock(DAYTIME))


async def sent_through_outbox(gw: Gateway, token: str) -> None:
    body = {"to": CN_MOBILE, "borrower_id": "B-1", "purpose": "overdue_notice", "text": OVERDUE}
    resp = await gw.http.post("/v1/messages", json=body, headers=auth(token))
    assert resp.status == 202
    mid = (await resp.json())["id"]
    await wait_for(lambda: mid in {m["id"] for m in gw.outbox()}, what="a message through outbox")


def segment_text(gw: Gateway) -> str:
    folder = gw.settings.audit.dir
    return "".join(p.read_text() for p in sorted(folder.glob("*.jsonl")))


async def records(gw: Gateway, event: str) -> list[dict[str, Any]]:
    """The records of ``event`` as ``lendsms audit show`` reads them (opened)."""
    keys = open_keyring(gw.settings, gw.app[STORE])
    found = [r for r in iter_lines(gw.settings.audit.dir) if r and r.get("event") == event]
    return [await opened(r, keys) for r in found]


async def opted_out(gw: Gateway, token: str) -> bool:
    resp = await gw.http.post("/v1/opt-outs/query", json={"to": CN_MOBILE}, headers=auth(token))
    return bool((await resp.json())["opted_out"])


async def test_inbound_stop_and_start_are_audited_with_the_number_sealed(
    policy_gateway: Start,
) -> None:
    gw = await policy_gateway()
    token = await gw.key()
    await sent_through_outbox(gw, token)
    contact = gw.app[CONTACT]
    await contact.on_inbound("outbox", InboundSms(sender=CN_MOBILE.lstrip("+"), text="退订"))
    assert await opted_out(gw, token)
    [stop] = await records(gw, "opt_out_inbound")
    assert stop["clear"] == {"client": "acme", "provider": "outbox", "scope": "all",
                             "match": "keyword", "to_hash": contact.phone(CN_MOBILE)}  # fmt: skip
    assert stop["data"] == {"to": CN_MOBILE, "text": "退订"}
    await contact.on_inbound("outbox", InboundSms(sender=CN_MOBILE, text="开通"))
    assert not await opted_out(gw, token)
    [start] = await records(gw, "opt_in_inbound")
    assert start["clear"]["match"] == "start_keyword" and start["clear"]["scope"] is None
    raw = segment_text(gw)
    assert NATIONAL not in raw and "退订" not in raw


async def test_a_reply_without_a_keyword_writes_nothing(policy_gateway: Start) -> None:
    gw = await policy_gateway()
    token = await gw.key()
    await sent_through_outbox(gw, token)
    await gw.app[CONTACT].on_inbound("outbox", InboundSms(sender=CN_MOBILE, text="你好"))
    assert await records(gw, "opt_out_inbound") == []


async def test_inbound_stop_is_honoured_while_the_audit_log_is_down(
    policy_gateway: Start, caplog: pytest.LogCaptureFixture
) -> None:
    gw = await policy_gateway()
    token = await gw.key()
    await sent_through_outbox(gw, token)
    repair = disk_full(gw)
    try:
        with pytest.raises(AuditUnavailable):  # the callback answers 503: the provider retries
            await gw.app[CONTACT].on_inbound("outbox", InboundSms(sender=CN_MOBILE, text="STOP"))
        assert await opted_out(gw, token)  # recorded all the same
    finally:
        repair()
    assert NATIONAL not in caplog.text
    assert "inbound opt-outs recorded but not audited" in caplog.text
    await gw.app[AUDIT].probe()
    # the provider's retry: the same opt-out again (idempotent), now audited
    await gw.app[CONTACT].on_inbound("outbox", InboundSms(sender=CN_MOBILE, text="STOP"))
    [record] = await records(gw, "opt_out_inbound")
    assert record["data"]["to"] == CN_MOBILE


async def test_opt_out_over_the_api_is_audited(policy_gateway: Start) -> None:
    gw = await policy_gateway(dispatch=False)
    token = await gw.key()
    body = {"to": CN_MOBILE, "scope": "marketing"}
    resp = await gw.http.post("/v1/opt-outs", json=body, headers=auth(token))
    assert resp.status == 201
    [record] = await records(gw, "opt_out_added")
    assert record["clear"]["client"] == "acme" and record["clear"]["scope"] == "marketing"
    assert record["clear"]["to_hash"] and record["data"] == {"to": CN_MOBILE}
    assert NATIONAL not in segment_text(gw)


async def test_opt_out_over_the_api_with_the_audit_log_down(policy_gateway: Start) -> None:
    gw = await policy_gateway(dispatch=False)
    token = await gw.key()
    repair = disk_full(gw)
    try:
        body = {"to": CN_MOBILE, "scope": "all"}
        resp = await gw.http.post("/v1/opt-outs", json=body, headers=auth(token))
        assert resp.status == 503 and NATIONAL not in await resp.text()
    finally:
        repair()
    assert await opted_out(gw, token)  # honoured before its record; a retry audits it
