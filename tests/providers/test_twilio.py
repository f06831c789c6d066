"""The twilio adapter against a fake Messages API; callbacks with X-Twilio-Signature."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from providers.base import (
    CallbackMalformed,
    CallbackRejected,
    CallbackRequest,
    DeliveryState,
    Outcome,
    ProviderConfigError,
    ProviderError,
)
from providers.http import AMBIGUOUS
from providers.signing import twilio as twilio_sig
from providers.twilio import ERRORS
from tests.providers.conftest import FREE_TEXT, closed_port_url
from tests.providers.fake_intl import TW_SID, TW_TOKEN, FakeTwilio, twilio_error
from tests.providers.fakes import Delay, Reply

STATUS = {"20429": 429, "20003": 401, "20404": 404, "20005": 401}


def options(fake: FakeTwilio, **extra: Any) -> dict[str, Any]:
    return {"endpoint": fake.url, "account_sid": TW_SID, "auth_token": TW_TOKEN,
            "from": "+15005550006", "timeout": 0.5,
            "status_callback": "https://gw.example/callbacks/tw/status", **extra}  # fmt: skip


async def test_send(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeTwilio())
    tw = await adapters("twilio", options(fake))
    result = await tw.send(FREE_TEXT)
    assert result.outcome is Outcome.SENT and result.provider_message_id.startswith("SM")
    assert fake.received == [
        {"To": "+12015550123", "Body": FREE_TEXT.body, "From": "+15005550006",
         "StatusCallback": "https://gw.example/callbacks/tw/status"}
    ]  # fmt: skip


async def test_messaging_service_instead_of_from(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeTwilio())
    opts = {k: v for k, v in options(fake).items() if k != "from"}
    tw = await adapters("twilio", {**opts, "messaging_service_sid": "MG123"})
    assert (await tw.send(FREE_TEXT)).outcome is Outcome.SENT
    assert fake.received[0]["MessagingServiceSid"] == "MG123"
    with pytest.raises(ProviderConfigError, match="exactly one"):
        await adapters("twilio", {**opts, "from": "+1", "messaging_service_sid": "MG1"})


async def test_a_wrong_token_is_refused(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeTwilio())
    tw = await adapters("twilio", {**options(fake), "auth_token": "nope"})
    result = await tw.send(FREE_TEXT)
    assert fake.rejected == ["20003"]
    assert (result.outcome, result.code) == (Outcome.SWITCH_PROVIDER, "20003")


@pytest.mark.parametrize(("code", "expected"), sorted(ERRORS.codes.items()))
async def test_every_mapped_code(fakes: Any, adapters: Any, code: str, expected: object) -> None:
    fake = await fakes(FakeTwilio())
    tw = await adapters("twilio", options(fake))
    fake.script = [twilio_error(int(code), STATUS.get(code, 400))]
    result = await tw.send(FREE_TEXT)
    assert (result.outcome, result.code) == (expected, code)


async def test_429_honours_retry_after(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeTwilio())
    tw = await adapters("twilio", options(fake))
    reply = twilio_error(20429, 429)
    reply.headers["Retry-After"] = "7"
    fake.script = [reply]
    result = await tw.send(FREE_TEXT)
    assert (result.outcome, result.retry_after) == (Outcome.RETRY, 7)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [(Reply(500, {"code": 20500, "status": 500}), Outcome.RETRY),
     (Reply(503, "", content_type="text/plain"), Outcome.RETRY),
     (Reply(502, "", content_type="text/plain"), AMBIGUOUS),
     (twilio_error(21999), Outcome.PERMANENT)],
)  # fmt: skip
async def test_server_errors(fakes: Any, adapters: Any, reply: Reply, expected: object) -> None:
    fake = await fakes(FakeTwilio())
    tw = await adapters("twilio", options(fake))
    fake.script = [reply]
    if expected == AMBIGUOUS:
        with pytest.raises(ProviderError):
            await tw.send(FREE_TEXT)
    else:
        assert (await tw.send(FREE_TEXT)).outcome is expected


async def test_a_timeout_is_ambiguous_and_a_refused_connection_is_not(
    fakes: Any, adapters: Any
) -> None:
    fake = await fakes(FakeTwilio())
    tw = await adapters("twilio", options(fake, timeout=0.2))
    fake.script = [Delay(1.0)]
    with pytest.raises(ProviderError):
        await tw.send(FREE_TEXT)
    down = await adapters("twilio", {**options(fake), "endpoint": closed_port_url()}, name="q")
    assert (await down.send(FREE_TEXT)).outcome is Outcome.RETRY


async def test_fetch_resolves_a_known_sid(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeTwilio())
    tw = await adapters("twilio", options(fake))
    sid = (await tw.send(FREE_TEXT)).provider_message_id
    cases = [("queued", DeliveryState.ACCEPTED), ("delivered", DeliveryState.DELIVERED),
             ("undelivered", DeliveryState.UNDELIVERED)]  # fmt: skip
    for status, state in cases:
        fake.statuses[sid] = status
        found = await tw.query_status(FREE_TEXT.message_id, sid)
        assert found is not None and found.state is state
    gone = await tw.query_status(FREE_TEXT.message_id, "SMnothere")
    assert gone is not None and gone.state is DeliveryState.NOT_FOUND
    assert await tw.query_status(FREE_TEXT.message_id, None) is None  # no sid: cannot ask


URL = "https://gw.example/callbacks/tw/status"


def signed(params: dict[str, str], url: str = URL, token: str = TW_TOKEN) -> CallbackRequest:
    header = twilio_sig.signature(token, url, params.items())
    body = urlencode(params).encode()
    return CallbackRequest(url, "POST", {"x-twilio-signature": header}, [], body)


async def test_status_callbacks_are_verified(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeTwilio())
    tw = await adapters("twilio", options(fake))
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "AccountSid": TW_SID,
              "ApiVersion": "2010-04-01", "RawDlrDoneDate": "2506011200"}  # fmt: skip
    receipts, reply = tw.parse_receipts(signed(params))
    assert [(r.provider_message_id, r.state) for r in receipts] == [
        ("SM1", DeliveryState.DELIVERED)
    ]
    assert reply.status == 200
    failed = {**params, "MessageStatus": "undelivered", "ErrorCode": "30007"}
    receipts, _ = tw.parse_receipts(signed(failed))
    assert (receipts[0].state, receipts[0].code) == (DeliveryState.UNDELIVERED, "30007")
    forged = signed(params, token="guess")
    with pytest.raises(CallbackRejected):
        tw.parse_receipts(forged)
    tampered = signed(params)
    tampered = CallbackRequest(URL, "POST", tampered.headers, [],
                               tampered.body.replace(b"delivered", b"undelivered"))  # fmt: skip
    with pytest.raises(CallbackRejected):
        tw.parse_receipts(tampered)
    with pytest.raises(CallbackRejected):
        tw.parse_receipts(signed({**params, "AccountSid": "ACother"}))
    with pytest.raises(CallbackMalformed):
        tw.parse_receipts(signed({"AccountSid": TW_SID}))


async def test_public_url_behind_a_proxy_and_inbound(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeTwilio())
    tw = await adapters("twilio", options(fake, public_url="https://sms.lender.example"))
    params = {"MessageSid": "SM9", "From": "+12015550123", "To": "+15005550006",
              "Body": "STOP", "AccountSid": TW_SID}  # fmt: skip
    public = "https://sms.lender.example/callbacks/tw/inbound"
    req = signed(params, url=public)
    seen_by_gateway = CallbackRequest("http://10.0.0.5:8080/callbacks/tw/inbound", "POST",
                                      req.headers, [], req.body)  # fmt: skip
    replies, reply = tw.parse_inbound(seen_by_gateway)
    assert [(r.sender, r.text, r.provider_message_id) for r in replies] == [
        ("+12015550123", "STOP", "SM9")
    ]
    assert reply.content_type == "text/xml"
