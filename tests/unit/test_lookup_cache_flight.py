"""The lookup cache's shared fetch (gateway/store/lookup_cache.py): concurrent
misses of one name make one fetch; a failed or dropped fetch is not shared."""

from __future__ import annotations

import asyncio

import pytest

from gateway.store.lookup_cache import LookupCache


class Fetcher:
    def __init__(self, answer: str | None = "value", fail_first: bool = False) -> None:
        self.calls = 0
        self.answer = answer
        self.fail_first = fail_first
        self.gate = asyncio.Event()

    async def __call__(self, name: str) -> str | None:
        self.calls += 1
        await self.gate.wait()
        if self.fail_first and self.calls == 1:
            raise ConnectionError("the store is down")
        return self.answer


async def test_concurrent_misses_share_one_fetch() -> None:
    cache: LookupCache[str] = LookupCache(ttl=60)
    fetch = Fetcher()
    loads = [asyncio.create_task(cache.load("k", fetch)) for _ in range(5)]
    await asyncio.sleep(0)
    fetch.gate.set()
    assert await asyncio.gather(*loads) == ["value"] * 5
    assert fetch.calls == 1
    assert cache.get("k") == "value"


async def test_waiters_fetch_by_themselves_when_the_shared_fetch_fails() -> None:
    cache: LookupCache[str] = LookupCache(ttl=60)
    fetch = Fetcher(fail_first=True)
    first = asyncio.create_task(cache.load("k", fetch))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.load("k", fetch))
    await asyncio.sleep(0)
    fetch.gate.set()
    with pytest.raises(ConnectionError):
        await first
    assert await second == "value"
    assert fetch.calls == 2


async def test_a_cancelled_waiter_does_not_cancel_the_others() -> None:
    cache: LookupCache[str] = LookupCache(ttl=60)
    fetch = Fetcher()
    first = asyncio.create_task(cache.load("k", fetch))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(cache.load("k", fetch))
    other = asyncio.create_task(cache.load("k", fetch))
    await asyncio.sleep(0)
    waiter.cancel()
    fetch.gate.set()
    assert await first == "value"
    assert await other == "value"
    assert waiter.cancelled()
    assert fetch.calls == 1


async def test_a_miss_after_a_drop_does_not_join_the_earlier_fetch() -> None:
    cache: LookupCache[str] = LookupCache(ttl=60)
    fetch = Fetcher()
    first = asyncio.create_task(cache.load("k", fetch))
    await asyncio.sleep(0)
    cache.drop("k")  # e.g. the key was revoked meanwhile
    later = asyncio.create_task(cache.load("k", fetch))
    await asyncio.sleep(0)
    fetch.gate.set()
    await asyncio.gather(first, later)
    assert fetch.calls == 2
    assert cache.get("k") == "value"  # the fetch begun after the drop is kept
