"""The Redis backend of the contact policy in running gateways: acceptance 1
with two ``lendsms serve`` processes sharing one Redis, and acceptance 4 (the
Redis server stops mid-test: 503 and nothing reaches the provider; it comes
back and sends resume without a restart). The shared Redis on REDIS_URL is
never stopped: acceptance 4 runs a redis-server of its own on a free port."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.clock import FakeClock
from tests.conftest import CN_MOBILE, Gateway, auth, wait_for
from tests.policy.conftest import CODE, OVERDUE, REDIS_URL, redis_policy
from tests.subprocess_env import gateway_env

DEADLINE = 30.0
Start = Callable[..., Awaitable[Gateway]]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def notice(borrower: str = "B-1") -> dict[str, str]:
    return {"to": CN_MOBILE, "borrower_id": borrower, "purpose": "overdue_notice", "text": OVERDUE}


async def test_fifty_concurrent_notices_on_redis_in_process(
    policy_gateway: Start, redis_prefix: str
) -> None:
    gw = await policy_gateway(dispatch=False, policy=redis_policy(redis_prefix))
    token = await gw.key()
    answers = await asyncio.gather(
        *(gw.http.post("/v1/messages", json=notice(), headers=auth(token)) for _ in range(50))
    )
    assert sorted(a.status for a in answers) == [202] * 3 + [429] * 47


# ------------------------------------------------ two gateway processes


def lendsms(cwd: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=DEADLINE, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def two_gateways(tmp_path: Path, redis_prefix: str) -> Iterator[list[tuple[int, str]]]:
    """Two serve processes: one config (shared keys, as replicas have), a
    store and an audit log each, the policy on the shared Redis."""
    base = gateway_env()
    lendsms(tmp_path, base, "init", "--dir", "D")
    config = str(tmp_path / "D" / "lendsms.toml")
    procs: list[subprocess.Popen[bytes]] = []
    out: list[tuple[int, str]] = []
    try:
        for name in ("a", "b"):
            env = {
                **base,
                "LENDSMS_STORE__PATH": f"var/{name}.db",
                "LENDSMS_AUDIT__DIR": f"var/audit-{name}",
                "LENDSMS_POLICY__BACKEND": "redis",
                "LENDSMS_POLICY__REDIS_URL": REDIS_URL,
                "LENDSMS_POLICY__REDIS_PREFIX": redis_prefix,
                "LENDSMS_DISPATCH__ENABLED": "false",
            }
            lendsms(tmp_path, env, "clients", "add", "acme", "--policy", "cn-collection",
                    "--config", config)  # fmt: skip
            token = lendsms(tmp_path, env, "keys", "create", "--client", "acme", "--scope",
                            "send", "--config", config).splitlines()[-1]  # fmt: skip
            port = free_port()
            err = (tmp_path / f"serve-{name}.err").open("wb")
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve", "--config", config,
                 "--port", str(port)],
                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err,
            ))  # fmt: skip
            err.close()
            out.append((port, token))
        yield out
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def wait_up(http: aiohttp.ClientSession, port: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        assert time.monotonic() < deadline, "gateway did not come up"
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_fifty_concurrent_notices_across_two_gateway_processes(
    two_gateways: list[tuple[int, str]],
) -> None:
    async with aiohttp.ClientSession() as http:
        for port, _ in two_gateways:
            await wait_up(http, port)

        async def post(i: int) -> tuple[int, dict[str, Any], str | None]:
            port, token = two_gateways[i % 2]
            url = f"http://127.0.0.1:{port}/v1/messages"
            async with http.post(url, json=notice(), headers=auth(token)) as resp:
                return (
                    resp.status,
                    await resp.json(content_type=None),
                    resp.headers.get("Retry-After"),
                )

        answers = await asyncio.gather(*(post(i) for i in range(50)))
    assert sum(1 for s, _, _ in answers if s == 202) == 3
    refused = [(body, retry) for s, body, retry in answers if s == 429]
    assert len(refused) == 47
    assert all(body["rule"] == "cap.overdue_notice.day" and retry for body, retry in refused)


# ------------------------------------------------ Redis stops mid-test


class OwnRedis:
    """A redis-server of this test's own on a free loopback port."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (.ci/run installs it)"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            assert time.monotonic() < deadline, "own redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=DEADLINE)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_redis_down_fails_closed_and_recovers_by_itself(
    policy_gateway: Start, own_redis: OwnRedis, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="lendsms.dispatch")
    clock.set(datetime.fromisoformat("2026-01-15T07:55:00+08:00"))
    gw = await policy_gateway(policy=redis_policy("lendsms:", own_redis.url))
    token = await gw.key()
    resp = await gw.http.post("/v1/messages", json=notice(), headers=auth(token))
    waiting = await resp.json()
    assert resp.status == 202 and waiting["status"] == "scheduled"

    own_redis.stop()
    for body in (notice("B-2"), {**notice("B-3"), "purpose": "verification_code", "text": CODE}):
        resp = await gw.http.post("/v1/messages", json=body, headers=auth(token))
        problem = await resp.json()
        assert resp.status == 503 and problem["type"].endswith("/unavailable")
        assert resp.headers["Retry-After"]
    resp = await gw.http.post("/v1/opt-outs/query", json={"to": CN_MOBILE}, headers=auth(token))
    assert resp.status == 503
    # the waiting message comes due: the hand-off re-check cannot ask Redis
    clock.set(datetime.fromisoformat(waiting["scheduled_at"]) + timedelta(minutes=1))
    await wait_for(
        lambda: any("dispatch deferred" in r.getMessage() for r in caplog.records),
        what="a deferred hand-off",
    )
    assert gw.outbox() == []

    own_redis.start()  # same port, empty: no restart of the gateway

    async def accepted() -> bool:
        r = await gw.http.post("/v1/messages", json=notice("B-4"), headers=auth(token))
        return r.status == 202

    await wait_for(accepted, timeout=DEADLINE, what="sends accepted again")
    clock.advance(gw.settings.dispatch.lease_seconds + 1)  # the deferred claim's lease
    await wait_for(lambda: len(gw.outbox()) == 2, what="both messages sent")
    assert waiting["id"] in {line["id"] for line in gw.outbox()}
