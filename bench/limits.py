"""Cap checks per second on Redis for a message with four windows: lendsms's
one-script check-and-reserve (gateway.policy.redis_store) side by side with
the ``limits`` library's moving-window limiter doing the same four windows
(test every window, then hit every window: not atomic). Prints a table.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/limits.py [--checks N]

Needs the bench extra (``pip install -e '.[bench]'``). Keys live under a
prefix of their own and are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import itertools
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from gateway.policy.caps import CapCheck, Counter, ms
from gateway.policy.redis_store import RedisPolicyStore
from gateway.policy.zones import day_bounds

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
RUNS = itertools.count(1)
SUBJECTS = 2000
LIMITS = {"1m": 1, "1h": 5, "day": 10, "30d": 20}
Check = Callable[[int, int], Awaitable[bool]]  # (request number, subject) -> accepted


def load_limits() -> Any:
    """The ``limits`` package, not this file: run as a script, this folder is
    first on sys.path and its ``limits.py`` would shadow the library."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    return importlib.import_module("limits")


def time_now() -> datetime:
    return datetime.now(UTC)


def counters(subject: int, now_ms: int) -> tuple[Counter, ...]:
    lo, hi = (ms(t) for t in day_bounds(time_now(), ZoneInfo("Asia/Shanghai")))
    name = f"n:{subject:05d}"
    return (
        Counter(f"{name}:1m", "1m", "number", LIMITS["1m"], False, span=60_000),
        Counter(f"{name}:1h", "1h", "number", LIMITS["1h"], False, span=3_600_000),
        Counter(f"{name}:day", "day", "number", LIMITS["day"], True, lo=lo, hi=hi),
        Counter(f"{name}:30d", "30d", "number", LIMITS["30d"], False, span=30 * 86_400_000),
    )


def lendsms_check(store: RedisPolicyStore) -> Check:
    serial = itertools.count()

    async def check(n: int, subject: int) -> bool:
        now = ms(time_now())
        cap = CapCheck("bench", f"m{next(serial)}", now, now, counters(subject, now))
        return await store.reserve(cap) is None

    return check


async def lendsms_spent(store: RedisPolicyStore, subject: int) -> tuple[int, int]:
    """Units held in the 1-hour and 30-day windows of a subject."""
    out = []
    for window in ("1h", "30d"):
        out.append(
            int(await store.redis.zcard(store._key("bench", "cap", f"n:{subject:05d}:{window}")))
        )
    return out[0], out[1]


def limits_check(lib: Any, limiter: Any) -> Check:
    items = [
        lib.RateLimitItemPerMinute(LIMITS["1m"]),
        lib.RateLimitItemPerHour(LIMITS["1h"]),
        lib.RateLimitItemPerDay(LIMITS["day"]),  # moving 24 h: limits has no calendar day
        lib.parse(f"{LIMITS['30d']}/30 days"),
    ]

    async def check(n: int, subject: int) -> bool:
        key = f"n:{subject:05d}"
        for item in items:
            if not await limiter.test(item, key):
                return False
        # another request may pass its tests here, before these hits land; each
        # hit is atomic for its own window only, so a refused request has
        # already spent the windows hit before the one that refused it
        hits = [await limiter.hit(item, key) for item in items]
        return all(hits)

    async def spent(subject: int) -> tuple[int, int]:
        key = f"n:{subject:05d}"
        out = []
        for item in (items[1], items[3]):
            stats = await limiter.get_window_stats(item, key)
            out.append(item.amount - stats.remaining)
        return out[0], out[1]

    check.spent = spent  # type: ignore[attr-defined]
    return check


async def throughput(check: Check, total: int, concurrency: int, subjects: int) -> float:
    """Checks per second; ``subjects`` numbers in turn (``offset`` keeps runs apart)."""
    queue = iter(range(total))
    offset = next(RUNS) * 1_000_000

    async def worker() -> None:
        for n in queue:
            await check(n, offset + n % subjects)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started)


async def burst(check: Check, subject: int) -> int:
    """50 concurrent requests for one subject whose 1-minute window allows 1."""
    answers = await asyncio.gather(*(check(n, subject) for n in range(50)))
    return sum(answers)


GUARANTEES = """
lendsms: one Lua script per message checks every window of every counter
  (borrower and number) and reserves all or none, in one round trip; exact
  under any concurrency and across replicas (all of a client's keys share a
  hash tag, so it also holds on Redis Cluster); calendar days in the
  recipient's zone; scheduled messages count at their send time; a
  reservation is named after the message and given back when it is blocked,
  rejected or cancelled; times come from the gateway's clock.
limits (moving window): each hit is atomic for its own window and key only.
  Testing four windows and then hitting them is not atomic: requests that
  pass their tests together are settled window by window, and a refused
  request keeps the units it already took in the other windows (the spent
  columns); no calendar day (a moving 24 h), no reservation to give back,
  its own wall clock (no injected clock), one to eight round trips.
"""


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=20_000)
    args = parser.parse_args()
    prefix = f"bench-{secrets.token_hex(4)}:"
    ours = RedisPolicyStore(REDIS_URL, prefix=prefix, timeout=5)
    lib = load_limits()
    storage_mod = importlib.import_module("limits.aio.storage")
    strategies = importlib.import_module("limits.aio.strategies")
    storage = storage_mod.RedisStorage(
        "async+" + REDIS_URL, implementation="redispy", key_prefix=prefix + "limits"
    )
    theirs = strategies.MovingWindowRateLimiter(storage)
    rows = []
    try:
        ours_check, theirs_check = lendsms_check(ours), limits_check(lib, theirs)
        for name, check in (("lendsms (1 Lua script)", ours_check),
                            ("limits moving window", theirs_check)):  # fmt: skip
            one = await throughput(check, args.checks // 4, 1, args.checks)
            many = await throughput(check, args.checks, 32, args.checks)
            mixed = await throughput(check, args.checks, 32, SUBJECTS)
            accepted = await burst(check, 1)
            if check is ours_check:
                spent = await lendsms_spent(ours, 1)
            else:
                spent = await theirs_check.spent(1)  # type: ignore[attr-defined]
            rows.append((name, one, many, mixed, accepted, *spent))
    finally:
        await ours.close()
        redis = Redis.from_url(REDIS_URL)
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        for i in range(0, len(keys), 1000):
            await redis.delete(*keys[i : i + 1000])
        await redis.aclose()
    print("cap checks on Redis, 4 windows per message (1/min, 5/h, 10/day, 20/30d).")
    print(f"pass: every check passes and reserves (a new number each time; {args.checks} at")
    print(f"c=32, {args.checks // 4} at c=1); mixed: {args.checks} checks over {SUBJECTS} numbers,")
    print("mostly refused by the 1/min window; burst: 50 concurrent for one number.\n")
    head = ("implementation", "pass c=1 /s", "pass c=32 /s", "mixed c=32 /s",
            "burst accepted", "1h spent", "30d spent")  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for name, one, many, mixed, accepted, hour, month in rows:
        print(f"| {name} | {one:,.0f} | {many:,.0f} | {mixed:,.0f} | {accepted} | {hour} "
              f"| {month} |")  # fmt: skip
    print(GUARANTEES)


if __name__ == "__main__":
    asyncio.run(main())
