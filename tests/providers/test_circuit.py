"""The circuit breaker, the token bucket and the per-provider limit settings."""

from __future__ import annotations

import asyncio
import time

import pytest

from providers.base import ProviderConfigError
from providers.circuit import CircuitBreaker, CircuitSettings, CircuitState
from providers.limits import ProviderGuard, ProviderLimits, TokenBucket
from providers.registry import build_provider, provider_limits


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(**kw: float) -> tuple[CircuitBreaker, Ticker]:
    tick = Ticker()
    settings = CircuitSettings(**{"min_calls": 4, "failure_rate": 0.5, "window": 60,
                                  "open_seconds": 30, **kw})  # type: ignore[arg-type]  # fmt: skip
    return CircuitBreaker(settings, tick), tick


def test_opens_on_the_failure_rate_once_enough_calls_were_seen() -> None:
    cb, _ = breaker()
    for ok in (False, False, False):
        assert cb.allow()
        cb.record(ok)
    assert cb.state is CircuitState.CLOSED  # 3 calls < min_calls
    cb.record(True)  # 3 of 4 failed
    assert cb.state is CircuitState.OPEN and not cb.allow() and cb.opened == 1
    assert cb.reopens_in() == 30


def test_stays_closed_below_the_rate_and_forgets_old_calls() -> None:
    cb, _ = breaker()
    for ok in (False, True, True, True, False, True):
        cb.record(ok)
    assert cb.state is CircuitState.CLOSED
    cb2, tick2 = breaker()
    cb2.record(False)
    cb2.record(False)
    tick2.now += 61  # outside the window
    cb2.record(False)
    cb2.record(True)
    assert cb2.state is CircuitState.CLOSED


def test_half_open_probe_closes_on_success_and_reopens_on_failure() -> None:
    cb, tick = breaker(half_open_probes=1)
    for _ in range(4):
        cb.record(False)
    assert cb.state is CircuitState.OPEN
    tick.now += 30
    assert cb.state is CircuitState.HALF_OPEN and cb.reopens_in() == 0
    assert cb.allow()
    assert not cb.allow()  # one probe at a time
    cb.record(False)
    assert cb.state is CircuitState.OPEN and cb.opened == 2
    tick.now += 30
    assert cb.allow()
    cb.release()  # the probe was not made after all
    assert cb.allow()
    cb.record(True)
    assert cb.state is CircuitState.CLOSED and cb.allow()


def test_two_probes_must_both_succeed() -> None:
    cb, tick = breaker(half_open_probes=2)
    for _ in range(4):
        cb.record(False)
    tick.now += 30
    assert cb.allow() and cb.allow() and not cb.allow()
    cb.record(True)
    assert cb.state is CircuitState.HALF_OPEN
    cb.record(True)
    assert cb.state is CircuitState.CLOSED


def test_late_answers_while_open_change_nothing() -> None:
    cb, _ = breaker()
    for _ in range(4):
        cb.record(False)
    cb.record(True)
    assert cb.state is CircuitState.OPEN


async def test_token_bucket_paces_calls() -> None:
    bucket = TokenBucket(20.0)  # burst of 20, then one every 50 ms
    started = time.monotonic()
    for _ in range(25):
        await bucket.take()
    assert 0.2 <= time.monotonic() - started < 1.0


async def test_guard_limits_concurrency() -> None:
    guard = ProviderGuard(ProviderLimits(max_concurrency=2))
    inside, peak = 0, 0

    async def one() -> None:
        nonlocal inside, peak
        async with guard.slot():
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(one() for _ in range(8)))
    assert peak == 2


def test_limits_from_options() -> None:
    limits = provider_limits("tc", {"max_concurrency": 8, "rate": 50, "attempts": 3,
                                    "circuit": {"min_calls": 5, "open_seconds": 2.5}})  # fmt: skip
    assert (limits.max_concurrency, limits.rate, limits.attempts) == (8, 50.0, 3)
    assert limits.circuit.min_calls == 5 and limits.circuit.open_seconds == 2.5
    assert ProviderLimits.from_options("x", {}) == ProviderLimits()
    bad_options = [
        {"rate": 0}, {"attempts": 1.5}, {"max_concurrency": True},
        {"circuit": {"colour": 1}}, {"circuit": {"failure_rate": 2}}, {"circuit": 3},
    ]  # fmt: skip
    for bad in bad_options:
        with pytest.raises(ProviderConfigError):
            provider_limits("x", bad)


def test_the_registry_keeps_dispatch_options_from_the_adapter(tmp_path: object) -> None:
    from pathlib import Path

    provider = build_provider(
        "ob",
        "outbox",
        {"path": "o.jsonl", "rate": 5, "attempts": 1, "circuit": {}},
        base_dir=Path(str(tmp_path)),
    )  # the outbox refuses unknown options, so these did not reach it
    assert provider.name == "ob"
    with pytest.raises(ProviderConfigError):
        build_provider("ob", "outbox", {"path": "o.jsonl", "rate": -1}, base_dir=Path("."))
