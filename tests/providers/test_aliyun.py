"""The aliyun adapter against a fake dysmsapi that checks RPC V2 / V3 signatures."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from providers.aliyun import ERRORS
from providers.base import (
    CallbackMalformed,
    CallbackRejected,
    CallbackRequest,
    DeliveryState,
    Outcome,
    ProviderError,
)
from providers.http import AMBIGUOUS
from tests.providers.conftest import SMS, closed_port_url
from tests.providers.fake_cn import ALI_ID, ALI_SECRET, FakeAliyun, aliyun_error
from tests.providers.fakes import Delay, Reply

POP_STATUS = {"Throttling": 400, "InternalError": 500, "ServiceUnavailable": 503,
              "SignatureDoesNotMatch": 403, "Forbidden": 403, "Forbidden.RiskControl": 403,
              "Forbidden.UserVerification": 403, "InvalidAccessKeyId.NotFound": 404}  # fmt: skip


def options(fake: FakeAliyun, **extra: Any) -> dict[str, Any]:
    return {"endpoint": fake.url, "access_key_id": ALI_ID, "access_key_secret": ALI_SECRET,
            "timeout": 0.5, "callback_token": "cb-token", **extra}  # fmt: skip


@pytest.mark.parametrize("scheme", ["v2", "v3"])
async def test_send_is_signed_and_accepted(fakes: Any, adapters: Any, scheme: str) -> None:
    fake = await fakes(FakeAliyun())
    ali = await adapters("aliyun", options(fake, signature=scheme))

    result = await ali.send(SMS)

    assert result.outcome is Outcome.SENT and result.provider_message_id.endswith("^0")
    assert fake.rejected == []
    sent = fake.received[0]
    assert sent["PhoneNumbers"] == "13812345678"  # mainland: the national number
    assert sent["SignName"] == "安心消费金融"  # taken from the body's 【】
    assert sent["TemplateCode"] == "SMS_100" and sent["OutId"] == "msg_0001"
    assert json.loads(sent["TemplateParam"]) == {"code": "123456"}


@pytest.mark.parametrize("scheme", ["v2", "v3"])
async def test_a_wrong_secret_is_refused_by_the_fake(
    fakes: Any, adapters: Any, scheme: str
) -> None:
    fake = await fakes(FakeAliyun())
    ali = await adapters("aliyun", {**options(fake, signature=scheme), "access_key_secret": "nope"})
    result = await ali.send(SMS)
    assert fake.rejected == ["SignatureDoesNotMatch"] and fake.received == []
    assert (result.outcome, result.code) == (Outcome.SWITCH_PROVIDER, "SignatureDoesNotMatch")


@pytest.mark.parametrize(("code", "expected"), sorted(ERRORS.codes.items()))
async def test_every_mapped_code(fakes: Any, adapters: Any, code: str, expected: object) -> None:
    fake = await fakes(FakeAliyun())
    ali = await adapters("aliyun", options(fake))
    fake.script = [aliyun_error(code, POP_STATUS.get(code, 200 if "." in code else 400))]
    if expected == AMBIGUOUS:
        with pytest.raises(ProviderError):
            await ali.send(SMS)
        return
    result = await ali.send(SMS)
    assert (result.outcome, result.code) == (expected, code)


@pytest.mark.parametrize(
    ("message", "seconds"),
    [("触发分钟级流控Permits:1", 60), ("触发小时级流控Permits:5", 3600),
     ("触发天级流控Permits:10", 86400)],
)  # fmt: skip
async def test_business_limit_defers_by_its_window(
    fakes: Any, adapters: Any, message: str, seconds: int
) -> None:
    fake = await fakes(FakeAliyun())
    ali = await adapters("aliyun", options(fake))
    fake.script = [aliyun_error("isv.BUSINESS_LIMIT_CONTROL", 200, message)]
    result = await ali.send(SMS)
    assert result.outcome is Outcome.RETRY_LATER and result.retry_after == seconds


async def test_unknown_business_code_is_permanent(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeAliyun())
    ali = await adapters("aliyun", options(fake))
    fake.script = [aliyun_error("isv.SOMETHING_NEW", 200)]
    assert (await ali.send(SMS)).outcome is Outcome.PERMANENT


@pytest.mark.parametrize(
    ("reply", "expected"),
    [(Reply(500, "oops", content_type="text/plain"), Outcome.RETRY),
     (Reply(503, "busy", content_type="text/plain"), Outcome.RETRY),
     (aliyun_error("ServiceUnavailable", 503), Outcome.RETRY),
     (Reply(502, "bad gateway", content_type="text/plain"), AMBIGUOUS),
     (Reply(504, "gateway timeout", content_type="text/plain"), AMBIGUOUS),
     (aliyun_error("SomethingNew", 500), AMBIGUOUS)],
)  # fmt: skip
async def test_server_errors(fakes: Any, adapters: Any, reply: Reply, expected: object) -> None:
    fake = await fakes(FakeAliyun())
    ali = await adapters("aliyun", options(fake))
    fake.script = [reply]
    if expected == AMBIGUOUS:
        with pytest.raises(ProviderError):
            await ali.send(SMS)
    else:
        assert (await ali.send(SMS)).outcome is expected


async def test_a_timeout_is_ambiguous(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeAliyun())
    ali = await adapters("aliyun", options(fake, timeout=0.2))
    fake.script = [Delay(1.0)]
    with pytest.raises(ProviderError):
        await ali.send(SMS)
    assert ali.counts["ambiguous"] == 1


async def test_a_refused_connection_is_a_plain_retry(adapters: Any) -> None:
    ali = await adapters("aliyun", {"endpoint": closed_port_url(), "access_key_id": ALI_ID,
                                    "access_key_secret": ALI_SECRET})  # fmt: skip
    result = await ali.send(SMS)
    assert result.outcome is Outcome.RETRY and result.code.startswith("connect_error")


async def test_without_a_template_code_it_cannot_carry(fakes: Any, adapters: Any) -> None:
    from dataclasses import replace

    fake = await fakes(FakeAliyun())
    ali = await adapters("aliyun", options(fake))
    result = await ali.send(replace(SMS, template_code=None))
    assert (result.outcome, result.code) == (Outcome.SWITCH_PROVIDER, "no_template_code")
    assert fake.calls == 0


@pytest.mark.parametrize(
    ("send_status", "state"),
    [(1, DeliveryState.ACCEPTED), (2, DeliveryState.UNDELIVERED), (3, DeliveryState.DELIVERED)],
)
async def test_query_send_details_resolves_an_ambiguous_attempt(
    fakes: Any, adapters: Any, send_status: int, state: DeliveryState
) -> None:
    fake = await fakes(FakeAliyun())
    ali = await adapters("aliyun", options(fake, signature="v3"))
    fake.script = [Delay(1.0)]  # the provider takes it, the answer never arrives
    with pytest.raises(ProviderError):
        await ali.send(SMS)
    fake.send_status = send_status
    found = await ali.query_sms_status(SMS, None, datetime.now(UTC))
    assert found is not None and found.state is state


async def test_query_send_details_not_found(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeAliyun())
    ali = await adapters("aliyun", options(fake))
    fake.script = [aliyun_error("isp.SYSTEM_ERROR", 200)]
    with pytest.raises(ProviderError):
        await ali.send(SMS)
    found = await ali.query_sms_status(SMS, None, datetime.now(UTC))
    assert found is not None and found.state is DeliveryState.NOT_FOUND


async def test_a_failing_query_stays_unknown(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeAliyun())
    ali = await adapters("aliyun", options(fake))
    fake.secret = "rotated"
    with pytest.raises(ProviderError):
        await ali.query_sms_status(SMS, None, datetime.now(UTC))


TOKEN = "cb-token"


def push(body: Any, token: str | None = TOKEN, remote: str = "127.0.0.1") -> CallbackRequest:
    query = [("token", token)] if token is not None else []
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return CallbackRequest(
        "https://gw.example/callbacks/ali/status", "POST", {}, query, raw, remote
    )


async def test_receipts_and_replies_are_parsed(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeAliyun())
    ali = await adapters("aliyun", options(fake))
    receipts, reply = ali.parse_receipts(push([
        {"phone_number": "13812345678", "success": True, "err_code": "DELIVERED",
         "biz_id": "900619746936498440^0", "out_id": "msg_0001", "sms_size": "1"},
        {"phone_number": "13812345678", "success": False, "err_code": "MK:0001",
         "biz_id": "900619746936498441^0"},
    ]))  # fmt: skip
    assert [(r.provider_message_id, r.state, r.code, r.message_id) for r in receipts] == [
        ("900619746936498440^0", DeliveryState.DELIVERED, "DELIVERED", "msg_0001"),
        ("900619746936498441^0", DeliveryState.UNDELIVERED, "MK:0001", None),
    ]
    assert json.loads(reply.body) == {"code": 0, "msg": "接收成功"} and reply.status == 200
    replies, _ = ali.parse_inbound(push([
        {"phone_number": "13812345678", "send_time": "2017-09-01 00:00:00", "content": "TD",
         "sign_name": "安心消费金融", "dest_code": "1234", "sequence_id": 1234567890}
    ]))  # fmt: skip
    assert [(r.sender, r.text, r.provider_message_id) for r in replies] == [
        ("+8613812345678", "TD", "1234567890")
    ]


async def test_pushes_need_the_token_and_the_shape(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeAliyun())
    ali = await adapters("aliyun", options(fake, callback_networks=["10.0.0.0/8"]))
    good = [{"success": True, "biz_id": "1^0"}]
    for bad in (push(good, token="wrong"), push(good, token=None), push(good)):
        with pytest.raises(CallbackRejected):  # the last: right token, wrong network
            ali.parse_receipts(bad)
    assert ali.parse_receipts(push(good, remote="10.1.2.3"))[0]
    with pytest.raises(CallbackMalformed):
        ali.parse_receipts(push(b"not json", remote="10.1.2.3"))
    with pytest.raises(CallbackMalformed):
        ali.parse_receipts(push([{"biz_id": "1^0"}], remote="10.1.2.3"))


async def test_secrets_stay_out_of_logs_and_reprs(
    fakes: Any, adapters: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake = await fakes(FakeAliyun())
    caplog.set_level(logging.DEBUG)
    ali = await adapters("aliyun", options(fake))
    fake.script = [aliyun_error("isv.MOBILE_NUMBER_ILLEGAL")]
    await ali.send(SMS)
    await ali.send(SMS)
    text = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records) + repr(ali)
    assert caplog.records
    for secret in (ALI_SECRET, "cb-token", "13812345678", "123456"):
        assert secret not in text
