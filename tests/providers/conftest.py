"""Fixtures for the adapter tests: fake provider servers on 127.0.0.1 and adapters
built through the registry (entry points), started and closed around each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from providers.base import OutboundSms, Provider
from providers.registry import build_provider
from tests.integration.test_dispatch import (  # noqa: F401 - the dispatcher rig's fixtures
    audit,
    clock,
    db_path,
    rig,
    store,
)
from tests.providers.fakes import FakeProvider

CN = "+8613812345678"
SMS = OutboundSms(
    message_id="msg_0001",
    to=CN,
    body="【安心消费金融】您的验证码是123456，5分钟内有效。",
    purpose="verification_code",
    client_id="acme",
    template="otp_v1",
    template_code="SMS_100",
    params={"code": "123456"},
)
FREE_TEXT = OutboundSms(
    message_id="msg_0002",
    to="+12015550123",
    body="Your payment of $120 is due on Dec 8.",
    purpose="repayment_reminder",
    client_id="acme",
)

Starter = Callable[..., Awaitable[Any]]


@pytest.fixture
async def fakes() -> AsyncIterator[Callable[[FakeProvider], Awaitable[Any]]]:
    started: list[FakeProvider] = []

    async def start(fake: FakeProvider) -> Any:
        await fake.start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        await fake.close()


@pytest.fixture
async def adapters(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    started: list[Provider] = []

    async def make(type_name: str, options: Mapping[str, Any], name: str = "p") -> Any:
        provider = build_provider(name, type_name, dict(options), base_dir=tmp_path)
        await provider.start()
        started.append(provider)
        return provider

    yield make
    for provider in started:
        await provider.close()


def closed_port_url() -> str:
    """A loopback URL nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
