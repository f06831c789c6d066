"""The backend contract: every test here runs against the embedded SQLite
store (a file in a temporary directory) and the Redis store (a real server at
REDIS_URL, with a key prefix of its own per test, deleted afterwards). When
Redis is unreachable the Redis half is skipped on a workstation and fails in
CI (CI=true). With REDIS_CLUSTER_URL set (a node of a Redis Cluster) every
test runs a third time, on the Cluster."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from gateway.crypto import BlindIndex, FieldCipher
from gateway.store.base import Store
from gateway.store.redis_store import RedisStore
from gateway.store.sqlite import SqliteStore

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_CLUSTER_URL = os.environ.get("REDIS_CLUSTER_URL", "")
BACKENDS = ["sqlite", "redis", *(["redis-cluster"] if REDIS_CLUSTER_URL else [])]


def _client(url: str, cluster: bool) -> Any:
    if cluster:
        return RedisCluster.from_url(url, socket_connect_timeout=2)
    return Redis.from_url(url, socket_connect_timeout=2)


async def delete_prefix(url: str, prefix: str, *, cluster: bool = False) -> None:
    redis = _client(url, cluster)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{{{prefix}:*", count=1000)]
        for key in keys:  # one by one: they span many slots
            await redis.unlink(key)
    finally:
        await redis.aclose()


async def require_redis(url: str = REDIS_URL, *, cluster: bool = False) -> None:
    try:
        redis = _client(url, cluster)
        try:
            await redis.ping()
        finally:
            await redis.aclose()
    except (RedisError, OSError) as exc:
        message = f"Redis at {'REDIS_CLUSTER_URL' if cluster else 'REDIS_URL'} is unreachable"
        message += f" ({exc.__class__.__name__})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


def keys() -> tuple[FieldCipher, BlindIndex]:
    return FieldCipher(secrets.token_bytes(32)), BlindIndex(secrets.token_bytes(32))


def new_redis_store(prefix: str, url: str = REDIS_URL, **options: Any) -> RedisStore:
    return RedisStore(url, *keys(), prefix=prefix, timeout=5.0, **options)


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        sqlite = SqliteStore(tmp_path / "var" / "lendsms.db", *keys())
        await sqlite.open()
        yield sqlite
        await sqlite.close()
        return
    cluster = request.param == "redis-cluster"
    url = REDIS_CLUSTER_URL if cluster else REDIS_URL
    await require_redis(url, cluster=cluster)
    prefix = f"lendsms-test-{secrets.token_hex(6)}"
    redis = new_redis_store(prefix, url, shards=8, cluster=cluster)
    await redis.open()
    try:
        yield redis
    finally:
        await redis.close()
        await delete_prefix(url, prefix, cluster=cluster)
