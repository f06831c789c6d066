"""The generic webhook adapter: signed POSTs, answers, and signed pushes back."""

from __future__ import annotations

import json
import time
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
from providers.signing import webhook as lendsms_sig
from tests.providers.conftest import SMS, closed_port_url
from tests.providers.fake_intl import HOOK_SECRET, FakeWebhookReceiver
from tests.providers.fakes import Delay, Reply


def options(fake: FakeWebhookReceiver, **extra: Any) -> dict[str, Any]:
    return {"url": fake.url + "/sms", "secret": HOOK_SECRET, "timeout": 0.5, **extra}


async def test_send_is_signed(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeWebhookReceiver())
    hook = await adapters("webhook", options(fake))
    result = await hook.send(SMS)
    assert result.outcome is Outcome.SENT and result.provider_message_id.startswith("wh-")
    assert fake.received[0]["id"] == "msg_0001" and fake.received[0]["template_code"] == "SMS_100"
    assert fake.headers[0]["Idempotency-Key"] == "msg_0001"
    bad = await adapters("webhook", {**options(fake), "secret": "nope"}, name="bad")
    assert (await bad.send(SMS)).outcome is Outcome.SWITCH_PROVIDER  # 401


@pytest.mark.parametrize(
    ("reply", "expected"),
    [(Reply(409, {}), Outcome.SENT), (Reply(429, {}, {"Retry-After": "3"}), Outcome.RETRY),
     (Reply(400, {}), Outcome.PERMANENT), (Reply(403, {}), Outcome.SWITCH_PROVIDER),
     (Reply(500, {}), Outcome.RETRY), (Reply(502, {}), "ambiguous"),
     (Delay(1.0), "ambiguous")],
)  # fmt: skip
async def test_answers(fakes: Any, adapters: Any, reply: Any, expected: object) -> None:
    fake = await fakes(FakeWebhookReceiver())
    hook = await adapters("webhook", options(fake, timeout=0.2))
    fake.script = [reply]
    if expected == "ambiguous":
        with pytest.raises(ProviderError):
            await hook.send(SMS)
        return
    assert (await hook.send(SMS)).outcome is expected


async def test_refused_connection(adapters: Any) -> None:
    hook = await adapters("webhook", {"url": closed_port_url(), "secret": HOOK_SECRET})
    assert (await hook.send(SMS)).outcome is Outcome.RETRY


def push(body: Any, secret: str = HOOK_SECRET, at: float | None = None) -> CallbackRequest:
    raw = json.dumps(body).encode()
    header = lendsms_sig.sign(secret, int(at or time.time()), raw)
    return CallbackRequest("https://gw/callbacks/h/status", "POST",
                           {lendsms_sig.HEADER.lower(): header}, [], raw)  # fmt: skip


async def test_pushes(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeWebhookReceiver())
    hook = await adapters("webhook", options(fake))
    receipts, _ = hook.parse_receipts(push({"id": "wh-1", "status": "delivered"}))
    assert [(r.provider_message_id, r.state) for r in receipts] == [
        ("wh-1", DeliveryState.DELIVERED)
    ]
    replies, _ = hook.parse_inbound(push([{"from": "+12015550123", "text": "STOP"}]))
    assert [(r.sender, r.text) for r in replies] == [("+12015550123", "STOP")]
    for forged in (push({"id": "x", "status": "delivered"}, secret="guess"),
                   push({"id": "x", "status": "delivered"}, at=time.time() - 3600)):  # fmt: skip
        with pytest.raises(CallbackRejected):
            hook.parse_receipts(forged)
    with pytest.raises(CallbackMalformed):
        hook.parse_receipts(push({"status": "delivered"}))
