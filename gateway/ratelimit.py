"""Per-client throughput limit: a token bucket per client, refilled at the
client's ``rate`` (messages per second) with a burst of one second's worth.

This bucket lives in the process; it is exact for the embedded single-process
setup. Replicas sharing Redis need the shared limiter of the scale-out work.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gateway.errors import RateLimited


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class ClientRateLimiter:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._now = monotonic

    def check(self, client_id: str, rate: float | None) -> None:
        """Take one token, or raise RateLimited with a Retry-After."""
        if rate is None:
            return
        capacity = max(1.0, rate)
        now = self._now()
        bucket = self._buckets.get(client_id)
        if bucket is None:
            bucket = self._buckets[client_id] = _Bucket(capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        wait = (1.0 - bucket.tokens) / rate
        raise RateLimited(
            "the client's throughput limit is reached; retry later",
            extra={"rule": "client_rate"},
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


class AuthFailureLimiter:
    """Failed authentications per source address: at most ``limit`` in a fixed
    one-minute window; beyond that every request from the source answers 429
    with a Retry-After until the window ends, before any key is looked up.

    Memory is bounded: at most ``max_sources`` addresses are tracked; when the
    table is full, expired windows are dropped first, then the oldest entries
    (an attacker rotating addresses only evicts its own older addresses)."""

    WINDOW = 60.0

    def __init__(
        self,
        limit: int,
        *,
        max_sources: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.max_sources = max_sources
        self._now = monotonic
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def check(self, source: str) -> None:
        """Raise RateLimited when ``source`` has used up its failures."""
        window = self._windows.get(source)
        if window is None:
            return
        now = self._now()
        if now - window.started >= self.WINDOW:
            del self._windows[source]
            return
        if window.failures >= self.limit:
            wait = self.WINDOW - (now - window.started)
            raise RateLimited(
                "too many failed authentications from this address; retry later",
                extra={"rule": "auth_failures"},
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )

    def failed(self, source: str) -> None:
        now = self._now()
        window = self._windows.get(source)
        if window is None or now - window.started >= self.WINDOW:
            self._windows.pop(source, None)
            self._make_room(now)
            self._windows[source] = _Window(now, 1)
        else:
            window.failures += 1

    def _make_room(self, now: float) -> None:
        if len(self._windows) < self.max_sources:
            return
        for source in [s for s, w in self._windows.items() if now - w.started >= self.WINDOW]:
            del self._windows[source]
        while len(self._windows) >= self.max_sources:
            self._windows.popitem(last=False)


@dataclass(slots=True)
class _Window:
    started: float
    failures: int
