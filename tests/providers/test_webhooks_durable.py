"""Client status webhooks survive restarts: they wait in the store (SQLite and
Redis), a stopped or crashed process's jobs are delivered by the next one, and
processes sharing a store deliver each job once when none of them dies."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from config.settings import WebhookSettings
from gateway.clock import SystemClock
from gateway.crypto import BlindIndex, FieldCipher
from gateway.models import Client
from gateway.store.base import Store
from gateway.store.redis_store import RedisStore
from gateway.store.sqlite import SqliteStore
from gateway.webhooks import WebhookNotifier
from providers.signing import webhook as lendsms_sig
from tests.conftest import wait_for
from tests.contract.conftest import REDIS_URL, delete_prefix, require_redis
from tests.providers.test_webhooks import SECRET, Receiver, message, serve
from tests.providers.tls import self_signed

Opener = Callable[[], Awaitable[Store]]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "redis"])
async def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens the same store again (same file or prefix, same keys), as a process
    that restarts does; the client ``acme`` has a webhook secret."""
    cipher, index = FieldCipher(secrets.token_bytes(32)), BlindIndex(secrets.token_bytes(32))
    prefix = f"lendsms-test-{secrets.token_hex(6)}"
    opened: list[Store] = []
    if request.param == "redis":
        await require_redis()

    async def open_store() -> Store:
        store: Store
        if request.param == "sqlite":
            store = SqliteStore(tmp_path / "db.sqlite", cipher, index)
        else:
            store = RedisStore(REDIS_URL, cipher, index, prefix=prefix, shards=4, timeout=5.0)
        await store.open()
        if not opened:
            await store.put_client(
                Client(id="acme", policy="cn-collection"), webhook_secret=SECRET, create=True
            )
        opened.append(store)
        return store

    try:
        yield open_store
    finally:
        for store in opened:
            await store.close()
        if request.param == "redis":
            await delete_prefix(REDIS_URL, prefix)


def settings(ca: Path, **changes: Any) -> WebhookSettings:
    options: dict[str, Any] = {"allow_networks": ("127.0.0.0/8",), "ca_file": ca,
                               "timeout": 2.0, "max_attempts": 3, "backoff_base": 0.01,
                               "poll_seconds": 0.05, **changes}  # fmt: skip
    return WebhookSettings(**options)


Hook = Callable[[list[int]], Awaitable[tuple[Receiver, str, Path]]]


@pytest.fixture
async def hook(tmp_path: Path) -> AsyncIterator[Hook]:
    """Starts a TLS receiver answering ``statuses`` in turn (then 200): the
    receiver, its URL and the CA file that trusts it; stopped after the test."""
    servers: list[TestServer] = []

    async def start(statuses: list[int]) -> tuple[Receiver, str, Path]:
        receiver = Receiver(statuses)
        server, ca = await serve(tmp_path, receiver)
        servers.append(server)
        return receiver, str(server.make_url("/hook")), ca

    yield start
    for server in servers:
        await server.close()


async def test_queued_then_stopped_is_delivered_after_a_restart(hook: Hook, reopen: Opener) -> None:
    receiver, url, ca = await hook([])
    store = await reopen()
    first = WebhookNotifier(settings(ca), store, SystemClock(), owner="first")
    # queued while the process is going down: its loop never gets to it
    await first.notify(message(url))
    await first.close()
    await store.close()
    assert receiver.got == []

    again = await reopen()
    assert (await again.webhook_backlog(datetime.now(UTC))).pending == 1
    second = WebhookNotifier(settings(ca), again, SystemClock(), owner="second")
    await second.start()
    try:
        await second.idle()
    finally:
        await second.close()
    assert second.counts["delivered"] == 1 and len(receiver.got) == 1
    body, header = receiver.got[0]
    assert lendsms_sig.verify(SECRET, header, body, now=int(time.time()))
    assert json.loads(body)["reference"] == "loan-1"
    assert (await again.webhook_backlog(datetime.now(UTC))).pending == 0


async def test_a_crashed_owners_job_is_delivered_once_its_lease_passes(
    hook: Hook, reopen: Opener
) -> None:
    receiver, url, ca = await hook([])
    store = await reopen()
    await WebhookNotifier(settings(ca), store, SystemClock()).notify(message(url))
    # a process claims it and dies mid-post: the job stays leased to it
    now = datetime.now(UTC)
    held = await store.claim_webhooks(now, 10, "crashed", now + timedelta(seconds=0.6))
    assert len(held) == 1
    started = time.monotonic()
    survivor = WebhookNotifier(settings(ca), store, SystemClock(), owner="survivor")
    await survivor.start()
    try:
        await wait_for(lambda: len(receiver.got) == 1)
        waited = time.monotonic() - started
        await survivor.idle()
    finally:
        await survivor.close()
    assert waited >= 0.4  # not before the lease had passed
    assert survivor.counts["delivered"] == 1 and len(receiver.got) == 1
    assert (await store.webhook_backlog(datetime.now(UTC))).pending == 0


