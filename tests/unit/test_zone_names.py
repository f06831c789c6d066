"""The recipient's time zones from the number parsed once at the boundary
(gateway/schemas.py, gateway/policy/zones.py) are phonenumbers' own."""

from __future__ import annotations

from datetime import UTC, datetime

import phonenumbers
import pytest
from phonenumbers import timezone as phone_tz

from gateway.policy.zones import recipient_zones, zone_names
from gateway.schemas import parse_send_request

NUMBERS = [
    "+8613812345678",  # mobile, country level
    "+14155552671",  # NANPA: geographic, by area code
    "+12125550123",
    "+16475550123",
    "+447911123456",
    "+4915112345678",
    "+61412345678",
    "+5511912345678",
    "+79161234567",
    "+390612345678",  # fixed line
]


@pytest.mark.parametrize("raw", NUMBERS)
def test_zone_names_are_phonenumbers_time_zones(raw: str) -> None:
    number = phonenumbers.parse(raw, None)
    expected = tuple(z for z in phone_tz.time_zones_for_number(number) if z != "Etc/Unknown")
    assert zone_names(number, phonenumbers.number_type(number)) == expected


def test_the_request_carries_the_zones_of_its_number() -> None:
    send = parse_send_request(
        {
            "to": "+14155552671",
            "borrower_id": "B-1",
            "purpose": "repayment_reminder",
            "text": "[Lender] your payment is due",
        },
        now=datetime(2026, 1, 5, tzinfo=UTC),
        templates={},
        max_text_chars=1000,
    )
    assert send.to_zones == ("America/Los_Angeles",)
    given = recipient_zones(send.to, ["Asia/Shanghai"], send.to_zones)
    assert given == recipient_zones(send.to, ["Asia/Shanghai"])
