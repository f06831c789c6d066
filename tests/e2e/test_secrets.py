"""Secrets never show: settings with known secrets (the three master keys, a
provider's credentials and callback token, a client's webhook secret, an API
key) go through repr/str, the JSON logs (including an unhandled error's
traceback), every error page, /openapi.json, /readyz, /metrics and /healthz;
none of the outputs holds any of them, raw or base64-decoded."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest

from gateway.appkeys import STORE
from gateway.logs import JsonFormatter
from gateway.models import Client
from gateway.pipeline import Draft, StageResult
from tests.conftest import CN_MOBILE, auth, random_key

TWILIO_SID = "AC" + "5ec7e7" * 5 + "00"
TWILIO_TOKEN = "tw1l10-t0ken-KNOWN-3c6f1d"
CALLBACK_TOKEN = "cb-token-KNOWN-9a8b7c6d"
WEBHOOK_SECRET = "whsec-KNOWN-1f2e3d4c5b6a"


class Explode:
    """A stage that fails the way a bug would (a generic error)."""

    name = "explode"

    async def __call__(self, draft: Draft) -> StageResult:
        if "EXPLODE" in draft.request.text:
            raise RuntimeError("stage failed")
        return StageResult()


async def test_no_output_shows_a_secret(
    start_gateway: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keys = {"data": random_key(), "index": random_key(), "audit": random_key()}
    gw = await start_gateway(
        dispatch=False,
        stages=[Explode()],
        keys=keys,
        providers={
            "outbox": {"type": "outbox", "path": "var/outbox.jsonl"},
            "tw": {
                "type": "twilio",
                "account_sid": TWILIO_SID,
                "auth_token": TWILIO_TOKEN,
                "from": "+12015550100",
                "callback_token": CALLBACK_TOKEN,
            },
        },
        routes=[{"providers": ["outbox"]}],
    )
    await gw.app[STORE].put_client(
        Client(id="hooked", policy="cn-collection"), webhook_secret=WEBHOOK_SECRET, create=True
    )
    token = await gw.key()
    api_secret = token.split("_", 2)[2]
    secrets = {
        "keys.data": keys["data"],
        "keys.index": keys["index"],
        "keys.audit": keys["audit"],
        "twilio sid": TWILIO_SID,
        "twilio token": TWILIO_TOKEN,
        "callback token": CALLBACK_TOKEN,
        "webhook secret": WEBHOOK_SECRET,
        "api key secret": api_secret,
    }
    # the raw key bytes, in the forms a careless repr would show them
    for name in ("data", "index", "audit"):
        raw = base64.b64decode(keys[name])
        secrets[f"keys.{name} hex"] = raw.hex()
        secrets[f"keys.{name} bytes"] = repr(raw)[2:-1][:24]

    outputs: dict[str, str] = {
        "repr(settings)": repr(gw.settings),
        "str(settings)": str(gw.settings),
        "repr(providers)": repr(gw.settings.providers),
        "repr(keys)": repr(gw.settings.keys),
    }
    h = auth(token)
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/openapi.json", {}),
        ("GET", "/readyz", {}),
        ("GET", "/metrics", {}),
        ("GET", "/healthz", {}),
        ("GET", "/nowhere", {}),
        ("DELETE", "/v1/messages", {}),
        ("POST", "/v1/messages", {"headers": {"Authorization": f"Bearer {token}x"}}),
        ("POST", "/v1/messages", {"headers": h, "data": b"{"}),
        ("POST", "/v1/messages", {"headers": h, "json": {"to": "x"}}),
        (
            "POST",
            "/v1/messages",
            {
                "headers": h,
                "json": {
                    "to": CN_MOBILE,
                    "borrower_id": "B",
                    "purpose": "service",
                    "text": "EXPLODE " + TWILIO_TOKEN,
                },
            },
        ),
        ("POST", "/callbacks/tw/status", {"data": b"MessageSid=SM1&MessageStatus=delivered"}),
        ("POST", f"/callbacks/tw/status?token={CALLBACK_TOKEN}x", {"data": b"x=1"}),
        ("GET", "/v1/messages/none", {"headers": h}),
    ]
    statuses = []
    for method, path, kwargs in requests:
        r = await gw.http.request(method, path, **kwargs)
        statuses.append(r.status)
        text = await r.text()
        outputs[f"{method} {path} ({r.status})"] = str(dict(r.headers)) + "\n" + text
    assert 500 in statuses  # the unhandled error really happened
    formatter = JsonFormatter()
    # every record but aiohttp's access log, which the test server keeps and
    # `lendsms serve` turns off (access_log=None; setup_logging disables it):
    # it would show a request line with a callback token in the query
    outputs["logs"] = "\n".join(
        formatter.format(record) for record in caplog.records if record.name != "aiohttp.access"
    )
    assert "unhandled error" in outputs["logs"]

    leaks = [
        (secret_name, where)
        for secret_name, secret in secrets.items()
        for where, text in outputs.items()
        if secret in text
    ]
    assert not leaks, leaks
