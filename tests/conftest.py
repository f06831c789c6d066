"""Shared fixtures: real settings in a temporary folder, a real SQLite store,
a real audit log and the real outbox provider."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from config.settings import Settings, settings_from_mapping
from gateway.app import create_app
from gateway.appkeys import STORE
from gateway.auth import new_key
from gateway.clock import Clock
from gateway.models import Client
from gateway.pipeline import Stage
from providers.outbox import read_outbox

CN_MOBILE = "+8613812345678"
US_MOBILE = "+12015550123"


def random_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = (
            deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
        )
    return out


def base_config() -> dict[str, Any]:
    return {
        "keys": {"data": random_key(), "index": random_key(), "audit": random_key()},
        "store": {"path": "var/lendsms.db"},
        "audit": {"dir": "var/audit"},
        "dispatch": {
            "poll_interval": 0.02,
            "backoff_base": 0.05,
            "backoff_max": 0.2,
            "lease_seconds": 2.0,
            "provider_timeout": 1.0,
        },
        "providers": {"outbox": {"type": "outbox", "path": "var/outbox.jsonl"}},
        "routes": [{"providers": ["outbox"]}],
    }


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return settings_from_mapping(deep_merge(base_config(), overrides), base_dir=tmp_path)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


async def wait_for(
    predicate: Callable[[], Awaitable[bool] | bool], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll with a deadline (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Gateway:
    """A running app with helpers to register clients and keys."""

    http: TestClient
    settings: Settings

    @property
    def app(self) -> Any:
        return self.http.server.app

    async def key(
        self,
        client_id: str = "acme",
        scopes: Sequence[str] = ("send",),
        *,
        signatures: Sequence[str] = (),
    ) -> str:
        store = self.app[STORE]
        if await store.get_client(client_id) is None:
            await store.put_client(
                Client(id=client_id, policy="cn-collection", signatures=tuple(signatures)),
                webhook_secret=None,
                create=True,
            )
        made = new_key(client_id, frozenset(scopes), datetime.now(UTC))
        await store.add_key(made.key, made.secret_hash)
        return made.token

    def outbox(self) -> list[dict[str, Any]]:
        return read_outbox(self.settings.base_dir / "var" / "outbox.jsonl")


@pytest.fixture
def start_gateway(
    aiohttp_client: Any, make_settings: Callable[..., Settings]
) -> Callable[..., Awaitable[Gateway]]:
    async def start(
        *,
        dispatch: bool = True,
        stages: Sequence[Stage] | None = None,
        contact_policy: bool = False,
        clock: Clock | None = None,
        **overrides: Any,
    ) -> Gateway:
        """``contact_policy``: quiet hours, caps and opt-outs (tests/policy turn
        them on; tests of other parts run at any hour without them)."""
        settings = make_settings(**overrides)
        app = create_app(
            settings, dispatch=dispatch, stages=stages, contact_policy=contact_policy, clock=clock
        )
        client = await aiohttp_client(app)
        return Gateway(client, settings)

    return start


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ------------------------------------------------------------------ the content-pack cache

CONTENT_CACHE = Path(__file__).resolve().parents[1] / "var" / "cache" / "content"
_SUBPROCESS_SUITES = ("tests/e2e/", "tests/browser/", "tests/policy/test_redis_gateways.py")


def pytest_configure(config: pytest.Config) -> None:
    """One content-pack cache for the whole run (tests.subprocess_env passes
    it to gateway subprocesses, whose working folders are temporary)."""
    os.environ.setdefault("LENDSMS_CONTENT_CACHE", str(CONTENT_CACHE))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Compile the packs once before any test starts a gateway process: with
    an empty cache each would spend many seconds of its start-up deadline on
    derived data (pinyin readings, traditional spellings, automaton keys)."""
    if any(item.nodeid.startswith(_SUBPROCESS_SUITES) for item in session.items):
        from gateway.stages.content import shipped_filters

        shipped_filters()
