"""Real ``lendsms`` processes for the scale-out tests: a setup made by ``lendsms
init``, ``serve`` and ``worker`` processes on it, and the store backend they
share (the embedded SQLite file, or the Redis at REDIS_URL under a key prefix
of the test's own, removed afterwards)."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from config.settings import SettingsError, settings_from_mapping
from tests.conftest import base_config, deep_merge
from tests.redis_keys import drop_keys_containing
from tests.subprocess_env import gateway_env

LENDSMS = [sys.executable, "-m", "gateway.cli"]
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DEADLINE = 30.0
SERVICE_TEXT = "【安心消费金融】您本期应还1,086.40元，最后还款日12月8日。"
OVERDUE_TEXT = "【安心消费金融】尊敬的客户，您的借款已逾期3天，请尽快还款。"
FAST_DISPATCH = {  # a killed worker's leases run out quickly
    "LENDSMS_DISPATCH__LEASE_SECONDS": "1.5",
    "LENDSMS_DISPATCH__PROVIDER_TIMEOUT": "1.0",
    "LENDSMS_DISPATCH__POLL_INTERVAL": "0.05",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def redis_store_missing(tmp: Path) -> str | None:
    """Why ``store.backend = "redis"`` cannot run yet (None: it can)."""
    tree = deep_merge(base_config(), {"store": {"backend": "redis", "redis_url": REDIS_URL}})
    try:
        settings = settings_from_mapping(tree, base_dir=tmp)
    except SettingsError as exc:
        return f"the settings refuse store.backend = redis ({exc})"
    from gateway.app import open_store
    from gateway.store.sqlite import SqliteStore

    if isinstance(open_store(settings), SqliteStore):
        return "the store factory does not build a Redis store yet"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Deployment:
    """One ``lendsms init`` folder and the environment every process gets."""

    root: Path
    backend: str
    prefix: str = field(default_factory=lambda: "t" + secrets.token_hex(5))
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    token: str = ""

    @property
    def config(self) -> str:
        return str(self.root / "lendsms.toml")

    @property
    def outbox(self) -> Path:
        return self.root / "var" / "outbox.jsonl"

    def env(self) -> dict[str, str]:
        env = gateway_env()
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.update(FAST_DISPATCH)
        if self.backend == "redis":
            env.update(
                LENDSMS_STORE__BACKEND="redis",
                LENDSMS_STORE__REDIS_URL=REDIS_URL,
                LENDSMS_STORE__REDIS_PREFIX=self.prefix,
                LENDSMS_POLICY__BACKEND="redis",
                LENDSMS_POLICY__REDIS_URL=REDIS_URL,
                LENDSMS_POLICY__REDIS_PREFIX=self.prefix + "p:",
            )
        env.update(self.extra_env)
        return env

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [*LENDSMS, *args, "--config", self.config], capture_output=True, text=True,
            env=self.env(), check=False, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    def init(self) -> Deployment:
        subprocess.run([*LENDSMS, "init", "--dir", str(self.root)], check=True, env=self.env(),
                       capture_output=True, timeout=60)  # fmt: skip
        self.cli("clients", "add", "acme")
        self.token = self.cli("keys", "create", "--client", "acme", "--scope", "send")
        self.token = self.token.splitlines()[-1]
        return self

    def spawn(self, *args: str, name: str) -> subprocess.Popen[bytes]:
        with (self.root / f"{name}.err").open("ab") as err:
            proc = subprocess.Popen(
                [*LENDSMS, *args, "--config", self.config], env=self.env(),
                stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        self.procs.append(proc)
        return proc

    def serve(self, port: int, *args: str, name: str = "serve") -> subprocess.Popen[bytes]:
        return self.spawn("serve", "--port", str(port), *args, name=name)

    def worker(self, *args: str, name: str = "worker") -> subprocess.Popen[bytes]:
        return self.spawn("worker", *args, name=name)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()

    def drop_redis_keys(self) -> None:
        if self.backend != "redis":
            return
        drop_keys_containing(REDIS_URL, self.prefix)


@pytest.fixture(params=["sqlite", "redis"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """A fresh setup on each store backend. Redis skips (fails in CI) while
    the Redis store is not there yet."""
    backend = str(request.param)
    if backend == "redis" and (why := redis_store_missing(tmp_path)) is not None:
        if in_ci():
            pytest.fail(f"redis scale-out tests cannot run in CI: {why}")
        pytest.skip(why)
    dep = Deployment(tmp_path / "d", backend)
    try:
        yield dep.init()
    finally:
        dep.stop_all()
        dep.drop_redis_keys()


async def wait_http(http: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + DEADLINE
    while True:
        assert proc.poll() is None, f"process exited during start-up ({proc.returncode})"
        try:
            async with http.get(url) as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        assert time.monotonic() < deadline, f"{url} did not come up"
        await asyncio.sleep(0.05)


def send_body(n: int, *, purpose: str = "service", text: str = SERVICE_TEXT) -> dict[str, Any]:
    """A message to borrower ``n`` at a number of its own (valid CN mobiles)."""
    return {"to": f"+86138{n:08d}", "borrower_id": f"B-{n}", "purpose": purpose, "text": text}


async def post(
    http: aiohttp.ClientSession, url: str, token: str, body: dict[str, Any], key: str | None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    async with http.post(url + "/v1/messages", json=body, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def statuses(
    http: aiohttp.ClientSession, url: str, token: str, ids: list[str]
) -> dict[str, str]:
    out = {}
    for mid in ids:
        async with http.get(f"{url}/v1/messages/{mid}",
                            headers={"Authorization": f"Bearer {token}"}) as r:  # fmt: skip
            out[mid] = (await r.json())["status"]
    return out
