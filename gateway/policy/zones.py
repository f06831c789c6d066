"""The recipient's time zones (phonenumbers' time-zone data) and calendar days."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberType
from phonenumbers import timezone as phone_tz

_UNKNOWN = "Etc/Unknown"


@lru_cache(maxsize=4096)
def _zones_of(e164: str) -> tuple[str, ...]:
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    return zone_names(number, phonenumbers.number_type(number))


def zone_names(number: PhoneNumber, number_type: int) -> tuple[str, ...]:
    """phonenumbers' ``time_zones_for_number`` for a number whose type is
    already known (the type patterns are the costly part of the lookup)."""
    if number_type == PhoneNumberType.UNKNOWN:
        return ()
    if phonenumbers.is_number_type_geographical(number_type, number.country_code or 0):
        names = phone_tz.time_zones_for_geographical_number(number)
    else:
        names = phone_tz._country_level_time_zones_for_number(number)
    return tuple(z for z in names if z != _UNKNOWN)


def recipient_zones(
    e164: str, fallback: Sequence[str], names: tuple[str, ...] | None = None
) -> tuple[ZoneInfo, ...]:
    """Every zone the number may be in; ``fallback`` when phonenumbers knows none.
    The first zone is the one whose calendar days the caps count in. ``names``:
    :func:`zone_names` of ``e164`` when the caller has them (no parse here)."""
    zones: list[ZoneInfo] = []
    for name in (_zones_of(e164) if names is None else names) or tuple(fallback):
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
