"""The API-key and client cache of the Redis store: a revocation or a client
change in one process reaches every other at once (pub/sub), entries expire,
and nothing is cached while the invalidation channel is not subscribed."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from gateway.models import ApiKey, Client
from gateway.store.lookup_cache import LookupCache
from gateway.store.redis_store import RedisStore
from tests.contract.conftest import REDIS_URL, delete_prefix, new_redis_store, require_redis
from tests.contract.helpers import T0

CLIENT = Client("lender", "cn-collection", ("[Lender]",), 50, ())
KEY = ApiKey("abcdefghijkl", "lender", frozenset({"send"}), T0)


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 2.0) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.01)
    return False


@pytest.fixture
async def pair() -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """Two processes' stores on one Redis: ``a`` without a cache (the CLI),
    ``b`` with one (a gateway replica)."""
    await require_redis()
    prefix = f"lendsms-test-{secrets.token_hex(6)}"
    a = new_redis_store(prefix)
    b = new_redis_store(prefix, lookup_cache_seconds=30.0)
    await a.open()
    await b.open()
    try:
        await a.put_client(CLIENT, webhook_secret=None, create=True)
        await a.add_key(KEY, "hash-1")
        await b.get_key(KEY.id)  # starts b's listener

        async def subscribed() -> bool:
            return b.caching

        assert await eventually(subscribed)
        yield a, b
    finally:
        await a.close()
        await b.close()
        await delete_prefix(REDIS_URL, prefix)


async def drop_behind_the_stores_back(store: RedisStore, meta: str, field: str) -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.hdel(store.keys.meta(meta), field)
    finally:
        await redis.aclose()


async def test_lookups_are_cached_while_subscribed(pair: tuple[RedisStore, RedisStore]) -> None:
    _, b = pair
    assert await b.get_key(KEY.id) is not None
    assert await b.get_client(CLIENT.id) == CLIENT
    await drop_behind_the_stores_back(b, "k", KEY.id)  # no invalidation published
    await drop_behind_the_stores_back(b, "c", CLIENT.id)
    stored = await b.get_key(KEY.id)
    assert stored is not None and stored.secret_hash == "hash-1"
    assert await b.get_client(CLIENT.id) == CLIENT


async def test_a_revocation_elsewhere_takes_effect_at_once(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    a, b = pair
    cached = await b.get_key(KEY.id)
    assert cached is not None and cached.key.revoked_at is None
    assert await a.revoke_key(KEY.id, T0 + timedelta(hours=1))

    async def revoked() -> bool:
        stored = await b.get_key(KEY.id)
        return stored is not None and stored.key.revoked_at is not None

    assert await eventually(revoked, seconds=1.0)


async def test_a_client_change_elsewhere_takes_effect_at_once(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    a, b = pair
    assert await b.get_client(CLIENT.id) == CLIENT
    changed = Client(CLIENT.id, CLIENT.policy, CLIENT.signatures, 7, CLIENT.link_domains)
    await a.put_client(changed, webhook_secret=None, create=False)

    async def seen() -> bool:
        found = await b.get_client(CLIENT.id)
        return found is not None and found.rate == 7

    assert await eventually(seen, seconds=1.0)


async def test_revoking_in_the_same_process_drops_the_entry_before_returning(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    _, b = pair
    await b.get_key(KEY.id)
    assert await b.revoke_key(KEY.id, T0 + timedelta(hours=1))
    stored = await b.get_key(KEY.id)
    assert stored is not None and stored.key.revoked_at is not None


async def test_unknown_ids_are_not_cached(pair: tuple[RedisStore, RedisStore]) -> None:
    a, b = pair
    other = ApiKey("mnopqrstuvwx", "lender", frozenset({"send"}), T0)
    assert await b.get_key(other.id) is None
    await a.add_key(other, "hash-2")
    assert await b.get_key(other.id) is not None


async def test_nothing_is_cached_without_the_channel() -> None:
    await require_redis()
    prefix = f"lendsms-test-{secrets.token_hex(6)}"
    store = new_redis_store(prefix, url=REDIS_URL, lookup_cache_seconds=30.0)
    await store.open()
    try:
        await store.put_client(CLIENT, webhook_secret=None, create=True)
        assert not store.caching  # not subscribed before the first lookup
        await store.close()
        assert not store.caching
    finally:
        await store.close()
        await delete_prefix(REDIS_URL, prefix)


async def test_entries_expire_and_a_drop_during_a_lookup_wins() -> None:
    cache: LookupCache[str] = LookupCache(0.05)
    assert await cache.load("a", fetch_value("1")) == "1"
    assert cache.get("a") == "1"
    await asyncio.sleep(0.06)
    assert cache.get("a") is None

    async def dropped_meanwhile(name: str) -> str:
        cache.drop(name)  # an invalidation arrives while the store answers
        return "stale"

    assert await cache.load("b", dropped_meanwhile) == "stale"
    assert cache.get("b") is None
    cache.suspend()
    assert await cache.load("c", fetch_value("3")) == "3"
    assert cache.get("c") is None
    cache.resume()
    assert await cache.load("c", fetch_value("4")) == "4"
    assert cache.get("c") == "4"


def fetch_value(value: str) -> Callable[[str], Awaitable[str]]:
    async def fetch(_: str) -> str:
        return value

    return fetch
