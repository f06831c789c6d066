"""An in-process cache of the two lookups every request makes before anything
else: the API key behind the Authorization header and the key's client.

An entry lives ``ttl`` seconds at most. A change made in this process (a key
revoked, a client updated) drops the entry at once; the Redis store also hears
of changes made by other processes on an invalidation channel
(gateway/store/redis_invalidation.py) and drops them there. A lookup that was
in flight while an entry was dropped does not store its (possibly stale)
answer: every drop starts a new epoch. Unknown ids are not cached (a key added
elsewhere works at once, and random ids cannot fill the cache). Concurrent
misses of one name share one fetch (an expired entry is fetched once, not by
every request in flight); a waiter whose shared fetch failed or was dropped
meanwhile fetches by itself.

What is cached is what the store answers: for a key, its secret's hash, which
:func:`gateway.auth.authenticate` still compares in constant time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_ENTRIES = 10_000


class LookupCache(Generic[T]):
    __slots__ = ("_entries", "_epoch", "_flights", "enabled", "ttl")

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.enabled = ttl > 0
        self._entries: dict[str, tuple[float, T]] = {}
        self._epoch = 0
        # name -> the fetch in flight: (True, value) when it answered, (False, None) else
        self._flights: dict[str, asyncio.Future[tuple[bool, T | None]]] = {}

    def get(self, name: str) -> T | None:
        entry = self._entries.get(name)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._entries[name]
            return None
        return entry[1]

    async def load(self, name: str, fetch: Callable[[str], Awaitable[T | None]]) -> T | None:
        """The cached value of ``name``, else what ``fetch`` answers (kept
        when it is not None and nothing was dropped meanwhile)."""
        if not self.enabled:
            return await fetch(name)
        cached = self.get(name)
        if cached is not None:
            return cached
        flight = self._flights.get(name)
        if flight is not None:
            answered, shared = await asyncio.shield(flight)  # a waiter's cancel: its own
            if answered:
                return shared
            return await fetch(name)
        flight = self._flights[name] = asyncio.get_running_loop().create_future()
        answer: tuple[bool, T | None] = (False, None)
        try:
            epoch = self._epoch
            value = await fetch(name)
            answer = (True, value)
            if value is not None and epoch == self._epoch and self.enabled:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.pop(next(iter(self._entries)))
                self._entries[name] = (time.monotonic() + self.ttl, value)
            return value
        finally:
            if self._flights.get(name) is flight:
                del self._flights[name]
            flight.set_result(answer)

    def drop(self, name: str) -> None:
        self._epoch += 1
        self._entries.pop(name, None)
        self._flights.pop(name, None)  # later misses do not join a fetch from before

    def clear(self) -> None:
        self._epoch += 1
        self._entries.clear()
        self._flights.clear()

    def suspend(self) -> None:
        """Stop caching (the invalidation channel is down) until :meth:`resume`."""
        self.enabled = False
        self.clear()

    def resume(self) -> None:
        self.clear()
        self.enabled = self.ttl > 0
