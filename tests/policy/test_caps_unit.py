"""The cap arithmetic without a store: the rolling-window check against a
brute force, calendar days, and the counters a message spends."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from config.contact import contact_pack
from gateway.crypto import BlindIndex
from gateway.policy.caps import BorrowerCaps, Counter, ms, over_limit

SPAN = 1000


def rolling(limit: int) -> Counter:
    return Counter("n:x:r", "r", "number", limit, False, span=SPAN)


def brute_force(scores: list[int], at: int, limit: int) -> bool:
    """Some window [s, s + SPAN) holding ``at`` already holds ``limit`` others."""
    starts = [*scores, at]
    return any(
        s <= at < s + SPAN and sum(1 for x in scores if s <= x < s + SPAN) >= limit for s in starts
    )


@settings(max_examples=400, deadline=None)
@given(
    scores=st.lists(st.integers(0, 5000), max_size=12),
    at=st.integers(1000, 4000),
    limit=st.integers(1, 5),
)
def test_rolling_check_matches_brute_force(scores: list[int], at: int, limit: int) -> None:
    denied = over_limit(rolling(limit), scores, at, now=at) is not None
    assert denied is brute_force(scores, at, limit)


def test_rolling_counts_scheduled_messages_after_the_new_one() -> None:
    # two messages already booked 0.5 s later: a third now would share a window
    assert over_limit(rolling(2), [1500, 1600], at=1000, now=1000) is not None
    assert over_limit(rolling(2), [2000, 2100], at=1000, now=1000) is None  # 1 s apart: fine


def test_calendar_counts_only_the_day_and_waits_for_its_end() -> None:
    day = Counter("b:x:d", "d", "borrower", 2, True, lo=1000, hi=5000)
    assert over_limit(day, [900, 5000, 1000], at=2000, now=2000) is None
    assert over_limit(day, [1000, 4999], at=2000, now=2000) == 3.0  # (5000 - 2000) ms


def test_counters_per_rule_and_subject_without_personal_data() -> None:
    index = BlindIndex(secrets.token_bytes(32))
    caps = BorrowerCaps(index)
    pack = contact_pack("cn-collection")
    at = datetime(2026, 1, 15, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
    counters = caps.counters(
        pack.rules_for("marketing"), client="acme", borrower_id="B-77", to="+8613812345678",
        at=at, zone=ZoneInfo("Asia/Shanghai"),
    )  # fmt: skip
    names = {(c.rule, c.subject) for c in counters}
    assert names == {
        (r, s) for r in ("marketing.day", "marketing.30d", "non_exempt.day")
        for s in ("borrower", "number")
    }  # fmt: skip
    for c in counters:
        assert "B-77" not in c.name and "13812345678" not in c.name
    day = next(c for c in counters if c.rule == "marketing.day")
    assert day.lo == ms(datetime(2026, 1, 15, 16, 0, tzinfo=UTC)) - 86_400_000
    assert day.hi == ms(datetime(2026, 1, 15, 16, 0, tzinfo=UTC))  # midnight in Shanghai
    code = caps.counters(
        pack.rules_for("verification_code"), client="acme", borrower_id="B-77",
        to="+8613812345678", at=at, zone=ZoneInfo("Asia/Shanghai"),
    )  # fmt: skip
    assert {c.subject for c in code} == {"number"} and len(code) == 3


def test_us_pack_counts_reminders_and_notices_together() -> None:
    pack = contact_pack("us-fdcpa")
    assert pack.rules_for("repayment_reminder") == pack.rules_for("overdue_notice")
    assert {r.id for r in pack.rules_for("overdue_notice")} == {"collection.day", "collection.7d"}
    assert pack.rules_for("service") == ()
