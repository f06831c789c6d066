"""Client status webhooks: signed, retried with backoff, SSRF-checked."""

from __future__ import annotations

import ipaddress
import json
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from config.settings import WebhookSettings
from gateway.clock import SystemClock
from gateway.crypto import BlindIndex, FieldCipher
from gateway.models import Client, Event, Message, Status
from gateway.store.sqlite import SqliteStore
from gateway.webhooks import (
    GuardedResolver,
    UnsafeAddress,
    UnsafeCallbackUrl,
    WebhookNotifier,
    address_allowed,
    check_callback_url,
)
from providers.signing import webhook as lendsms_sig
from tests.providers.tls import self_signed

SECRET = "whsec_test"
LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.100.100.200",
     "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fd00:ec2::254",  # noqa: S104
     "::ffff:127.0.0.1", "fc00::1", "240.0.0.1"],
)  # fmt: skip
def test_refused_addresses(address: str) -> None:
    assert not address_allowed(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert address_allowed(ipaddress.ip_address(address))


def test_allow_networks_exempt_what_they_cover() -> None:
    assert address_allowed(ipaddress.ip_address("127.0.0.1"), LOOPBACK)
    assert not address_allowed(ipaddress.ip_address("10.0.0.1"), LOOPBACK)


@pytest.mark.parametrize(
    "url",
    ["http://example.com/hook", "https://user:pw@example.com/", "https://127.0.0.1/x",
     "https://[::1]/x", "https://169.254.169.254/latest/meta-data", "https://localhost/x",
     "https://a.localhost/x", "ftp://example.com", "https:///nohost"],
)  # fmt: skip
def test_unsafe_urls(url: str) -> None:
    with pytest.raises(UnsafeCallbackUrl):
        check_callback_url(url)


def test_safe_urls() -> None:
    assert check_callback_url("https://hooks.lender.example/sms?x=1").host == "hooks.lender.example"
    assert check_callback_url("https://127.0.0.1:8443/x", LOOPBACK).port == 8443


class StaticResolver(GuardedResolver):
    """The guard over a resolver that answers from a table (no DNS in tests)."""

    def __init__(self, table: dict[str, list[str]], allow: Any = ()) -> None:
        from aiohttp.abc import AbstractResolver

        class Table(AbstractResolver):
            async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[Any]:
                return [{"hostname": host, "host": a, "port": port, "family": 2, "proto": 0,
                         "flags": 0} for a in table[host]]  # fmt: skip

            async def close(self) -> None:
                return None

        super().__init__(allow, Table())


async def test_the_resolver_refuses_names_that_point_inside() -> None:
    guard = StaticResolver({"rebind.example": ["93.184.216.34", "10.0.0.7"],
                            "fine.example": ["93.184.216.34"]})  # fmt: skip
    with pytest.raises(UnsafeAddress):
        await guard.resolve("rebind.example", 443)
    assert [r["host"] for r in await guard.resolve("fine.example", 443)] == ["93.184.216.34"]
    await guard.close()


# -- delivery --------------------------------------------------------------------------------


class Receiver:
    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.got: list[tuple[bytes, str]] = []

    def app(self) -> web.Application:
        async def hook(request: web.Request) -> web.Response:
            self.got.append((await request.read(), request.headers.get(lendsms_sig.HEADER, "")))
            status = self.answers.pop(0) if self.answers else 200
            if status == 302:
                raise web.HTTPFound("https://127.0.0.1:1/elsewhere")
            return web.Response(status=status)

        app = web.Application()
        app.router.add_post("/hook", hook)
        return app


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "db.sqlite", FieldCipher(secrets.token_bytes(32)),
                    BlindIndex(secrets.token_bytes(32)))  # fmt: skip
    await s.open()
    await s.put_client(
        Client(id="acme", policy="cn-collection"), webhook_secret=SECRET, create=True
    )
    await s.put_client(
        Client(id="nosecret", policy="cn-collection"), webhook_secret=None, create=True
    )
    yield s
    await s.close()


async def serve(tmp_path: Path, receiver: Receiver) -> tuple[TestServer, Path]:
    ca, context = self_signed(tmp_path)
    server = TestServer(receiver.app(), host="127.0.0.1")
    await server.start_server(ssl=context)
    return server, ca


