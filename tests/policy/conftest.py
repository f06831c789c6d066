"""Fixtures of the contact-policy tests: both backends of the caps and opt-out
ports (real SQLite, real Redis at REDIS_URL with a key prefix of its own per
test, deleted afterwards), an injected clock, and a gateway with the contact
policy on."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.clock import FakeClock
from gateway.crypto import BlindIndex
from gateway.policy.redis_store import RedisPolicyStore
from gateway.policy.service import PolicyBackend
from gateway.policy.sqlite_store import SqlitePolicyStore
from tests.conftest import Gateway

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# 10:00 in Shanghai, 21:00 (winter) in New York: inside both windows
DAYTIME = datetime(2026, 1, 15, 2, 0, tzinfo=UTC)
OVERDUE = "【安心消费金融】尊敬的客户，您的借款已逾期3天，请尽快还款。"
REMINDER = "【安心消费金融】尊敬的客户，您本期应还1,086.40元，最后还款日12月8日。"
MARKETING = "【安心消费金融】会员日活动上线，欢迎了解。拒收请回复R"
CODE = "【安心消费金融】您的验证码是482913，5分钟内有效，请勿告诉他人。"
US_REMINDER = "Acme Lending: your payment of $120.00 is due on Dec 8. Reply STOP to stop texts."


async def delete_prefix(url: str, prefix: str) -> None:
    redis = Redis.from_url(url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"lendsms-test-{secrets.token_hex(6)}:"
    yield prefix
    await delete_prefix(REDIS_URL, prefix)


@pytest.fixture
def index() -> BlindIndex:
    return BlindIndex(secrets.token_bytes(32))


@pytest.fixture(params=["sqlite", "redis"])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str
) -> AsyncIterator[PolicyBackend]:
    store: PolicyBackend
    if request.param == "sqlite":
        store = SqlitePolicyStore(tmp_path / "policy.db")
    else:
        store = RedisPolicyStore(REDIS_URL, prefix=redis_prefix, timeout=2.0)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(DAYTIME)


def redis_policy(prefix: str, url: str = REDIS_URL) -> dict[str, Any]:
    return {"backend": "redis", "redis_url": url, "redis_prefix": prefix, "timeout": 0.5}


def gateway_starter(
    start_gateway: Callable[..., Awaitable[Gateway]], clock: FakeClock
) -> Callable[..., Awaitable[Gateway]]:
    """Starts gateways with the contact policy on and the fake clock."""

    async def start(**kwargs: Any) -> Gateway:
        kwargs.setdefault("clock", clock)
        return await start_gateway(contact_policy=True, **kwargs)

    return start


@pytest.fixture
def policy_gateway(
    start_gateway: Callable[..., Awaitable[Gateway]], clock: FakeClock
) -> Callable[..., Awaitable[Gateway]]:
    return gateway_starter(start_gateway, clock)
