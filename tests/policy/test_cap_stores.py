"""The CapStore contract on both adapters, real SQLite and real Redis:
all-or-nothing reservation across windows, exact under concurrency, releases,
client isolation, and the Lua script agreeing with the Python check."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from config.contact import contact_pack
from gateway.crypto import BlindIndex
from gateway.policy.caps import BorrowerCaps, CapCheck, Counter, ms, over_limit
from gateway.policy.redis_store import RedisPolicyStore
from gateway.policy.service import PolicyBackend
from gateway.policy.sqlite_store import SqlitePolicyStore
from tests.policy.conftest import REDIS_URL

T0 = ms(datetime(2026, 1, 15, 2, 0, tzinfo=UTC))
DAY = Counter("b:h:day", "x.day", "borrower", 3, True, lo=T0 - 3_600_000, hi=T0 + 3_600_000)
HOUR = Counter("n:h:1h", "x.1h", "number", 2, False, span=3_600_000)


def check(member: str, *counters: Counter, at: int = T0, client: str = "acme") -> CapCheck:
    return CapCheck(client, member, at, T0, counters)


async def test_reserves_up_to_the_limit_then_refuses_with_the_rule(
    backend: PolicyBackend,
) -> None:
    for i in range(3):
        assert await backend.reserve(check(f"m{i}", DAY)) is None
    denied = await backend.reserve(check("m3", DAY))
    assert denied is not None and denied.rule == "x.day" and denied.subject == "borrower"
    assert denied.retry_after == 3600.0


async def test_all_windows_or_none(backend: PolicyBackend) -> None:
    assert await backend.reserve(check("a", DAY, HOUR)) is None
    assert await backend.reserve(check("b", DAY, HOUR)) is None
    denied = await backend.reserve(check("c", DAY, HOUR))  # HOUR is full
    assert denied is not None and denied.rule == "x.1h"
    # the refused message spent nothing: DAY still has one place left
    assert await backend.reserve(check("d", DAY)) is None
    assert await backend.reserve(check("e", DAY)) is not None


async def test_release_gives_every_window_back_and_is_idempotent(backend: PolicyBackend) -> None:
    for m in ("a", "b"):
        assert await backend.reserve(check(m, DAY, HOUR)) is None
    assert await backend.reserve(check("c", HOUR)) is not None
    await backend.release("acme", "a")
    await backend.release("acme", "a")
    await backend.release("acme", "never-reserved")
    assert await backend.reserve(check("c", DAY, HOUR)) is None


async def test_reserving_the_same_member_twice_counts_once(backend: PolicyBackend) -> None:
    for _ in range(3):
        assert await backend.reserve(check("same", HOUR)) is None
    assert await backend.reserve(check("other", HOUR)) is None
    assert await backend.reserve(check("third", HOUR)) is not None


async def test_one_clients_traffic_never_spends_anothers(backend: PolicyBackend) -> None:
    for i in range(3):
        assert await backend.reserve(check(f"m{i}", DAY, client="lender-a")) is None
    assert await backend.reserve(check("m9", DAY, client="lender-a")) is not None
    assert await backend.reserve(check("m0", DAY, client="lender-b")) is None
    assert await backend.reserve(check("x", DAY, client="lender {b}")) is None  # odd ids too


async def test_rolling_window_slides(backend: PolicyBackend) -> None:
    assert await backend.reserve(check("a", HOUR, at=T0)) is None
    assert await backend.reserve(check("b", HOUR, at=T0 + 1_000)) is None
    denied = await backend.reserve(check("c", HOUR, at=T0 + 2_000))
    assert denied is not None and denied.retry_after == 3600.0
    later = CapCheck("acme", "c", T0 + 3_600_000, T0 + 3_600_000, (HOUR,))
    assert await backend.reserve(later) is None  # "a" has left the window


async def test_exact_under_concurrency(backend: PolicyBackend) -> None:
    results = await asyncio.gather(*(backend.reserve(check(f"m{i}", DAY, HOUR)) for i in range(50)))
    assert sum(r is None for r in results) == 2  # HOUR allows 2, DAY 3


async def test_exact_across_two_connections(tmp_path: Path, redis_prefix: str) -> None:
    """Two adapters on one database / one Redis: what two processes would share."""
    pairs: list[tuple[PolicyBackend, PolicyBackend]] = [
        (SqlitePolicyStore(tmp_path / "p.db"), SqlitePolicyStore(tmp_path / "p.db")),
        (RedisPolicyStore(REDIS_URL, prefix=redis_prefix, timeout=2),
         RedisPolicyStore(REDIS_URL, prefix=redis_prefix, timeout=2)),
    ]  # fmt: skip
    for first, second in pairs:
        await first.open()
        await second.open()
        try:
            results = await asyncio.gather(
                *((first if i % 2 else second).reserve(check(f"m{i}", DAY)) for i in range(50))
            )
            assert sum(r is None for r in results) == 3
        finally:
            await first.close()
            await second.close()


async def test_redis_script_agrees_with_the_python_check(redis_prefix: str) -> None:
    """Random histories: the Lua check refuses exactly when over_limit does."""
    rng = random.Random(20260115)
    store = RedisPolicyStore(REDIS_URL, prefix=redis_prefix, timeout=2)
    try:
        for case in range(60):
            span, limit = rng.choice([(1000, 1), (1000, 3), (5000, 2)])
            counter = Counter(f"n:h:c{case}", "r", "number", limit, False, span=span)
            booked: list[int] = []
            for step in range(12):
                at = T0 + rng.randrange(0, 6000)
                expected = over_limit(counter, booked, at, T0)
                got = await store.reserve(CapCheck("acme", f"m{case}.{step}", at, T0, (counter,)))
                assert (got is None) is (expected is None), (case, step, booked, at)
                if got is None:
                    booked.append(at)
    finally:
        await store.close()


async def test_a_23h_request_scheduled_for_8h_counts_tomorrow(
    backend: PolicyBackend, index: BlindIndex
) -> None:
    caps = BorrowerCaps(index)
    rules = contact_pack("cn-collection").rules_for("overdue_notice")
    shanghai = ZoneInfo("Asia/Shanghai")
    today_noon = datetime(2026, 1, 15, 12, tzinfo=shanghai)
    tomorrow_8 = datetime(2026, 1, 16, 8, 3, tzinfo=shanghai)

    def spend(member: str, at: datetime, now: datetime) -> CapCheck:
        counters = caps.counters(rules, client="acme", borrower_id="B-1", to="+8613812345678",
                                 at=at, zone=shanghai)  # fmt: skip
        return CapCheck("acme", member, ms(at), ms(now), counters)

    for i in range(3):
        assert await backend.reserve(spend(f"today{i}", today_noon, today_noon)) is None
    assert await backend.reserve(spend("today3", today_noon, today_noon)) is not None
    late = today_noon + timedelta(hours=11)  # 23:00, scheduled for tomorrow 08:03
    for i in range(3):
        assert await backend.reserve(spend(f"tomorrow{i}", tomorrow_8, late)) is None
    denied = await backend.reserve(spend("tomorrow3", tomorrow_8, late))
    assert denied is not None and denied.rule == "overdue_notice.day"
