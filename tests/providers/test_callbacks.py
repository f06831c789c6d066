"""The callback endpoints through HTTP: inbound replies reach the registered hooks only
when signed; receipts are matched to the right provider's messages; a client's status
webhook follows a message to its final status."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.test_utils import TestServer

from config.settings import Settings
from gateway.app import create_app
from gateway.appkeys import STORE, WEBHOOKS
from gateway.auth import new_key
from gateway.callbacks import register_inbound_handler
from gateway.models import Client
from providers.base import InboundSms
from providers.signing import twilio as twilio_sig
from providers.signing import webhook as lendsms_sig
from tests.conftest import auth, wait_for
from tests.providers.fake_intl import HOOK_SECRET, TW_SID, TW_TOKEN, FakeWebhookReceiver
from tests.providers.tls import self_signed


def settings_with(make_settings: Callable[..., Settings], **extra: Any) -> Settings:
    return make_settings(
        providers={
            "tw": {"type": "twilio", "account_sid": TW_SID, "auth_token": TW_TOKEN,
                   "from": "+15005550006", "endpoint": "http://127.0.0.1:9"},
            "hook": {"type": "webhook", "url": extra.pop("hook_url", "http://127.0.0.1:9/sms"),
                     "secret": HOOK_SECRET},
        },
        **extra,
    )  # fmt: skip


async def test_inbound_replies_reach_the_hooks(
    aiohttp_client: Any, make_settings: Callable[..., Settings]
) -> None:
    app = create_app(settings_with(make_settings), dispatch=False)
    heard: list[tuple[str, InboundSms]] = []

    async def hook(provider: str, sms: InboundSms) -> None:
        heard.append((provider, sms))

    register_inbound_handler(app, hook)
    http = await aiohttp_client(app)
    url = str(http.make_url("/callbacks/tw/inbound"))
    params = {"MessageSid": "SM1", "From": "+12015550123", "To": "+15005550006", "Body": "STOP",
              "AccountSid": TW_SID}  # fmt: skip
    signature = twilio_sig.signature(TW_TOKEN, url, params.items())
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = await http.post("/callbacks/tw/inbound", data=urlencode(params),
                        headers={**form, "X-Twilio-Signature": signature})  # fmt: skip
    assert r.status == 200 and await r.text() == "<Response/>"
    assert [(p, s.sender, s.text) for p, s in heard] == [("tw", "+12015550123", "STOP")]

    forged = {**form, "X-Twilio-Signature": twilio_sig.signature("guess", url, params.items())}
    r = await http.post("/callbacks/tw/inbound", data=urlencode(params), headers=forged)
    assert r.status == 403 and len(heard) == 1
    problem = await r.json()
    assert "+12015550123" not in json.dumps(problem)


async def test_a_failing_hook_asks_the_provider_to_push_again(
    aiohttp_client: Any, make_settings: Callable[..., Settings]
) -> None:
    app = create_app(settings_with(make_settings), dispatch=False)

    async def broken(provider: str, sms: InboundSms) -> None:
        raise RuntimeError("opt-out store down")

    register_inbound_handler(app, broken)
    http = await aiohttp_client(app)
    body = json.dumps({"from": "+12015550123", "text": "STOP"}).encode()
    header = lendsms_sig.sign(HOOK_SECRET, int(time.time()), body)
    r = await http.post("/callbacks/hook/inbound", data=body,
                        headers={lendsms_sig.HEADER: header})  # fmt: skip
    assert r.status == 503 and r.headers["Retry-After"] == "60"
    r = await http.post("/callbacks/hook/status", data=b"{}", headers={lendsms_sig.HEADER: header})
    assert r.status == 403  # signed for another body
    good = lendsms_sig.sign(HOOK_SECRET, int(time.time()), b"[{}]")
    r = await http.post("/callbacks/hook/status", data=b"[{}]", headers={lendsms_sig.HEADER: good})
    assert r.status == 400


async def test_receipts_match_only_the_providers_own_messages_and_webhooks_follow(
    aiohttp_client: Any, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    fake = FakeWebhookReceiver()
    await fake.start()
    ca, context = self_signed(tmp_path)
    client_hooks: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        assert lendsms_sig.verify("client-secret", request.headers[lendsms_sig.HEADER], body,
                                  now=int(time.time()))  # fmt: skip
        client_hooks.append(json.loads(body))
        return web.Response()

    receiver_app = web.Application()
    receiver_app.router.add_post("/status", receive)
    receiver = TestServer(receiver_app, host="127.0.0.1")
    await receiver.start_server(ssl=context)
    try:
        settings = settings_with(
            make_settings, hook_url=fake.url + "/sms", routes=[{"providers": ["hook"]}],
            webhooks={"allow_networks": ["127.0.0.0/8"], "ca_file": str(ca), "backoff_base": 0.01},
        )  # fmt: skip
        http = await aiohttp_client(create_app(settings))
        store = http.server.app[STORE]
        await store.put_client(Client(id="acme", policy="cn-collection"),
                               webhook_secret="client-secret", create=True)  # fmt: skip
        made = new_key("acme", frozenset({"send"}), datetime.now(UTC))
        await store.add_key(made.key, made.secret_hash)
        body = {"to": "+12015550123", "borrower_id": "B-1", "purpose": "service",
                "text": "Your statement is ready.",
                "callback_url": str(receiver.make_url("/status"))}  # fmt: skip
        r = await http.post("/v1/messages", json=body, headers=auth(made.token))
        assert r.status == 202, await r.text()
        mid = (await r.json())["id"]

        async def status() -> str:
            m = await store.get_message(mid)
            return "" if m is None else str(m.status)

        await wait_for(lambda: status_is(status, "sent"), what="sent")
        pmid = (await store.get_message(mid)).provider_message_id
        push = json.dumps({"id": pmid, "status": "delivered", "code": "DELIVRD"}).encode()
        r = await http.post("/callbacks/tw/status", data=b"", headers={})
        assert r.status == 403  # an unsigned Twilio push
        r = await http.post("/callbacks/hook/status", data=push, headers=signed(push))
        assert r.status == 200
        assert await status() == "delivered"
        unknown = json.dumps({"id": "wh-nobody", "status": "delivered"}).encode()
        r = await http.post("/callbacks/hook/status", data=unknown, headers=signed(unknown))
        assert r.status == 200  # recorded, matched nothing
        await http.server.app[WEBHOOKS].idle()
        assert [h["status"] for h in client_hooks] == ["sent", "delivered"]
        assert all(h["id"] == mid for h in client_hooks)
    finally:
        await receiver.close()
        await fake.close()


def signed(body: bytes) -> dict[str, str]:
    return {lendsms_sig.HEADER: lendsms_sig.sign(HOOK_SECRET, int(time.time()), body)}


async def status_is(read: Callable[[], Any], wanted: str) -> bool:
    return bool(await read() == wanted)


async def test_unsafe_callback_url_is_400(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    key = await gw.key()
    body = {"to": "+12015550123", "borrower_id": "B-1", "purpose": "service",
            "text": "Your statement is ready.",
            "callback_url": "https://169.254.169.254/latest/meta-data"}  # fmt: skip
    r = await gw.http.post("/v1/messages", json=body, headers=auth(key))
    assert r.status == 400
    assert (await r.json())["errors"][0]["field"] == "callback_url"
