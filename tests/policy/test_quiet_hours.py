"""Quiet hours (acceptance 2, unit level): the recipient's zones from
phonenumbers, the window in every zone, the next opening, the spread, DST."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from config.contact import contact_pack
from gateway.policy.quiet_hours import QuietHours
from gateway.policy.zones import day_bounds, recipient_zones

CN = "+8613812345678"
NEW_YORK = "+12125550123"
LOS_ANGELES = "+13105550123"
HONOLULU = "+18085550123"
ALASKA = "+19075550123"  # America/Anchorage and America/Adak (one hour apart)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def hours(pack: str = "cn-collection") -> QuietHours:
    return QuietHours(contact_pack(pack).quiet_hours)


def zones(number: str, pack: str = "cn-collection") -> tuple[ZoneInfo, ...]:
    return recipient_zones(number, contact_pack(pack).quiet_hours.fallback_zones)


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)  # type: ignore[misc]


def test_zones_come_from_phonenumbers() -> None:
    assert [z.key for z in zones(CN)] == ["Asia/Shanghai"]
    assert [z.key for z in zones(NEW_YORK, "us-fdcpa")] == ["America/New_York"]
    assert [z.key for z in zones(LOS_ANGELES, "us-fdcpa")] == ["America/Los_Angeles"]
    assert [z.key for z in zones(HONOLULU, "us-fdcpa")] == ["Pacific/Honolulu"]
    assert {z.key for z in zones(ALASKA, "us-fdcpa")} == {"America/Adak", "America/Anchorage"}


def test_unknown_zone_falls_back_to_the_packs_zones() -> None:
    fallback = ("America/New_York", "Pacific/Honolulu")
    assert [z.key for z in recipient_zones("+80012345678", fallback)] == list(fallback)


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        (local("Asia/Shanghai", 2026, 1, 15, 7, 59), False),
        (local("Asia/Shanghai", 2026, 1, 15, 8, 0), True),
        (local("Asia/Shanghai", 2026, 1, 15, 20, 59), True),
        (local("Asia/Shanghai", 2026, 1, 15, 21, 0), False),
        (local("Asia/Shanghai", 2026, 1, 15, 23, 30), False),
    ],
)
def test_cn_window_is_eight_to_nine(when: datetime, open_: bool) -> None:
    assert hours().is_open(when, zones(CN)) is open_


def test_cn_before_eight_waits_for_eight_same_day() -> None:
    at = local("Asia/Shanghai", 2026, 1, 15, 6, 30)
    assert hours().next_open(at, zones(CN)) == local("Asia/Shanghai", 2026, 1, 15, 8, 0)


def test_cn_after_nine_waits_for_eight_next_day() -> None:
    at = local("Asia/Shanghai", 2026, 1, 15, 21, 5)
    assert hours().next_open(at, zones(CN)) == local("Asia/Shanghai", 2026, 1, 16, 8, 0)


@pytest.mark.parametrize(
    ("number", "zone"),
    [(NEW_YORK, "America/New_York"), (LOS_ANGELES, "America/Los_Angeles"),
     (HONOLULU, "Pacific/Honolulu")],
)  # fmt: skip
def test_us_numbers_follow_their_own_zone(number: str, zone: str) -> None:
    us = hours("us-fdcpa")
    z = zones(number, "us-fdcpa")
    assert not us.is_open(local(zone, 2026, 1, 15, 7, 30), z)
    assert us.is_open(local(zone, 2026, 1, 15, 8, 0), z)
    assert us.is_open(local(zone, 2026, 1, 15, 20, 59), z)
    assert not us.is_open(local(zone, 2026, 1, 15, 21, 0), z)
    assert us.next_open(local(zone, 2026, 1, 15, 22, 0), z) == local(zone, 2026, 1, 16, 8, 0)


def test_same_instant_differs_by_zone() -> None:
    # 12:30 UTC: 07:30 in New York (closed), 04:30 in Los Angeles, 02:30 in Honolulu
    noon = datetime(2026, 1, 15, 12, 30, tzinfo=UTC)
    us = hours("us-fdcpa")
    assert not us.is_open(noon, zones(NEW_YORK, "us-fdcpa"))
    # 19:00 UTC: 14:00 New York, 11:00 Los Angeles, 09:00 Honolulu: all open
    later = datetime(2026, 1, 15, 19, 0, tzinfo=UTC)
    for n in (NEW_YORK, LOS_ANGELES, HONOLULU):
        assert us.is_open(later, zones(n, "us-fdcpa"))
    # 03:00 UTC: 22:00 New York (closed), 19:00 Los Angeles and 17:00 Honolulu (open)
    night = datetime(2026, 1, 15, 3, 0, tzinfo=UTC)
    assert not us.is_open(night, zones(NEW_YORK, "us-fdcpa"))
    assert us.is_open(night, zones(LOS_ANGELES, "us-fdcpa"))
    assert us.is_open(night, zones(HONOLULU, "us-fdcpa"))


def test_multi_zone_number_must_be_inside_in_every_zone() -> None:
    us = hours("us-fdcpa")
    z = zones(ALASKA, "us-fdcpa")
    # 08:30 in Anchorage is 07:30 in Adak: not yet
    at = local("America/Anchorage", 2026, 1, 15, 8, 30)
    assert not us.is_open(at, z)
    assert us.next_open(at, z) == local("America/Adak", 2026, 1, 15, 8, 0)
    # 20:30 in Anchorage is 19:30 in Adak: both open; 21:00 Anchorage closes it
    assert us.is_open(local("America/Anchorage", 2026, 1, 15, 20, 30), z)
    assert not us.is_open(local("America/Anchorage", 2026, 1, 15, 21, 0), z)


def test_zones_whose_windows_never_overlap_have_no_opening() -> None:
    far_apart = (ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York"), ZoneInfo("Europe/Paris"))
    assert hours().next_open(datetime(2026, 1, 15, 12, tzinfo=UTC), far_apart) is None


def test_dst_change_moves_the_opening_in_utc() -> None:
    us = hours("us-fdcpa")
    z = zones(NEW_YORK, "us-fdcpa")
    # the night before the spring change: 08:00 EST is 13:00 UTC
    assert us.next_open(local("America/New_York", 2026, 3, 7, 2, 0), z) == datetime(
        2026, 3, 7, 13, 0, tzinfo=UTC
    )
    # the change itself (02:00 -> 03:00 on 8 March): 08:00 EDT is 12:00 UTC
    assert us.next_open(datetime(2026, 3, 8, 6, 30, tzinfo=UTC), z) == datetime(
        2026, 3, 8, 12, 0, tzinfo=UTC
    )
    # 12:30 UTC on the change day is 08:30 EDT: open (it would be 07:30 EST)
    assert us.is_open(datetime(2026, 3, 8, 12, 30, tzinfo=UTC), z)
    start, end = day_bounds(datetime(2026, 3, 8, 15, tzinfo=UTC), ZoneInfo("America/New_York"))
    assert end.timestamp() - start.timestamp() == timedelta(hours=23).total_seconds()


def test_place_spreads_over_the_first_minutes_and_is_repeatable() -> None:
    at = local("Asia/Shanghai", 2026, 1, 15, 23, 0)
    opening = local("Asia/Shanghai", 2026, 1, 16, 8, 0)
    placed = [hours().place(at, zones(CN), f"msg_{i}") for i in range(200)]
    offsets = {(p - opening).total_seconds() for p in placed if p is not None}
    assert len(placed) == 200 and all(0 <= s < 600 for s in offsets)
    assert len(offsets) > 150  # not all at 08:00:00
    assert hours().place(at, zones(CN), "msg_7") == placed[7]
    inside = local("Asia/Shanghai", 2026, 1, 15, 10, 0)
    assert hours().place(inside, zones(CN), "msg_1") == inside  # open: unchanged


def test_spread_never_leaves_a_short_common_window() -> None:
    # a spread longer than the common window (12 hours for zones one hour
    # apart) is halved until the placed time is still inside it
    z = (ZoneInfo("America/Adak"), ZoneInfo("America/Anchorage"))
    rules = contact_pack("us-fdcpa").quiet_hours
    long_spread = QuietHours(replace(rules, spread_seconds=13 * 3600))
    at = local("America/Anchorage", 2026, 1, 15, 5, 0)
    for i in range(50):
        when = long_spread.place(at, z, f"m{i}")
        assert when is not None and long_spread.is_open(when, z)


def test_exempt_purposes() -> None:
    assert hours().exempt("verification_code") and hours().exempt("service")
    assert not hours().exempt("overdue_notice") and not hours("us-fdcpa").exempt("marketing")