async def test_a_500_then_200_is_delivered_on_retry_across_a_restart(
    hook: Hook, reopen: Opener
) -> None:
    receiver, url, ca = await hook([500])
    store = await reopen()
    slow = settings(ca, backoff_base=0.4)  # the retry waits 0.2-0.4 s
    first = WebhookNotifier(slow, store, SystemClock(), owner="first")
    await first.start()
    await first.notify(message(url))
    await wait_for(lambda: len(receiver.got) == 1)
    await first.close()  # stopped during the backoff
    assert first.counts["retry"] == 1 and first.counts["delivered"] == 0
    await store.close()

    again = await reopen()
    second = WebhookNotifier(slow, again, SystemClock(), owner="second")
    await second.start()
    try:
        await wait_for(lambda: len(receiver.got) == 2)
        await second.idle()
    finally:
        await second.close()
    assert second.counts["delivered"] == 1 and len(receiver.got) == 2
    assert receiver.got[0][0] == receiver.got[1][0]  # the same status, signed again
    assert (await again.webhook_backlog(datetime.now(UTC))).pending == 0


async def test_processes_sharing_a_store_deliver_each_job_once(hook: Hook, reopen: Opener) -> None:
    receiver, url, ca = await hook([])
    store = await reopen()
    other = await reopen()  # another process on the same store
    a = WebhookNotifier(settings(ca), store, SystemClock(), owner="a")
    b = WebhookNotifier(settings(ca), other, SystemClock(), owner="b")
    await a.start()
    await b.start()
    try:
        url = url
        for n in range(30):
            await (a if n % 2 else b).notify(message(url))
        await wait_for(lambda: len(receiver.got) >= 30)
        await a.idle()
        await b.idle()
    finally:
        await a.close()
        await b.close()
    assert len(receiver.got) == 30
    assert a.counts["delivered"] + b.counts["delivered"] == 30


async def test_a_store_that_refuses_the_job_does_not_fail_the_caller(
    hook: Hook, reopen: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    _, url, ca = await hook([])
    store = await reopen()
    hooks = WebhookNotifier(settings(ca), store, SystemClock())
    await hooks.start()
    await store.close()
    await hooks.notify(message(url))  # does not raise
    await hooks.close()
    assert hooks.counts["enqueue_failed"] == 1
    assert "loan-1" not in caplog.text and "/hook" not in caplog.text


CHILD = r"""
import asyncio, sys
from pathlib import Path
from config.settings import WebhookSettings
from gateway.clock import SystemClock
from gateway.crypto import BlindIndex, FieldCipher
from gateway.store.redis_store import RedisStore
from gateway.store.sqlite import SqliteStore
from gateway.webhooks import WebhookNotifier
from tests.providers.test_webhooks import message

backend, where, data, index, ca, url = sys.argv[1:7]
cipher, blind = FieldCipher(bytes.fromhex(data)), BlindIndex(bytes.fromhex(index))

async def main() -> None:
    if backend == "sqlite":
        store = SqliteStore(Path(where), cipher, blind)
    else:
        store = RedisStore(where, cipher, blind, prefix=sys.argv[7], shards=4)
    await store.open()
    settings = WebhookSettings(allow_networks=("127.0.0.0/8",), ca_file=Path(ca), timeout=0.8,
                               lease_seconds=1.6, poll_seconds=0.05)
    hooks = WebhookNotifier(settings, store, SystemClock(), owner="doomed")
    await hooks.start()
    await hooks.notify(message(url))
    await asyncio.sleep(60)  # killed mid-post by the test

asyncio.run(main())
"""


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_a_killed_process_s_webhook_is_delivered_by_the_next_one(
    tmp_path: Path, backend: str
) -> None:
    """A real crash: the process is SIGKILLed while its POST is under way."""
    got: list[bytes] = []
    arrived = asyncio.Event()

    async def hook(req: web.Request) -> web.Response:
        got.append(await req.read())
        arrived.set()
        if len(got) == 1:
            await asyncio.sleep(5)  # the first sender dies while this hangs
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    ca, context = self_signed(tmp_path)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=context)
    data, index = secrets.token_bytes(32), secrets.token_bytes(32)
    path, prefix = tmp_path / "db.sqlite", f"lendsms-test-{secrets.token_hex(6)}"
    store: Store
    if backend == "sqlite":
        store = SqliteStore(path, FieldCipher(data), BlindIndex(index))
        where = [str(path), data.hex(), index.hex()]
    else:
        await require_redis()
        store = RedisStore(REDIS_URL, FieldCipher(data), BlindIndex(index), prefix=prefix, shards=4)
        where = [REDIS_URL, data.hex(), index.hex()]
    await store.open()
    await store.put_client(
        Client(id="acme", policy="cn-collection"), webhook_secret=SECRET, create=True
    )
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            backend,
            *where,
            str(ca),
            str(server.make_url("/hook")),
            prefix,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    try:
        await asyncio.wait_for(arrived.wait(), timeout=20)
        os.kill(child.pid, signal.SIGKILL)  # mid-post: the job is leased to the dead process
        child.wait(10)
        killed_at = time.monotonic()
        assert (await store.webhook_backlog(datetime.now(UTC))).pending == 1
        next_one = WebhookNotifier(
            WebhookSettings(allow_networks=("127.0.0.0/8",), ca_file=ca, timeout=0.8,
                            lease_seconds=1.6, poll_seconds=0.05),
            store, SystemClock(), owner="next",
        )  # fmt: skip
        await next_one.start()
        try:
            await wait_for(lambda: len(got) == 2)
            await next_one.idle()
        finally:
            await next_one.close()
        assert time.monotonic() - killed_at > 0.3  # after the dead process's lease
        assert got[0] == got[1] and next_one.counts["delivered"] == 1
        assert (await store.webhook_backlog(datetime.now(UTC))).pending == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        await store.close()
        await server.close()
        if backend == "redis":
            await delete_prefix(REDIS_URL, prefix)
