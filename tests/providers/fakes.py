"""Local stand-ins for the providers' HTTP APIs (127.0.0.1 only).

Each fake checks a request's signature the way the provider does — from the bytes and
headers it received, with the secret it was configured with — and refuses a bad one
with the provider's own error. It then answers from a script (``fake.script``): a
:class:`Reply`, a :class:`Delay` (slower than the client's timeout), or, when the
script is empty, the provider's documented success answer.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Reply:
    status: int
    body: Any  # dict/list -> JSON, str -> as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def response(self) -> web.Response:
        text = self.body if isinstance(self.body, str) else json.dumps(self.body)
        return web.Response(
            status=self.status, text=text, content_type=self.content_type, headers=self.headers
        )


@dataclass
class Delay:
    seconds: float
    then: Reply | None = None


Step = Reply | Delay


class FakeProvider:
    """Shared plumbing: the script, the log of what was received, the server."""

    def __init__(self) -> None:
        self.script: list[Step] = []
        self.received: list[dict[str, Any]] = []  # accepted send requests, as parsed
        self.rejected: list[str] = []  # signature failures, by reason
        self.calls = 0
        self.server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> FakeProvider:
        self.server = TestServer(self.app(), host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def answer(
        self,
        success: Callable[[], Awaitable[web.Response] | web.Response],
        take: Callable[[], None] | None = None,
    ) -> web.Response:
        """The next scripted step, or ``success()`` when the script is empty. ``take``
        records the message as accepted: before a success, and on arrival when the
        step is a :class:`Delay` (the provider has it; its answer is late)."""
        self.calls += 1
        step = self.script.pop(0) if self.script else None
        if isinstance(step, Reply):
            return step.response()
        if take is not None:
            take()
        if isinstance(step, Delay):
            await asyncio.sleep(step.seconds)
            if step.then is not None:
                return step.then.response()
        result = success()
        return await result if isinstance(result, Awaitable) else result


def new_id(prefix: str = "") -> str:
    return prefix + secrets.token_hex(8)
