"""Acceptance 4: a separately installed package (tests/fixtures/lendsms_testplugin,
``pip install -e`` by ``make install``) adds provider type ``pigeon`` through the
``lendsms.providers`` entry point, and a message is carried by it end to end."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, distribution
from typing import Any

from providers import registry
from tests.conftest import auth, wait_for


def test_the_plugin_is_installed_as_its_own_distribution() -> None:
    try:
        dist = distribution("lendsms-testplugin")
    except PackageNotFoundError:  # pragma: no cover - a set-up problem, said plainly
        raise AssertionError(
            "lendsms-testplugin is not installed: run `make install` (or "
            "`.venv/bin/pip install -e tests/fixtures/lendsms_testplugin`)"
        ) from None
    points = [e for e in dist.entry_points if e.group == registry.ENTRY_POINT_GROUP]
    assert [(e.name, e.value) for e in points] == [("pigeon", "lendsms_testplugin:PigeonProvider")]
    registry.clear_cache()
    assert "pigeon" in registry.available_types()


async def test_a_plugin_provider_carries_a_message(start_gateway: Any) -> None:
    registry.clear_cache()
    gw = await start_gateway(
        providers={"loft": {"type": "pigeon", "path": "var/loft.jsonl"}},
        routes=[{"providers": ["loft"]}],
    )
    key = await gw.key()
    body = {"to": "+12015550123", "borrower_id": "B-1", "purpose": "service",
            "text": "Your statement is ready."}  # fmt: skip
    r = await gw.http.post("/v1/messages", json=body, headers=auth(key))
    assert r.status == 202, await r.text()
    mid = (await r.json())["id"]

    async def sent() -> bool:
        got = await (await gw.http.get(f"/v1/messages/{mid}", headers=auth(key))).json()
        return bool(got["status"] == "sent")

    await wait_for(sent, what="the pigeon to fly")
    got = await (await gw.http.get(f"/v1/messages/{mid}", headers=auth(key))).json()
    assert got["provider"] == "loft"
    loft = (gw.settings.base_dir / "var" / "loft.jsonl").read_text(encoding="utf-8")
    assert [json.loads(line)["id"] for line in loft.splitlines()] == [mid]
    assert gw.outbox() == []  # nothing went anywhere else
