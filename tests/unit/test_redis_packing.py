"""The hiredis command packer sends exactly the bytes redis-py's own packer
sends, and leaves what it cannot pack to redis-py (with redis-py's errors)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError
from redis.utils import HIREDIS_AVAILABLE

from gateway.store.redis_packing import HiredisConnection, connection_options

pytestmark = pytest.mark.skipif(not HIREDIS_AVAILABLE, reason="hiredis is not installed")

COMMANDS: list[tuple[Any, ...]] = [
    ("EVALSHA", "a" * 40, 2, "{lendsms:s1}:m:msg_1", "{lendsms:s1}:q", "tag", '{"é": "短信"}'),
    ("SET", "k", 1.1),
    ("SET", "k", 0.1 + 0.2),
    ("SET", "k", -3),
    ("SET", "k", 2**70),
    ("SET", "k", b"\x00\xff"),
    ("SET", "k", memoryview(b"ab")),
    ("SET", "k", "x" * 10_000),
    ("CONFIG GET", "appendonly"),
]


@pytest.mark.parametrize("args", COMMANDS)
def test_the_same_bytes_as_redis_py(args: tuple[Any, ...]) -> None:
    ours = b"".join(bytes(c) for c in HiredisConnection().pack_command(*args))
    theirs = b"".join(bytes(c) for c in Connection().pack_command(*args))
    assert ours == theirs


def test_what_hiredis_refuses_gets_redis_pys_error() -> None:
    with pytest.raises(DataError):
        HiredisConnection().pack_command("SET", "k", None)
    with pytest.raises(DataError):
        HiredisConnection().pack_command("SET", "k", True)


def test_only_plain_tcp_urls_get_the_packer() -> None:
    assert connection_options("redis://127.0.0.1:6379/0") == {"connection_class": HiredisConnection}
    assert connection_options("rediss://example:6380/0") == {}
    assert connection_options("unix:///run/redis.sock") == {}
