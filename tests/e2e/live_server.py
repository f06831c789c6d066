"""A real lendsms app on a free loopback port, served from its own thread and
event loop, so synchronous clients (schemathesis, raw sockets) can drive it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web

from config.settings import Settings
from gateway.app import create_app
from gateway.appkeys import STORE
from gateway.auth import new_key
from gateway.models import Client

T = TypeVar("T")


@dataclass
class LiveServer:
    settings: Settings
    contact_policy: bool = False
    url: str = ""
    app: web.Application | None = None
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    def start(self) -> LiveServer:
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.run(self._start())
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> None:
        self.app = create_app(self.settings, dispatch=False, contact_policy=self.contact_policy)
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    def key(self, client_id: str = "acme", scopes: tuple[str, ...] = ("send",)) -> str:
        async def make() -> str:
            assert self.app is not None
            store = self.app[STORE]
            if await store.get_client(client_id) is None:
                await store.put_client(
                    Client(id=client_id, policy="cn-collection"), webhook_secret=None, create=True
                )
            made = new_key(client_id, frozenset(scopes), datetime.now(UTC))
            await store.add_key(made.key, made.secret_hash)
            return made.token

        return self.run(make())

    def stop(self) -> None:
        if self._runner is not None:
            self.run(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
