"""What only the Redis store has: its keys (hash tags: one slot per
acceptance), personal data never in plaintext anywhere in Redis, the
durability check at start, errors as StoreUnavailable, the settings."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from config.settings import Secret, settings_from_mapping
from gateway.accept import accepted_body, new_message_id
from gateway.app import open_store
from gateway.errors import StoreUnavailable
from gateway.models import Client, Status
from gateway.store.base import IdempotencyRecord
from gateway.store.redis_keys import RedisKeys
from gateway.store.redis_store import RedisStore
from tests.conftest import base_config
from tests.contract.conftest import (
    REDIS_URL,
    delete_prefix,
    keys,
    new_redis_store,
    require_redis,
)
from tests.contract.helpers import (
    BODY,
    BORROWER,
    CALLBACK,
    PHONE,
    REFERENCE,
    T0,
    TEXT,
    make_message,
)


@pytest.fixture
async def redis_store() -> AsyncIterator[RedisStore]:
    await require_redis()
    prefix = f"lendsms-test-{secrets.token_hex(6)}"
    store = new_redis_store(prefix)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
        await delete_prefix(REDIS_URL, prefix)


async def everything(store: RedisStore) -> tuple[list[str], bytes]:
    """Every key of the store and every value in it, as Redis holds them."""
    redis = Redis.from_url(REDIS_URL)
    parts: list[bytes] = []
    try:
        names = [k async for k in redis.scan_iter(match=f"{{{store.keys.prefix}:*", count=1000)]
        for name in names:
            found = await redis.type(name)
            kind = found.decode() if isinstance(found, bytes) else found
            values: list[Any]
            if kind == "hash":
                values = [x for kv in (await redis.hgetall(name)).items() for x in kv]
            elif kind == "list":
                values = list(await redis.lrange(name, 0, -1))
            elif kind == "set":
                values = list(await redis.smembers(name))
            elif kind == "zset":
                values = list(await redis.zrange(name, 0, -1))
            else:
                values = [await redis.dump(name) or b""]
            parts += [bytes(v) for v in values]
        return [n.decode() for n in names], b"".join(parts) + b"".join(names)
    finally:
        await redis.aclose()


async def test_an_acceptance_lives_in_one_slot(redis_store: RedisStore) -> None:
    key = "order-4417"
    m = make_message(id=new_message_id(T0, f"acme\x00{key}"))
    record = IdempotencyRecord(key, "h", 202, accepted_body(m), T0 + timedelta(days=1))
    await redis_store.commit_acceptance(m, record, T0)
    names, _ = await everything(redis_store)
    shard_keys = [n for n in names if ":meta}" not in n]
    assert {key_slot(n.encode()) for n in shard_keys} == {
        key_slot(redis_store.keys.message(m.id).encode())
    }
    assert any(":i:" in n for n in shard_keys) and any(":q" in n for n in shard_keys)


def test_message_ids_keep_their_format_and_pick_the_key_shard() -> None:
    keys = RedisKeys("p", 16)
    for n in range(50):
        seed = f"client-{n}\x00key-{n}"
        mid = new_message_id(T0, seed)
        assert len(mid) == len(new_message_id(T0)) == 32 and mid.startswith("msg_")
        record = keys.idempotency(f"client-{n}", f"key-{n}")
        assert record.startswith(keys.message_tag(mid) + ":i:")


async def test_personal_fields_never_reach_redis_in_plaintext(redis_store: RedisStore) -> None:
    m = make_message()
    answer = {"id": m.id, "to_masked": m.to_masked, "body": BODY}
    record = IdempotencyRecord("idem-1", "h" * 64, 202, answer, T0 + timedelta(days=1))
    await redis_store.commit_acceptance(m, record, T0)
    await redis_store.transition(m.id, Status.SCHEDULED, T0, due_at=T0 + timedelta(hours=2))
    await redis_store.put_client(
        Client(id="acme", policy="cn-collection"), webhook_secret="whsec-TOPSECRET", create=True
    )
    _, raw = await everything(redis_store)
    assert m.id.encode() in raw  # the search works
    for secret in (PHONE, PHONE.lstrip("+"), "13812345678", "+86138****5678", TEXT, BODY,
                   "逾期3天", BORROWER, REFERENCE, CALLBACK, "whsec-TOPSECRET"):  # fmt: skip
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            assert secret.encode(encoding) not in raw, (secret[:6], encoding)


async def test_erase_leaves_no_old_ciphertext_in_redis(redis_store: RedisStore) -> None:
    m = make_message()
    record = IdempotencyRecord("k", "h", 202, accepted_body(m), T0 + timedelta(days=1))
    await redis_store.commit_acceptance(m, record, T0)
    _, before = await everything(redis_store)
    row = str(await redis_store.redis.hget(redis_store.keys.message(m.id), "sealed"))
    assert row.encode() in before
    done = await redis_store.erase_borrower(
        "acme", redis_store.index.borrower("acme", BORROWER), T0
    )
    assert done.messages == (m.id,) and done.answers == 1
    _, after = await everything(redis_store)
    assert row.encode() not in after


async def test_the_durability_check_warns_or_refuses(
    redis_store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    config = await redis_store.redis.config_get("append*")
    durable = config.get("appendonly") == "yes" and config.get("appendfsync") == "always"
    with caplog.at_level(logging.WARNING, logger="lendsms.store.redis"):
        assert await redis_store.check_durability() is durable
    if durable:
        return
    warned = [r.getMessage() for r in caplog.records if r.name == "lendsms.store.redis"]
    assert warned and all("redis://" not in w and "127.0.0.1" not in w for w in warned)
    strict = new_redis_store(redis_store.keys.prefix, require_durable=True)
    try:
        with pytest.raises(StoreUnavailable, match="require_durable"):
            await strict.open()
    finally:
        await strict.close()


async def test_an_unreachable_redis_is_store_unavailable() -> None:
    store = RedisStore("redis://:hunter2-secret@127.0.0.1:1/0", *keys(), timeout=0.5)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await store.open()
        assert "hunter2" not in str(caught.value)
        with pytest.raises(StoreUnavailable):
            await store.get_message("msg_x")
        with pytest.raises(StoreUnavailable):
            await store.claim_due(T0, 5, "w", T0)
    finally:
        await store.close()
    with pytest.raises(StoreUnavailable):
        await store.ping()  # closed


def test_settings_open_a_redis_store_and_the_policy_follows(tmp_path: Path) -> None:
    tree = base_config()
    tree["store"] = {
        "backend": "redis", "redis_url": "env:STORE_URL", "redis_prefix": "p1",
        "redis_shards": 4, "require_durable": True,
    }  # fmt: skip
    env = {"STORE_URL": "redis://:pw@127.0.0.1:6379/3", "LENDSMS_STORE__REDIS_SHARDS": "8"}
    settings = settings_from_mapping(tree, base_dir=tmp_path, env=env)
    assert settings.store.redis_url == Secret("redis://:pw@127.0.0.1:6379/3")
    assert "pw" not in repr(settings.store)
    assert (settings.store.redis_prefix, settings.store.redis_shards) == ("p1", 8)
    assert settings.policy.backend == "redis"
    assert settings.policy.redis_url == "redis://:pw@127.0.0.1:6379/3"
    store = open_store(settings)
    assert isinstance(store, RedisStore) and store.keys.shards == 8 and store.require_durable
    sqlite = settings_from_mapping(base_config(), base_dir=tmp_path)
    assert sqlite.policy.backend == "sqlite"
