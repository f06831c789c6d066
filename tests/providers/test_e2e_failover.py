"""Acceptance 3, end to end through the HTTP API: Tencent Cloud primary, Alibaba Cloud
secondary, both fake servers that check signatures. The primary throttles and the
message goes through the secondary; the primary's circuit opens after repeated
failures and closes after it recovers; a receipt callback marks a message delivered;
a forged one is 403 and changes nothing."""

from __future__ import annotations

import json
from typing import Any

from gateway.appkeys import DISPATCHER
from providers.circuit import CircuitState
from tests.conftest import auth, wait_for
from tests.providers.fake_cn import (
    ALI_ID,
    ALI_SECRET,
    TC_ID,
    TC_KEY,
    FakeAliyun,
    FakeTencent,
    tencent_error,
)

OTP = "【安心消费金融】您的验证码是{code}，5分钟内有效。"
PHONES = ["+8613812345678", "+8613912345678", "+8615012345678", "+8618612345678"]


def overrides(tc: FakeTencent, ali: FakeAliyun) -> dict[str, Any]:
    return {
        "providers": {
            "tc": {"type": "tencent", "endpoint": tc.url, "secret_id": TC_ID,
                   "secret_key": TC_KEY, "sdk_app_id": "1400006666", "timeout": 2.0,
                   "callback_token": "tc-callback-token", "attempts": 1,
                   "circuit": {"min_calls": 2, "failure_rate": 0.5, "open_seconds": 1.0}},
            "ali": {"type": "aliyun", "endpoint": ali.url, "access_key_id": ALI_ID,
                    "access_key_secret": ALI_SECRET, "signature": "v3", "timeout": 2.0,
                    "callback_token": "ali-callback-token"},
        },
        "routes": [{"match": {"country": "CN"}, "providers": ["tc", "ali"]},
                   {"providers": ["outbox"]}],
        "templates": {"otp_v1": {"purpose": "verification_code", "text": OTP,
                                 "codes": {"tc": "1234567", "ali": "SMS_100"}}},
    }  # fmt: skip


async def send(gw: Any, key: str, phone: str, n: int) -> str:
    body = {"to": phone, "borrower_id": f"B-{n}", "purpose": "verification_code",
            "template": "otp_v1", "params": {"code": f"{n:06d}"}}  # fmt: skip
    r = await gw.http.post("/v1/messages", json=body, headers=auth(key))
    assert r.status == 202, await r.text()
    return str((await r.json())["id"])


async def message(gw: Any, key: str, mid: str) -> dict[str, Any]:
    r = await gw.http.get(f"/v1/messages/{mid}", headers=auth(key))
    assert r.status == 200
    return dict(await r.json())


async def until(gw: Any, key: str, mid: str, status: str) -> dict[str, Any]:
    async def reached() -> bool:
        return (await message(gw, key, mid))["status"] == status

    await wait_for(reached, what=f"{mid} {status}")
    return await message(gw, key, mid)


