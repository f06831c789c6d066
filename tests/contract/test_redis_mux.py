"""The multiplexed connection of the acceptance path (gateway/store/redis_mux.py)
on a real Redis: answers reach their callers under concurrency, error answers
and unknown scripts behave as in redis-py, and a lost or stuck connection
fails the calls in flight and is replaced by the next call."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis import exceptions as rx
from redis.asyncio import Redis

from gateway.store.redis_mux import RedisMux, multiplexable
from tests.contract.conftest import REDIS_URL, require_redis


@pytest.fixture
async def mux() -> AsyncIterator[RedisMux]:
    await require_redis()
    connection = RedisMux(REDIS_URL, timeout=2.0)
    yield connection
    await connection.close()


async def test_concurrent_calls_get_their_own_answers(mux: RedisMux) -> None:
    words = [f"w{i}-{secrets.token_hex(4)}" for i in range(300)]
    answers = await asyncio.gather(*(mux.execute("ECHO", w) for w in words))
    assert answers == words


async def test_an_error_answer_is_a_response_error_and_the_connection_stays(
    mux: RedisMux,
) -> None:
    with pytest.raises(rx.ResponseError):
        await mux.execute("NOSUCHCOMMAND")
    assert await mux.execute("PING") == "PONG"


async def test_an_unknown_script_is_loaded_and_run(mux: RedisMux) -> None:
    redis = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        script = redis.register_script(f"-- {secrets.token_hex(8)}\nreturn {{1, ARGV[1]}}")
        assert await mux.evalsha(script, [], ["x"]) == [1, "x"]
        assert await mux.evalsha(script, [], ["y"]) == [1, "y"]
    finally:
        await redis.aclose()


async def test_a_killed_connection_is_replaced(mux: RedisMux) -> None:
    client_id = await mux.execute("CLIENT", "ID")
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.execute_command("CLIENT", "KILL", "ID", client_id)
    finally:
        await redis.aclose()
    for _ in range(50):
        try:
            assert await mux.execute("PING") == "PONG"
            break
        except rx.ConnectionError:  # the call that found it dead
            await asyncio.sleep(0.01)
    assert await mux.execute("CLIENT", "ID") != client_id


async def test_a_stuck_call_times_out_and_fails_the_connection() -> None:
    await require_redis()
    mux = RedisMux(REDIS_URL, timeout=0.2)
    try:
        empty = f"lendsms-test-{secrets.token_hex(6)}"
        with pytest.raises(rx.TimeoutError):
            await mux.execute("BLPOP", empty, 2)
        assert await mux.execute("PING") == "PONG"  # a new connection
    finally:
        await mux.close()


async def test_the_database_of_the_url_is_selected() -> None:
    await require_redis()
    base = REDIS_URL.rsplit("/", 1)[0]
    mux = RedisMux(f"{base}/3", timeout=2.0)
    key = f"lendsms-test-{secrets.token_hex(6)}"
    redis = Redis.from_url(f"{base}/3", decode_responses=True)
    try:
        await mux.execute("SET", key, "v", "EX", 60)
        assert await redis.get(key) == "v"
    finally:
        await redis.delete(key)
        await redis.aclose()
        await mux.close()


@pytest.fixture
def locked_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server of this test's own that wants a password; its URL."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (.ci/run installs it)"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    password = secrets.token_hex(8)
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path), "--requirepass", password],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"-NOAUTH"):
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "own redis-server did not start"
            time.sleep(0.05)
        yield f"redis://:{password}@127.0.0.1:{port}/3"
    finally:
        proc.kill()
        proc.wait(timeout=10)


async def test_calls_made_while_connecting_run_after_the_whole_handshake(
    locked_redis: str,
) -> None:
    """AUTH and SELECT go out before any caller's command: the first calls,
    made together on a new connection, all land in the URL's database."""
    mux = RedisMux(locked_redis, timeout=2.0)
    redis = Redis.from_url(locked_redis, decode_responses=True)
    try:
        keys = [f"k{i}" for i in range(50)]
        first = asyncio.create_task(mux.execute("SET", keys[0], "v"))
        while mux._writer is None:  # connected, the handshake under way
            await asyncio.sleep(0)
        await asyncio.gather(first, *(mux.execute("SET", k, "v") for k in keys[1:]))
        assert sorted(await redis.keys("*")) == sorted(keys)  # all in db 3
        await redis.select(0)  # type: ignore[no-untyped-call]
        assert await redis.dbsize() == 0
    finally:
        await redis.aclose()
        await mux.close()


def test_only_plain_redis_urls() -> None:
    assert multiplexable("redis://127.0.0.1:6379/0")
    assert not multiplexable("rediss://example:6380/0")
    assert not multiplexable("unix:///run/redis.sock")
    with pytest.raises(ValueError, match="redis://"):
        RedisMux("rediss://example:6380/0", timeout=1.0)
