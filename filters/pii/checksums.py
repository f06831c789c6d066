"""Check digits and structural checks for the numbers the PII scanner looks for.

Pure functions over strings of ASCII digits (an 18-digit resident ID may end
in ``X``/``x``). Algorithms and test vectors: compliance.md §5.
"""

from __future__ import annotations

import datetime
from typing import Final

__all__ = [
    "card_prefix_plausible",
    "cn_id_checksum_ok",
    "cn_id_shape_ok",
    "luhn_ok",
    "ssn_ok",
]

# GB 11643 / ISO 7064 MOD 11-2: weight of position i (1..17) is 2^(18-i) mod 11.
_ID_WEIGHTS: Final = tuple(pow(2, 17 - i, 11) for i in range(17))
_ID_CHECK: Final = "10X98765432"  # check character for S mod 11 = 0..10
_SHORT_CARD_PREFIXES: Final = {14: ("30", "36", "38"), 15: ("34", "37")}

# GB/T 2260 province-level codes: the first two digits of every address code.
_PROVINCES: Final = frozenset(
    str(code)
    for code in (
        *range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47),
        *range(50, 55), *range(61, 66), 71, 81, 82, 83,
    )
)  # fmt: skip


def cn_id_checksum_ok(number: str) -> bool:
    """An 18-character resident ID whose last character is its MOD 11-2 check."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def cn_id_shape_ok(number: str) -> bool:
    """An 18-character ID (17 digits + digit/X) or a 15-digit legacy ID with a
    known province code and a real birth date (18xx-20xx; 19xx for 15 digits).
    The check character is not looked at."""
    if len(number) == 18:
        if not number[:17].isdigit() or number[17] not in "0123456789Xx":
            return False
        birth = number[6:14]
    elif len(number) == 15 and number.isdigit():
        birth = "19" + number[6:12]
    else:
        return False
    return number[:2] in _PROVINCES and _real_date(birth)


def _real_date(yyyymmdd: str) -> bool:
    year, month, day = int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8])
    if not 1800 <= year <= 2099:
        return False
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


def luhn_ok(number: str) -> bool:
    """ISO/IEC 7812-1 (Luhn, mod 10) over a string of digits."""
    if not number.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_prefix_plausible(number: str) -> bool:
    """The issuer prefix fits the length as payment cards use them: 13 digits
    Visa (4), 14 Diners (30, 36, 38), 15 Amex (34, 37); 16-19 digits Visa (4),
    Mastercard (5, 2221-2720), JCB and Diners (3), UnionPay and Discover (6, 81),
    Mir (2200-2204) and older Chinese debit cards (95, as in 9558)."""
    if not number.isdigit():
        return False
    size = len(number)
    if size < 16:
        return (size, number[:1]) == (13, "4") or number[:2] in _SHORT_CARD_PREFIXES.get(size, ())
    if number[0] in "3456":
        return True
    head = int(number[:4])
    return 2200 <= head <= 2204 or 2221 <= head <= 2720 or number[:2] in ("81", "95")


def ssn_ok(number: str) -> bool:
    """A US Social Security number that could have been issued: area 001-899
    but not 666, group 01-99, serial 0001-9999."""
    if len(number) != 9 or not number.isdigit():
        return False
    area, group, serial = number[:3], number[3:5], number[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"