async def test_failover_circuit_and_receipts(start_gateway: Any, fakes: Any) -> None:
    tc, ali = await fakes(FakeTencent()), await fakes(FakeAliyun())
    tc.script = [tencent_error("RequestLimitExceeded")] * 2  # throttles twice, then recovers
    gw = await start_gateway(**overrides(tc, ali))
    key = await gw.key()
    circuit = gw.app[DISPATCHER].guards["tc"].circuit

    # 1. the primary throttles: the message goes through the secondary
    first = await until(gw, key, await send(gw, key, PHONES[0], 1), "sent")
    assert first["provider"] == "ali" and first["attempts"] == 2
    assert [e["detail"] for e in first["events"]][1:4] == [
        "attempt 1 via tc", "retry: tc said RequestLimitExceeded", "attempt 2 via ali",
    ]  # fmt: skip
    assert tc.received[0]["TemplateId"] == "1234567"
    assert ali.received[0]["TemplateCode"] == "SMS_100"
    assert json.loads(ali.received[0]["TemplateParam"]) == {"code": "000001"}

    # 2. a second failure opens the primary's circuit
    second = await until(gw, key, await send(gw, key, PHONES[1], 2), "sent")
    assert second["provider"] == "ali"
    assert circuit.state is CircuitState.OPEN and tc.calls == 2

    # 3. while it is open the primary is not even asked
    third = await until(gw, key, await send(gw, key, PHONES[2], 3), "sent")
    assert (third["provider"], third["attempts"]) == ("ali", 1) and tc.calls == 2
    ready = await (await gw.http.get("/readyz")).json()
    assert ready["providers"]["tc"]["circuit"] == "open"

    # 4. after open_seconds a probe goes to the recovered primary and closes the circuit
    await wait_for(lambda: circuit.state is CircuitState.HALF_OPEN, what="half-open")
    fourth = await until(gw, key, await send(gw, key, PHONES[3], 4), "sent")
    assert (fourth["provider"], fourth["attempts"]) == ("tc", 1)
    assert circuit.state is CircuitState.CLOSED
    assert tc.rejected == [] and ali.rejected == []  # every request was signed right

    # 5. receipts: Alibaba's batch push (by BizId, with OutId) and Tencent's (by SerialNo)
    biz_id = ali.records[0]["biz_id"]
    ali_push = [{"phone_number": "13812345678", "success": True, "err_code": "DELIVERED",
                 "biz_id": biz_id, "out_id": first["id"], "sms_size": "1",
                 "send_time": "2026-11-28 10:00:00"}]  # fmt: skip
    r = await gw.http.post("/callbacks/ali/status?token=ali-callback-token", json=ali_push)
    assert r.status == 200 and await r.json() == {"code": 0, "msg": "接收成功"}
    delivered = await message(gw, key, first["id"])
    assert delivered["status"] == "delivered"
    assert delivered["events"][-1]["detail"] == "receipt from ali: DELIVERED"

    # a valid Alibaba push naming a message that went through Tencent changes nothing
    cross = [{"success": False, "biz_id": "1^0", "out_id": fourth["id"], "err_code": "X"}]
    r = await gw.http.post("/callbacks/ali/status?token=ali-callback-token", json=cross)
    assert r.status == 200 and (await message(gw, key, fourth["id"]))["status"] == "sent"

    serial = tc.records[-1]["serial"]
    tc_push = [{"mobile": "18612345678", "nationcode": "86", "report_status": "FAIL",
                "errmsg": "MK:0001", "description": "failed", "sid": serial}]  # fmt: skip
    r = await gw.http.post("/callbacks/tc/status?token=tc-callback-token", json=tc_push)
    assert r.status == 200 and await r.json() == {"result": 0, "errmsg": "OK"}
    assert (await message(gw, key, fourth["id"]))["status"] == "undelivered"

    # 6. forged receipts are 403 and change nothing
    biz3 = ali.records[2]["biz_id"]
    forged = [{"success": True, "biz_id": biz3, "out_id": third["id"], "err_code": "DELIVERED"}]
    for url in ("/callbacks/ali/status?token=guess", "/callbacks/ali/status",
                "/callbacks/tc/status?token=ali-callback-token"):  # fmt: skip
        r = await gw.http.post(url, json=forged)
        assert r.status == 403, url
    after = await message(gw, key, third["id"])
    assert after["status"] == "sent" and len(after["events"]) == len(third["events"])

    # 7. a duplicate and a contradicting late receipt are recorded and change nothing
    late = [{**ali_push[0], "success": False, "err_code": "MK:0004"}]
    for push in (ali_push, late):
        r = await gw.http.post("/callbacks/ali/status?token=ali-callback-token", json=push)
        assert r.status == 200
    again = await message(gw, key, first["id"])
    assert again["status"] == "delivered" and again["events"] == delivered["events"]


async def test_what_no_route_can_carry_is_422(start_gateway: Any, fakes: Any) -> None:
    tc, ali = await fakes(FakeTencent()), await fakes(FakeAliyun())
    gw = await start_gateway(dispatch=False, **overrides(tc, ali))
    key = await gw.key()
    free_text = {"to": PHONES[0], "borrower_id": "B-1", "purpose": "repayment_reminder",
                 "text": "【安心消费金融】您本期应还1,086.40元，最后还款日12月8日。"}  # fmt: skip
    r = await gw.http.post("/v1/messages", json=free_text, headers=auth(key))
    assert r.status == 422
    problem = await r.json()
    assert problem["type"].endswith("/unroutable")
    assert "templates only" in problem["detail"] and "13812345678" not in json.dumps(problem)
    us = {**free_text, "to": "+12015550123", "text": "Your payment of $120 is due Dec 8."}
    r = await gw.http.post("/v1/messages", json=us, headers=auth(key))
    assert r.status == 202  # the catch-all route's outbox takes free text


async def test_callback_routes_answer_only_for_callback_providers(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    for url in ("/callbacks/nope/status", "/callbacks/outbox/inbound"):
        r = await gw.http.post(url, data=b"[]")
        assert r.status == 404
