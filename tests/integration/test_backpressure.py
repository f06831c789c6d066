"""Issue 9, backpressure: past ``backpressure.max_queue_depth`` messages in the
dispatch queue, or past ``max_queue_age_seconds`` of waiting for the oldest due
one, ``POST /v1/messages`` answers 503 (problem+json, ``Retry-After``) instead
of letting the queue grow; held messages and scheduled ones not yet due do not
age. The snapshot is refreshed in the background, never per request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from config.settings import SettingsError
from gateway.appkeys import METRICS
from gateway.backpressure import BACKPRESSURE
from gateway.clock import FakeClock
from tests.conftest import CN_MOBILE, Gateway, auth, wait_for

TEXT = "【安心消费金融】您本期应还1,086.40元，最后还款日12月8日。"


def body(n: int, **extra: Any) -> dict[str, Any]:
    return {"to": CN_MOBILE, "borrower_id": f"B-{n}", "purpose": "service", "text": TEXT, **extra}


async def send(gw: Gateway, token: str, n: int, **extra: Any) -> tuple[int, Any, str | None]:
    resp = await gw.http.post("/v1/messages", json=body(n, **extra), headers=auth(token))
    return resp.status, await resp.json(content_type=None), resp.headers.get("Retry-After")


def rejections(gw: Gateway, reason: str) -> float:
    metric = gw.app[METRICS].backpressure_rejections.labels(reason)
    return float(metric._value.get())


async def test_over_the_queue_depth_sends_get_503_with_retry_after(start_gateway: Any) -> None:
    gw = await start_gateway(
        dispatch=False,
        backpressure={"max_queue_depth": 3, "refresh_seconds": 0.02, "retry_after_seconds": 7},
    )
    token = await gw.key()
    for n in range(4):  # the snapshot lags by up to refresh_seconds: 4 get in
        assert (await send(gw, token, n))[0] == 202
    guard = gw.app[BACKPRESSURE]
    await wait_for(lambda: guard.snapshot.depth == 4, what="a fresh snapshot")
    status, problem, retry_after = await send(gw, token, 99)
    assert status == 503 and retry_after == "7"
    assert problem["type"].endswith("/unavailable") and "queue" in problem["detail"]
    assert rejections(gw, "depth") == 1
    metrics = await (await gw.http.get("/metrics")).text()
    assert 'lendsms_backpressure_rejections_total{reason="depth"} 1.0' in metrics


async def test_the_oldest_due_message_waiting_too_long_triggers_it(start_gateway: Any) -> None:
    clock = FakeClock(datetime.now(UTC))
    gw = await start_gateway(
        dispatch=False,
        clock=clock,
        backpressure={"max_queue_age_seconds": 60, "refresh_seconds": 0.02},
    )
    token = await gw.key()
    later = (clock.now() + timedelta(hours=2)).isoformat()
    assert (await send(gw, token, 1, scheduled_at=later))[0] == 202  # not due: no age
    clock.advance(90)
    guard = gw.app[BACKPRESSURE]
    await wait_for(lambda: guard.snapshot.depth == 1, what="a fresh snapshot")
    assert guard.snapshot.oldest_age == 0
    assert (await send(gw, token, 2))[0] == 202  # due now
    clock.advance(61)
    await wait_for(lambda: guard.snapshot.oldest_age > 60, what="the age in the snapshot")
    status, _, retry_after = await send(gw, token, 3)
    assert status == 503 and retry_after == "5"
    assert rejections(gw, "age") == 1


async def test_limits_of_zero_turn_it_off(start_gateway: Any) -> None:
    gw = await start_gateway(
        dispatch=False, backpressure={"max_queue_depth": 0, "max_queue_age_seconds": 0}
    )
    token = await gw.key()
    guard = gw.app[BACKPRESSURE]
    assert not guard.enabled and guard._task is None
    for n in range(3):
        assert (await send(gw, token, n))[0] == 202


@pytest.mark.parametrize(
    "bad",
    [
        {"max_queue_depth": -1},
        {"max_queue_age_seconds": -5},
        {"refresh_seconds": 0},
        {"retry_after_seconds": 0},
        {"unknown": 1},
    ],
)
def test_bad_backpressure_settings_are_refused(
    make_settings: Callable[..., Any], bad: dict[str, Any]
) -> None:
    with pytest.raises(SettingsError, match="backpressure"):
        make_settings(backpressure=bad)
