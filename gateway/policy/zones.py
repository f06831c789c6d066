"""The recipient's time zones (phonenumbers' time-zone data) and calendar days."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_tz

_UNKNOWN = "Etc/Unknown"


@lru_cache(maxsize=4096)
def _zones_of(e164: str) -> tuple[str, ...]:
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    return tuple(z for z in phone_tz.time_zones_for_number(number) if z != _UNKNOWN)


def recipient_zones(e164: str, fallback: Sequence[str]) -> tuple[ZoneInfo, ...]:
    """Every zone the number may be in; ``fallback`` when phonenumbers knows none.
    The first zone is the one whose calendar days the caps count in."""
    zones: list[ZoneInfo] = []
    for name in _zones_of(e164) or tuple(fallback):
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue
    if not zones:
        zones = [ZoneInfo(name) for name in fallback]
    return tuple(zones)


def local_instant(day: datetime, at: time, zone: ZoneInfo) -> datetime:
    """``at`` o'clock on the local calendar day of ``day`` in ``zone``, as an
    aware datetime (after a DST gap when ``at`` falls into one)."""
    local = day.astimezone(zone)
    naive = datetime.combine(local.date(), at)
    return naive.replace(tzinfo=zone).astimezone(zone)


def day_bounds(when: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Start of the calendar day of ``when`` in ``zone`` and of the next one
    (23, 24 or 25 hours apart around DST changes)."""
    start = local_instant(when, time(0), zone)
    following = (when.astimezone(zone) + timedelta(days=1)).date()
    end = datetime.combine(following, time(0)).replace(tzinfo=zone)
    return start, end
