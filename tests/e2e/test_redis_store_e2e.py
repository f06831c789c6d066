"""The whole gateway on the Redis store (``store.backend = "redis"``): a
message is accepted, dispatched to the outbox once, read back, and an
idempotent retry is replayed — including ten concurrent duplicates."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.appkeys import STORE
from gateway.store.redis_store import RedisStore
from tests.conftest import auth, wait_for
from tests.contract.conftest import REDIS_URL, delete_prefix, require_redis
from tests.e2e.test_messages_api import msg


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """Asked for before ``start_gateway``: its keys go after the gateway stopped
    (which writes a last audit checkpoint)."""
    await require_redis()
    prefix = f"lendsms-test-{secrets.token_hex(6)}"
    yield prefix
    await delete_prefix(REDIS_URL, prefix)


def on_redis(prefix: str) -> dict[str, Any]:
    return {"backend": "redis", "redis_url": REDIS_URL, "redis_prefix": prefix, "redis_shards": 4}


async def test_accept_dispatch_and_replay_on_redis(redis_prefix: str, start_gateway: Any) -> None:
    gw = await start_gateway(store=on_redis(redis_prefix))
    assert isinstance(gw.app[STORE], RedisStore)
    token = await gw.key()
    headers = {**auth(token), "Idempotency-Key": "order-77812-notice-3"}

    first = await gw.http.post("/v1/messages", json=msg(), headers=headers)
    assert first.status == 202
    body = await first.json()
    await wait_for(lambda: len(gw.outbox()) >= 1, what="the SMS")
    assert [line["id"] for line in gw.outbox()] == [body["id"]]

    async def sent() -> bool:
        r = await gw.http.get(f"/v1/messages/{body['id']}", headers=auth(token))
        return r.status == 200 and bool((await r.json())["status"] == "sent")

    await wait_for(sent, what="status sent")
    again = await gw.http.post("/v1/messages", json=msg(), headers=headers)
    assert again.status == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == body
    conflict = await gw.http.post("/v1/messages", json=msg(borrower_id="B-2"), headers=headers)
    assert conflict.status == 409
    assert [line["id"] for line in gw.outbox()] == [body["id"]]  # still one SMS


async def test_ten_concurrent_duplicates_give_one_sms_on_redis(
    redis_prefix: str, start_gateway: Any
) -> None:
    gw = await start_gateway(store=on_redis(redis_prefix))
    token = await gw.key()
    headers = {**auth(token), "Idempotency-Key": "dup-1"}
    responses = await asyncio.gather(
        *(gw.http.post("/v1/messages", json=msg(), headers=headers) for _ in range(10))
    )
    bodies = [await r.json() for r in responses]
    assert {r.status for r in responses} == {202}
    assert len({b["id"] for b in bodies}) == 1
    await wait_for(lambda: len(gw.outbox()) >= 1, what="the SMS")
    await asyncio.sleep(0.3)  # several dispatcher polls: no second SMS may follow
    assert [line["id"] for line in gw.outbox()] == [bodies[0]["id"]]
