"""Backpressure: ``POST /v1/messages`` answers 503 with ``Retry-After`` while the
dispatch queue is over a limit from the settings (``[backpressure]``), instead of
letting it grow without bound.

The accept path never queries the store for this: a background task reads the
queue's depth and the age of its oldest *due* message every ``refresh_seconds``
and the handler consults that snapshot (a comparison, no I/O). Held messages
wait for a reviewer, not in the queue, and scheduled ones that are not due yet
have no age, so neither counts toward the age limit. When the store cannot be
read, the last snapshot stays (the acceptance itself fails closed with 503
when the store is down)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from config.settings import BackpressureSettings
from gateway.appkeys import CLOCK, METRICS, SETTINGS, STORE
from gateway.clock import Clock
from gateway.errors import StoreUnavailable, Unavailable
from gateway.metrics import Metrics
from gateway.store.base import Store

log = logging.getLogger("lendsms.backpressure")


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    depth: int = 0
    oldest_age: float = 0.0  # seconds the oldest due message has waited


class Backpressure:
    """The accept path's view of the queue; :meth:`check` raises when over."""

    def __init__(
        self, settings: BackpressureSettings, store: Store, clock: Clock, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.snapshot = QueueSnapshot()
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.max_queue_depth > 0 or self.settings.max_queue_age_seconds > 0

    def over_limit(self) -> str | None:
        """Which limit the last snapshot is over (``depth`` or ``age``), or None."""
        s, snap = self.settings, self.snapshot
        if s.max_queue_depth and snap.depth > s.max_queue_depth:
            return "depth"
        if s.max_queue_age_seconds and snap.oldest_age > s.max_queue_age_seconds:
            return "age"
        return None

    def check(self) -> None:
        """Raise 503 (``Retry-After``) while the queue is over a limit."""
        reason = self.over_limit()
        if reason is None:
            return
        self.metrics.backpressure_rejections.labels(reason).inc()
        raise Unavailable(
            "the dispatch queue is over its limit; retry later",
            headers={"Retry-After": str(self.settings.retry_after_seconds)},
        )

    async def refresh(self) -> None:
        """Read the queue once (two indexed queries)."""
        now = self.clock.now()
        depth = await self.store.queue_depth()
        oldest = await self.store.oldest_due(now)
        age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
        self.snapshot = QueueSnapshot(sum(depth.values()), age)

    async def _loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except StoreUnavailable:
                log.debug("backpressure: cannot read the queue; keeping the last snapshot")
            except Exception:
                log.exception("backpressure: refreshing the queue snapshot failed")
            await asyncio.sleep(self.settings.refresh_seconds)

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="backpressure")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


BACKPRESSURE: web.AppKey[Backpressure] = web.AppKey("backpressure")


async def backpressure_ctx(app: web.Application) -> AsyncIterator[None]:
    """A ``cleanup_ctx`` (after the store's): builds and runs the refresher."""
    guard = Backpressure(app[SETTINGS].backpressure, app[STORE], app[CLOCK], app[METRICS])
    guard.start()
    app[BACKPRESSURE] = guard
    try:
        yield
    finally:
        await guard.stop()


def check_backpressure(app: web.Application) -> None:
    """For the send handler: 503 while over a limit (no-op without the guard)."""
    guard = app.get(BACKPRESSURE)
    if guard is not None:
        guard.check()
