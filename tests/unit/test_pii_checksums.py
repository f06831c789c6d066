"""Check digits and structure checks (compliance.md §5 test vectors)."""

from __future__ import annotations

import pytest

from filters.pii.checksums import (
    card_prefix_plausible,
    cn_id_checksum_ok,
    cn_id_shape_ok,
    luhn_ok,
    ssn_ok,
)


@pytest.mark.parametrize(
    "number", ["11010519491231002X", "11010519491231002x", "440524188001010014"]
)
def test_resident_id_vectors_pass(number: str) -> None:
    assert cn_id_checksum_ok(number)
    assert cn_id_shape_ok(number)


@pytest.mark.parametrize(
    "number",
    ["110105194912310021", "11010519491231002", "1101051949123100211", "A10105194912310029", ""],
)
def test_resident_id_checksum_fails(number: str) -> None:
    assert not cn_id_checksum_ok(number)


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("110105194912310021", True),  # bad check character, good shape
        ("110105491231002", True),  # 15-digit legacy: 1949-12-31
        ("990105194912310021", False),  # no such province
        ("200105194912310021", False),
        ("110105194902300021", False),  # 30 February
        ("110105170001010021", False),  # year 1700
        ("110105194913010021", False),  # month 13
        ("11010519491231002Y", False),
        ("110105490231002", False),  # legacy: 31 February 1949
        ("1101054912310021", False),  # 16 digits
    ],
)
def test_resident_id_shape(number: str, ok: bool) -> None:
    assert cn_id_shape_ok(number) is ok


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("79927398713", True),
        ("4111111111111111", True),
        ("5555555555554444", True),
        ("6222021234567890", False),
        ("79927398710", False),
        ("4111 1111", False),
        ("", False),
    ],
)
def test_luhn(number: str, ok: bool) -> None:
    assert luhn_ok(number) is ok


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("4222222222222", True),  # 13-digit Visa
        ("5222222222222", False),
        ("36000000000000", True),  # Diners, 14
        ("378282246310005", True),  # Amex, 15
        ("330106198805214", False),  # 15 digits, not Amex
        ("6222021234567890", True),
        ("2221000000000009", True),
        ("2200000000000000", True),
        ("2100000000000000", False),
        ("9558800000000000000", True),
        ("8100000000000000", True),
        ("1234567890123456", False),
        ("7000000000000000", False),
        ("62220212x", False),
    ],
)
def test_card_prefix(number: str, ok: bool) -> None:
    assert card_prefix_plausible(number) is ok


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("123456789", True),
        ("000456789", False),
        ("666456789", False),
        ("900456789", False),
        ("123006789", False),
        ("123450000", False),
        ("12345678", False),
        ("12345678a", False),
    ],
)
def test_ssn(number: str, ok: bool) -> None:
    assert ssn_ok(number) is ok
