"""DESIGN.md invariant 4: after a traffic mix, neither the logs nor /metrics
hold a phone number, body text, verification code or API key."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gateway.logs import JsonFormatter
from tests.conftest import auth, wait_for

NUMBERS = ["+8613812345678", "13812345678", "+12015550123", "2015550123"]
CODE = "271846"
TEXTS = [
    f"【易贷通】验证码{CODE}，用于绑定银行卡，10分钟内有效。",
    "【安心消费金融】尊敬的王小明，您本期应还1,086.40元。",
    "Your payment to Acme Lending of $120.00 is due Dec 8. Reply STOP to opt out.",
]


async def test_logs_and_metrics_hold_no_personal_data(
    start_gateway: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gw = await start_gateway()
    token = await gw.key()
    secret = token.split("_", 2)[2]
    sent = 0
    for n, text in enumerate(TEXTS):
        for to in (NUMBERS[0], NUMBERS[2]):
            r = await gw.http.post(
                "/v1/messages",
                json={"to": to, "borrower_id": f"B-{n}", "purpose": "service", "text": text},
                headers={**auth(token), "Idempotency-Key": f"{to}-{n}"},
            )
            assert r.status == 202
            sent += 1
    # refusals that carry personal data in the request
    await gw.http.post(
        "/v1/messages", json={"to": NUMBERS[1], "text": TEXTS[0]}, headers=auth(token)
    )
    await gw.http.post(
        "/v1/messages",
        json={"to": "+86138123", "borrower_id": "B", "purpose": "x", "text": TEXTS[1]},
        headers=auth(token),
    )
    await gw.http.post("/v1/messages", json={"to": NUMBERS[0]}, headers=auth(token + "x"))
    await wait_for(lambda: len(gw.outbox()) == sent, what="all SMS sent")
    metrics = await (await gw.http.get("/metrics")).text()

    formatter = JsonFormatter()
    logs = "\n".join(formatter.format(r) + " " + repr(r.args) for r in caplog.records)
    assert "request" in logs and "lendsms_messages_total" in metrics  # both were really captured
    forbidden = [*NUMBERS, CODE, secret, token, "王小明", *(t[8:20] for t in TEXTS)]
    for haystack, name in ((logs, "logs"), (metrics, "metrics")):
        for needle in forbidden:
            assert needle not in haystack, f"{name} contain personal data or a key"
