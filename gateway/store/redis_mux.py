"""One multiplexed connection for the acceptance path's Redis calls.

Redis answers the commands of one connection in the order it got them, so
concurrent requests can share a connection: every command is packed (hiredis)
into a buffer, the buffer is written once per event-loop turn, and a reader
task hands the answers back in order. Under load one write and one read carry
the idempotency claims, contact checks and commits of many requests, instead
of one pool round (check-out, write, read, check-in) per command through
redis-py, which costs the gateway and Redis several times the CPU.

Failure behaves as redis-py's does, as the callers expect: an error answer is
:class:`~redis.exceptions.ResponseError` (``NoScriptError`` for an unknown
script, which is loaded and run once more: a refused EVALSHA did nothing), a
lost connection or a call slower than ``timeout`` is
:class:`~redis.exceptions.ConnectionError` / ``TimeoutError`` for every call
in flight (the connection is dropped: its answers can no longer be matched),
and the next call connects again. One timer per connection watches the oldest
call in flight (Redis answers in order, so it is the first to be late) instead
of a timeout context per call. Plain ``redis://`` URLs only (host, port,
user, password, db); other URLs and Redis Cluster keep redis-py.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Sequence
from typing import Any

import hiredis
from redis import exceptions as rx
from redis.asyncio.connection import parse_url
from redis.commands.core import AsyncScript

_READ = 65536


def multiplexable(url: str) -> bool:
    return url.startswith("redis://")


class RedisMux:
    def __init__(self, url: str, *, timeout: float) -> None:
        if not multiplexable(url):
            raise ValueError("RedisMux takes redis:// URLs only")
        options = parse_url(url)
        self._host = str(options.get("host", "localhost"))
        self._port = int(options.get("port", 6379))
        self._handshake: list[tuple[Any, ...]] = []
        password, username = options.get("password"), options.get("username")
        if password is not None:
            self._handshake.append(("AUTH", username, password) if username else ("AUTH", password))
        if options.get("db"):
            self._handshake.append(("SELECT", int(options["db"])))
        self.timeout = timeout
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        # (future, deadline on the loop's clock), in the order the commands were sent
        self._pending: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self._out: list[bytes] = []
        self._flushing = False
        self._connect_lock = asyncio.Lock()

    async def close(self) -> None:
        task = self._reader_task
        self._drop(rx.ConnectionError("closed"))
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def evalsha(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self.execute(*command)
        except rx.NoScriptError:  # the server lost its scripts (restart): nothing ran
            await self.execute("SCRIPT", "LOAD", script.script)
            return await self.execute(*command)

    async def execute(self, *args: Any) -> Any:
        if self._writer is None:
            await self._connect()
        reply = await self._send(args)
        if isinstance(reply, hiredis.ReplyError):
            text = str(reply)
            if text.startswith("NOSCRIPT"):
                raise rx.NoScriptError(text)
            raise rx.ResponseError(text)
        return reply

    async def _send(self, args: tuple[Any, ...]) -> Any:
        return await self._enqueue(args)

    def _enqueue(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        """Queue one command for the next write; the future of its answer."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._out.append(hiredis.pack_command(args))
        deadline = loop.time() + self.timeout
        self._pending.append((future, deadline))
        if self._watchdog is None:
            self._watchdog = loop.call_at(deadline, self._check_deadline)
        if not self._flushing:
            self._flushing = True
            loop.call_soon(self._flush)
        return future

    def _check_deadline(self) -> None:
        """The oldest call in flight is late: every answer after it is too, and
        none can be matched any more once one is given up on."""
        self._watchdog = None
        if not self._pending:
            return
        loop = asyncio.get_running_loop()
        oldest = self._pending[0][1]
        if loop.time() >= oldest:
            self._drop(rx.TimeoutError("redis did not answer in time"))
        else:
            self._watchdog = loop.call_at(oldest, self._check_deadline)

    def _flush(self) -> None:
        self._flushing = False
        if self._writer is None or not self._out:
            return
        data = b"".join(self._out)
        self._out.clear()
        self._writer.write(data)

    async def _connect(self) -> None:
        async with self._connect_lock:
            if self._writer is not None:
                return
            try:
                async with asyncio.timeout(self.timeout):
                    reader, writer = await asyncio.open_connection(self._host, self._port)
            except (OSError, TimeoutError) as exc:
                raise rx.ConnectionError(f"cannot connect ({type(exc).__name__})") from exc
            self._writer = writer
            self._reader_task = asyncio.get_running_loop().create_task(self._read(reader))
            # queued together, before any caller can see the connection's writer
            # and queue a command of its own between AUTH and SELECT
            answers = [self._enqueue(command) for command in self._handshake]
            for answer in answers:
                reply = await answer
                if isinstance(reply, hiredis.ReplyError):
                    self._drop(rx.ConnectionError("handshake refused"))
                    raise rx.ConnectionError("redis refused the connection's handshake")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        parser = hiredis.Reader(encoding="utf-8")
        try:
            while True:
                data = await reader.read(_READ)
                if not data:
                    raise rx.ConnectionError("redis closed the connection")
                parser.feed(data)
                reply = parser.gets()
                while reply is not False:
                    future = self._pending.popleft()[0]
                    if not future.done():
                        future.set_result(reply)
                    reply = parser.gets()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure ends this connection
            lost = exc if isinstance(exc, rx.ConnectionError) else None
            self._drop(lost or rx.ConnectionError(type(exc).__name__), reading=True)

    def _drop(self, error: Exception, *, reading: bool = False) -> None:
        writer, self._writer = self._writer, None
        task, self._reader_task = self._reader_task, None
        if writer is not None:
            writer.close()
        if task is not None and not reading:
            task.cancel()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        pending, self._pending = self._pending, collections.deque()
        self._out.clear()
        for future, _ in pending:
            if not future.done():
                future.set_exception(error)