def message(url: str, client: str = "acme", status: Status = Status.DELIVERED) -> Message:
    now = datetime.now(UTC)
    return Message(
        id="msg_1", client_id=client, to="+8613812345678", to_masked="+86 138****5678",
        region="CN", borrower_id="B-1", purpose="service", recipient_role="borrower", text="t",
        body="t", segments=1, encoding="UCS-2", findings=(), status=status, created_at=now,
        updated_at=now, scheduled_at=None, expires_at=now, reference="loan-1",
        callback_url=url, events=(Event(now, status, "receipt from tc: DELIVRD"),),
    )  # fmt: skip


async def notifier(store: SqliteStore, ca: Path | None, allow: tuple[str, ...]) -> WebhookNotifier:
    settings = WebhookSettings(allow_networks=allow, ca_file=ca, timeout=2.0, max_attempts=3,
                               backoff_base=0.01)  # fmt: skip
    n = WebhookNotifier(settings, store, SystemClock())
    await n.start()
    return n


async def test_delivered_signed_after_retries(tmp_path: Path, store: SqliteStore) -> None:
    receiver = Receiver([500, 429])
    server, ca = await serve(tmp_path, receiver)
    hooks = await notifier(store, ca, ("127.0.0.0/8",))
    try:
        await hooks.notify(message(str(server.make_url("/hook"))))
        await hooks.idle()
    finally:
        await hooks.close()
        await server.close()
    assert hooks.counts["delivered"] == 1 and hooks.counts["retry"] == 2
    body, header = receiver.got[-1]
    assert lendsms_sig.verify(SECRET, header, body, now=int(time.time()))
    sent = json.loads(body)
    assert sent == {"id": "msg_1", "status": "delivered", "at": sent["at"],
                    "detail": "receipt from tc: DELIVRD", "reference": "loan-1"}  # fmt: skip


async def test_gives_up_after_max_attempts_and_on_4xx(tmp_path: Path, store: SqliteStore) -> None:
    receiver = Receiver([503, 503, 503, 400, 302])
    server, ca = await serve(tmp_path, receiver)
    hooks = await notifier(store, ca, ("127.0.0.0/8",))
    try:
        url = str(server.make_url("/hook"))
        await hooks.notify(message(url))
        await hooks.idle()
        assert hooks.counts["gave_up"] == 1 and len(receiver.got) == 3
        await hooks.notify(message(url))  # 400: not retried
        await hooks.idle()
        await hooks.notify(message(url))  # a redirect is not followed
        await hooks.idle()
    finally:
        await hooks.close()
        await server.close()
    assert hooks.counts["rejected"] == 2 and len(receiver.got) == 5


async def test_loopback_is_refused_without_allow_networks(
    tmp_path: Path, store: SqliteStore
) -> None:
    receiver = Receiver([])
    server, ca = await serve(tmp_path, receiver)
    hooks = await notifier(store, ca, ())
    try:
        await hooks.notify(message(str(server.make_url("/hook"))))
        await hooks.notify(message(f"https://localhost:{server.port}/hook"))
        await hooks.notify(message(str(server.make_url("/hook")), client="nosecret"))
        await hooks.notify(message(""))  # no callback_url: nothing to do
        await hooks.idle()
    finally:
        await hooks.close()
        await server.close()
    assert receiver.got == []
    assert hooks.counts["refused"] == 3 and hooks.counts["no_secret"] == 0  # checked first


async def test_a_name_resolving_to_loopback_is_refused_at_connect(
    tmp_path: Path, store: SqliteStore
) -> None:
    """``localhost.`` passes the literal check; the resolver refuses 127.0.0.1."""
    receiver = Receiver([])
    server, ca = await serve(tmp_path, receiver)
    hooks = await notifier(store, ca, ())
    try:
        await hooks.notify(message(f"https://localhost.:{server.port}/hook"))
        await hooks.idle()
    finally:
        await hooks.close()
        await server.close()
    assert receiver.got == [] and hooks.counts["unsafe"] + hooks.counts["refused"] == 1


async def test_no_secret_no_webhook(tmp_path: Path, store: SqliteStore) -> None:
    receiver = Receiver([])
    server, ca = await serve(tmp_path, receiver)
    hooks = await notifier(store, ca, ("127.0.0.0/8",))
    try:
        await hooks.notify(message(str(server.make_url("/hook")), client="nosecret"))
        await hooks.idle()
    finally:
        await hooks.close()
        await server.close()
    assert receiver.got == [] and hooks.counts["no_secret"] == 1
