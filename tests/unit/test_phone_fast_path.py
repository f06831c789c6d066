"""The validation's fast path for plain E.164 numbers (gateway.schemas._plain_e164)
gives the very number phonenumbers.parse gives, and so the same answer."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from gateway.errors import Invalid
from gateway.schemas import _parse_mobile, _plain_e164


def _slow(raw: str) -> tuple[str, str, str, tuple[str, ...]] | str:
    """What validation answered before the fast path: the full parse."""
    number = phonenumbers.parse(raw, None)
    number_type = phonenumbers.number_type(number)
    if number_type not in (phonenumbers.PhoneNumberType.MOBILE,
                           phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):  # fmt: skip
        return "invalid" if not phonenumbers.is_valid_number(number) else "not mobile"
    from gateway.policy.zones import zone_names
    from gateway.schemas import _mask

    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    region = phonenumbers.region_code_for_number(number) or "ZZ"
    return e164, region, _mask(number), zone_names(number, number_type)


def _fast(raw: str) -> tuple[str, str, str, tuple[str, ...]] | str:
    try:
        return _parse_mobile(raw, None)
    except Invalid as exc:
        message = exc.body()["errors"][0]["message"]
        return "invalid" if "valid" in message and "mobile" not in message else "not mobile"


def _samples() -> list[str]:
    rng = random.Random(20261128)
    out = [f"+86{rng.choice('13456789')}{rng.randrange(10**10):010d}"[:14] for _ in range(3000)]
    out += [f"+861{p}{rng.randrange(10**8):08d}" for p in range(30, 100) for _ in range(20)]
    out += [f"+861{p:02d}{rng.randrange(10**7):07d}{rng.randrange(10)}" for p in range(100)]
    out += [f"+1{rng.randrange(2, 10)}{rng.randrange(10**9):09d}" for _ in range(3000)]
    out += [f"+1{a}{rng.randrange(10**7):07d}" for a in range(200, 1000, 7)]
    return out


def test_every_plain_number_takes_the_fast_path() -> None:
    assert _plain_e164("+8613812345678") is not None
    assert _plain_e164("+12015550123") is not None
    for other in ("+86 138 1234 5678", "+8601012345678", "+86123456789012", "+11015550123",
                  "+442079460000", "13812345678", "+861381234567"):  # fmt: skip
        assert _plain_e164(other) is None


@pytest.mark.parametrize("chunk", range(4))
def test_fast_path_agrees_with_the_full_parse(chunk: int) -> None:
    samples = _samples()[chunk::4]
    assert len(samples) > 1000
    taken = 0
    for raw in samples:
        fast_number = _plain_e164(raw)
        if fast_number is not None:
            taken += 1
            assert fast_number == phonenumbers.parse(raw, None), raw
        assert _fast(raw) == _slow(raw), raw
    assert taken > len(samples) // 2
