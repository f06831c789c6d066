"""The tencent adapter against a fake SMS API 2021-01-11 that checks TC3 signatures."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from providers.base import (
    CallbackMalformed,
    CallbackRejected,
    CallbackRequest,
    DeliveryState,
    Outcome,
    ProviderError,
)
from providers.http import AMBIGUOUS
from providers.tencent import ERRORS, _until_eight
from tests.providers.conftest import SMS, closed_port_url
from tests.providers.fake_cn import TC_ID, TC_KEY, FakeTencent, tencent_error, tencent_number_error
from tests.providers.fakes import Delay, Reply

TOKEN = "tc-callback"
# one code per prefix class, besides the exact ones
PREFIXED = {
    "RequestLimitExceeded.UinLimitExceeded": Outcome.RETRY,
    "InternalError.Timeout": AMBIGUOUS,
    "InternalError.SendAndRecvFail": AMBIGUOUS,
    "InternalError.OtherError": AMBIGUOUS,
    "InternalError.UnknownError": AMBIGUOUS,
    "AuthFailure.SignatureExpire": Outcome.SWITCH_PROVIDER,
    "UnauthorizedOperation.SerivceSuspendDueToArrears": Outcome.SWITCH_PROVIDER,
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": Outcome.SWITCH_PROVIDER,
    "InvalidParameterValue.TemplateParameterFormatError": Outcome.PERMANENT,
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter": Outcome.PERMANENT,
    "UnsupportedOperation.UnsuportedRegion": Outcome.PERMANENT,
    "SomethingNew": Outcome.PERMANENT,
}
ALL_CODES = sorted({**ERRORS.codes, **PREFIXED}.items())


def options(fake: FakeTencent, **extra: Any) -> dict[str, Any]:
    return {"endpoint": fake.url, "secret_id": TC_ID, "secret_key": TC_KEY,
            "sdk_app_id": "1400006666", "timeout": 0.5, "callback_token": TOKEN,
            **extra}  # fmt: skip


async def test_send_is_signed_and_accepted(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeTencent())
    tc = await adapters("tencent", options(fake))
    multi = replace(SMS, params={"days": "3", "amount": "1086.40"})

    result = await tc.send(multi)

    assert result.outcome is Outcome.SENT and result.provider_message_id.startswith("5000:")
    assert fake.rejected == []
    sent = fake.received[0]
    assert sent == {
        "PhoneNumberSet": ["+8613812345678"], "SmsSdkAppId": "1400006666",
        "TemplateId": "SMS_100", "SessionContext": "msg_0001", "SignName": "安心消费金融",
        "TemplateParamSet": ["3", "1086.40"],
    }  # fmt: skip


async def test_a_wrong_key_is_refused_by_the_fake(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeTencent())
    tc = await adapters("tencent", {**options(fake), "secret_key": "nope"})
    result = await tc.send(SMS)
    assert fake.rejected == ["AuthFailure.SignatureFailure"] and fake.received == []
    assert (result.outcome, result.code) == (
        Outcome.SWITCH_PROVIDER,
        "AuthFailure.SignatureFailure",
    )


async def test_a_skewed_clock_is_refused(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeTencent())
    tc = await adapters("tencent", options(fake))
    tc.clock = lambda: datetime.now(UTC).timestamp() - 600
    result = await tc.send(SMS)
    assert result.code == "AuthFailure.SignatureExpire"


@pytest.mark.parametrize(("code", "expected"), ALL_CODES)
@pytest.mark.parametrize("where", ["request", "number"])
async def test_every_mapped_code(
    fakes: Any, adapters: Any, code: str, expected: object, where: str
) -> None:
    fake = await fakes(FakeTencent())
    tc = await adapters("tencent", options(fake))
    fake.script = [tencent_error(code) if where == "request" else tencent_number_error(code)]
    if expected == AMBIGUOUS:
        with pytest.raises(ProviderError):
            await tc.send(SMS)
        return
    result = await tc.send(SMS)
    assert (result.outcome, result.code) == (expected, code)


@pytest.mark.parametrize(
    ("code", "seconds"),
    [("LimitExceeded.PhoneNumberThirtySecondLimit", 30),
     ("LimitExceeded.PhoneNumberOneHourLimit", 3600),
     ("LimitExceeded.PhoneNumberDailyLimit", 86400)],
)  # fmt: skip
async def test_frequency_limits_defer_by_their_window(
    fakes: Any, adapters: Any, code: str, seconds: int
) -> None:
    fake = await fakes(FakeTencent())
    tc = await adapters("tencent", options(fake))
    fake.script = [tencent_number_error(code)]
    result = await tc.send(SMS)
    assert result.outcome is Outcome.RETRY_LATER and result.retry_after == seconds


def test_marketing_window_waits_for_eight_in_china() -> None:
    assert _until_eight(datetime(2025, 6, 1, 22, 0, tzinfo=UTC)) == 2 * 3600  # 06:00 CST
    assert _until_eight(datetime(2025, 6, 1, 0, 0, tzinfo=UTC)) == 24 * 3600  # 08:00 CST


@pytest.mark.parametrize(
    ("reply", "expected"),
    [(Reply(500, "oops", content_type="text/plain"), Outcome.RETRY),
     (Reply(503, "", content_type="text/plain"), Outcome.RETRY),
     (Reply(504, "", content_type="text/plain"), AMBIGUOUS),
     (tencent_error("InternalError"), AMBIGUOUS)],
)  # fmt: skip
async def test_server_errors(fakes: Any, adapters: Any, reply: Reply, expected: object) -> None:
    fake = await fakes(FakeTencent())
    tc = await adapters("tencent", options(fake))
    fake.script = [reply]
    if expected == AMBIGUOUS:
        with pytest.raises(ProviderError):
            await tc.send(SMS)
    else:
        assert (await tc.send(SMS)).outcome is expected


async def test_a_timeout_is_ambiguous(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeTencent())
    tc = await adapters("tencent", options(fake, timeout=0.2))
    fake.script = [Delay(1.0)]
    with pytest.raises(ProviderError):
        await tc.send(SMS)


async def test_a_refused_connection_is_a_plain_retry(adapters: Any) -> None:
    tc = await adapters("tencent", {"endpoint": closed_port_url(), "secret_id": TC_ID,
                                    "secret_key": TC_KEY, "sdk_app_id": "1"})  # fmt: skip
    assert (await tc.send(SMS)).outcome is Outcome.RETRY


@pytest.mark.parametrize(
    ("report", "state"), [("SUCCESS", DeliveryState.DELIVERED), ("FAIL", DeliveryState.UNDELIVERED)]
)
async def test_pull_status_resolves_a_receipted_attempt(
    fakes: Any, adapters: Any, report: str, state: DeliveryState
) -> None:
    fake = await fakes(FakeTencent())
    tc = await adapters("tencent", options(fake))
    fake.script = [Delay(1.0)]
    with pytest.raises(ProviderError):
        await tc.send(SMS)
    fake.report_status = report
    found = await tc.query_sms_status(SMS, None, datetime.now(UTC))
    assert found is not None and found.state is state
    assert found.provider_message_id == fake.records[0]["serial"]


async def test_pull_status_without_a_receipt_cannot_say(fakes: Any, adapters: Any) -> None:
    """Not listed is not proof of not sent: still unknown while a receipt may come
    (ask again later), then unknown for good (the dispatcher fails it)."""
    fake = await fakes(FakeTencent())
    tc = await adapters("tencent", options(fake))
    fake.script = [Delay(1.0)]
    with pytest.raises(ProviderError):
        await tc.send(SMS)
    with pytest.raises(ProviderError, match="no receipt yet"):
        await tc.query_sms_status(SMS, None, datetime.now(UTC))
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    assert await tc.query_sms_status(SMS, None, long_ago) is None
    fake.secret_key = "rotated"
    with pytest.raises(ProviderError):
        await tc.query_sms_status(SMS, None, datetime.now(UTC))


def push(body: Any, token: str | None = TOKEN) -> CallbackRequest:
    query = [("token", token)] if token is not None else []
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return CallbackRequest("https://gw.example/callbacks/tc/status", "POST", {}, query, raw)


async def test_status_and_reply_pushes(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeTencent())
    tc = await adapters("tencent", options(fake))
    receipts, reply = tc.parse_receipts(push([
        {"user_receive_time": "2015-10-17 08:03:04", "nationcode": "86",
         "mobile": "13812345678", "report_status": "SUCCESS", "errmsg": "DELIVRD",
         "description": "用户短信送达成功", "sid": "5000:1"},
        {"mobile": "13812345678", "report_status": "FAIL", "errmsg": "MK:0005", "sid": "5000:2"},
    ]))  # fmt: skip
    assert [(r.provider_message_id, r.state, r.code) for r in receipts] == [
        ("5000:1", DeliveryState.DELIVERED, "DELIVRD"),
        ("5000:2", DeliveryState.UNDELIVERED, "MK:0005"),
    ]
    assert json.loads(reply.body) == {"result": 0, "errmsg": "OK"}
    replies, _ = tc.parse_inbound(push(
        {"extend": "", "mobile": "13812345678", "nationcode": "86", "sign": "安心消费金融",
         "text": "退订", "time": 1457336869}
    ))  # fmt: skip
    assert [(r.sender, r.text) for r in replies] == [("+8613812345678", "退订")]
    assert replies[0].received_at == datetime.fromtimestamp(1457336869, UTC)
    with pytest.raises(CallbackRejected):
        tc.parse_receipts(push([], token="forged"))
    with pytest.raises(CallbackMalformed):
        tc.parse_receipts(push([{"sid": "5000:1", "report_status": "MAYBE"}]))
    with pytest.raises(CallbackMalformed):
        tc.parse_inbound(push({"mobile": "1"}))
