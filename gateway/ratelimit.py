"""Per-client throughput limit: a token bucket per client, refilled at the
client's ``rate`` (messages per second) with a burst of one second's worth.

This bucket lives in the process; it is exact for the embedded single-process
setup. Replicas sharing Redis need the shared limiter of the scale-out work.
"""

from __future__ import annotations

import math
import time
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
