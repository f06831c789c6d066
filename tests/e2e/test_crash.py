"""DESIGN.md invariant 2 (a 202 is durable) and 9 (at most once to a provider):
``lendsms serve`` is killed with SIGKILL right after answering 202; after a
restart every accepted message is in the outbox exactly once."""

from __future__ import annotations

import asyncio
import collections
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from providers.outbox import read_outbox
from tests.subprocess_env import gateway_env

LENDSMS = [sys.executable, "-m", "gateway.cli"]
TEXT = "【安心消费金融】您本期应还1,086.40元，最后还款日12月8日。"


def _env() -> dict[str, str]:
    env = gateway_env()
    env.update(
        LENDSMS_DISPATCH__LEASE_SECONDS="1.5",
        LENDSMS_DISPATCH__PROVIDER_TIMEOUT="1.0",
        LENDSMS_DISPATCH__POLL_INTERVAL="0.05",
    )
    return env


def _cli(tmp: Path, *args: str) -> str:
    out = subprocess.run(
        [*LENDSMS, *args, "--config", str(tmp / "lendsms.toml")],
        capture_output=True, text=True, env=_env(), check=True, timeout=60,
    )  # fmt: skip
    return out.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, tmp: Path, port: int) -> None:
        self.tmp, self.port = tmp, port
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"

    async def start(self, http: aiohttp.ClientSession) -> None:
        config = str(self.tmp / "lendsms.toml")
        self.proc = subprocess.Popen(
            [*LENDSMS, "serve", "--config", config, "--port", str(self.port)],
            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "server exited during start-up"
            try:
                async with http.get(self.url + "/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        self.kill()  # not left running for the rest of the suite
        raise AssertionError("server did not come up")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, str]:
    subprocess.run([*LENDSMS, "init", "--dir", str(tmp_path)], check=True, env=_env(),
                   capture_output=True, timeout=60)  # fmt: skip
    _cli(tmp_path, "clients", "add", "acme")
    key = _cli(tmp_path, "keys", "create", "--client", "acme", "--scope", "send").splitlines()[-1]
    return tmp_path, key


async def _send(http: aiohttp.ClientSession, url: str, key: str, n: int) -> Any:
    # a service notice: exempt from quiet hours and caps, so 100 of them to one
    # number are sent at any hour (the contact policy has tests of its own)
    payload = {"to": "+8613812345678", "purpose": "service", "text": TEXT,
               "borrower_id": f"B-{n}"}  # fmt: skip
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"crash-{n}"}
    async with http.post(url + "/v1/messages", json=payload, headers=headers) as r:
        assert r.status == 202, await r.text()
        return (await r.json())["id"]


async def test_sigkill_after_202_sends_each_message_exactly_once(setup: tuple[Path, str]) -> None:
    tmp, key = setup
    server = Server(tmp, _free_port())
    accepted: list[str] = []
    async with aiohttp.ClientSession() as http:
        try:
            n = 0
            for burst in (1, 1, 5, 20):  # a lone message, then bursts caught mid-dispatch
                await server.start(http)
                ids = await asyncio.gather(
                    *(_send(http, server.url, key, n + i) for i in range(burst))
                )
                server.kill()  # right after the last 202
                accepted.extend(ids)
                n += burst
            outbox = tmp / "var" / "outbox.jsonl"
            for _ in range(3):  # killed while the dispatcher is busy handing messages over
                await server.start(http)
                before = len(read_outbox(outbox))
                ids = await asyncio.gather(
                    *(_send(http, server.url, key, n + i) for i in range(40))
                )
                accepted.extend(ids)
                n += 40
                deadline = time.monotonic() + 20
                while len(read_outbox(outbox)) < before + 10 and time.monotonic() < deadline:
                    await asyncio.sleep(0.002)
                server.kill()
            await server.start(http)
            await _wait_all_sent(http, server.url, key, accepted)
            await asyncio.sleep(2.0)  # past the lease: nothing may be sent a second time
        finally:
            server.stop()
    counts = collections.Counter(line["id"] for line in read_outbox(tmp / "var" / "outbox.jsonl"))
    assert set(counts) == set(accepted)
    assert all(c == 1 for c in counts.values()), {k: c for k, c in counts.items() if c != 1}


async def _wait_all_sent(http: aiohttp.ClientSession, url: str, key: str, ids: list[str]) -> None:
    deadline = time.monotonic() + 30
    pending = set(ids)
    while pending and time.monotonic() < deadline:
        for mid in list(pending):
            async with http.get(f"{url}/v1/messages/{mid}",
                                headers={"Authorization": f"Bearer {key}"}) as r:  # fmt: skip
                if (await r.json())["status"] == "sent":
                    pending.discard(mid)
        await asyncio.sleep(0.1)
    assert not pending, f"{len(pending)} messages never reached sent"
