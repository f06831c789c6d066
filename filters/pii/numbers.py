"""Numbers in a normalised text: resident IDs, card and account numbers,
mobiles, SSNs and passport-style numbers.

A *run* is a stretch of at least seven digits, optionally led by ``+`` and
grouped by single spaces or dashes (``6222 0212 3456 7890``,
``+86 138-1234-5678``), optionally ending in the ``x`` of an ID. No ``\\b``:
a run is bounded by "not a digit", so it is found inside Chinese text. Each
run is classified by shape and checksum into a :class:`Strength`; failing
that, each stretch of whole groups in it, longest first (a date and a mobile
number separated by a space are one run but two numbers), except after an
order or code word, which names the whole run. The context word before the
run then decides:

* ``VERIFIED`` (checksum and structure) is always personal data;
* ``SHAPE`` (structure without a checksum, or a failed one) is personal data
  unless the context says order/serial/code/amount (:attr:`Context.KEEP`);
* ``CONTEXT`` (only the length fits) is personal data only next to its own
  identity word (身份证, 卡号, SSN, passport ...).

Service hotlines (400/800, NANP toll-free, ``+`` numbers phonenumbers calls
toll-free or shared-cost) are recognised first and kept.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from filters.pii.checksums import (
    card_prefix_plausible,
    cn_id_checksum_ok,
    cn_id_shape_ok,
    luhn_ok,
    ssn_ok,
)
from filters.pii.context import Context, context_before, is_amount, letters_context

__all__ = ["NumberMatch", "Strength", "find_numbers"]

_SEP: Final = r"(?:[ ]?[-\u2010-\u2015\u2212][ ]?|[ ])"
_RUN: Final = re.compile(rf"(?<![0-9])\+?[0-9](?:{_SEP}?[0-9]){{6,}}(?:x(?![a-z]))?")
_CN_MOBILE: Final = re.compile(r"1[3-9][0-9]{9}")
_TOLL_FREE_NANP: Final = frozenset({"800", "833", "844", "855", "866", "877", "888"})
_MOBILE_TYPES: Final = frozenset(
    {
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
        PhoneNumberType.PAGER,
        PhoneNumberType.PERSONAL_NUMBER,
    }
)
_SERVICE_TYPES: Final = frozenset(
    {
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.UAN,
    }
)
_PRIORITY: Final = {"cn_id": 5, "bank_card": 4, "mobile": 3, "us_ssn": 2, "passport": 1}
_LONGEST: Final = 19  # digits of the longest number looked for (a card)
_MOST_GROUPS: Final = 6  # "+86 138 1234 5678" is four groups, a 19-digit card five
_AMOUNT_DIGITS: Final = 12  # longer runs are not amounts, whatever unit follows
_ASCII_LETTERS: Final = frozenset("abcdefghijklmnopqrstuvwxyz")
_ASCII_ALNUM: Final = _ASCII_LETTERS | frozenset("0123456789")


class Strength(enum.IntEnum):
    CONTEXT = 1
    SHAPE = 2
    VERIFIED = 3


@dataclass(frozen=True, slots=True)
class NumberMatch:
    entity: str
    start: int  # offsets into the normalised text
    end: int
    value: str  # the identifying digits (and the X of an ID)
    strength: Strength


# (entity, strength, first digit, end digit) within the classified digits
_Candidate = tuple[str, Strength, int, int]
_HOTLINE: Final = "hotline"


def find_numbers(text: str) -> Iterator[NumberMatch]:
    """Personal numbers in the normalised ``text``, left to right."""
    for m in _RUN.finditer(text):
        yield from _scan_run(text, m)


def _scan_run(text: str, m: re.Match[str]) -> Iterator[NumberMatch]:
    raw = m.group()
    x_end = raw.endswith("x")
    digits: list[str] = []
    pos: list[int] = []
    starts: list[int] = []
    base = m.start()
    for offset, ch in enumerate(raw[:-1] if x_end else raw, start=base):
        if "0" <= ch <= "9":
            if not pos or pos[-1] != offset - 1:
                starts.append(len(digits))  # a new group after a separator
            digits.append(ch)
            pos.append(offset)
    d = "".join(digits)
    ctx, letters = _context(text, m.start(), m.end(), len(d))
    if letters:  # the digits of a code ("JK2026..."), or a passport number ("E12345678")
        passport_word = ctx in (Context.PASSPORT, Context.CN_ID)
        if passport_word and len(letters) <= 2 and len(starts) == 1 and 7 <= len(d) <= 9:
            start = m.start() - len(letters)
            value = letters.upper() + d
            yield NumberMatch("passport", start, m.end(), value, Strength.CONTEXT)
        return
    plus = raw.startswith("+")
    bounds = [*starts, len(d)]
    groups = len(starts)
    split = ctx is not Context.KEEP  # an order or code word names the whole run
    i = 0
    while i < groups:
        last = i  # the longest stretch from group i that could still be one number
        while (
            last - i < _MOST_GROUPS and last < groups and bounds[last + 1] - bounds[i] <= _LONGEST
        ):
            last += 1
        for j in range(last, i, -1) if split else (groups,):
            lo, hi = bounds[i], bounds[j]
            whole = j - i == groups
            if hi - lo < 9 and not whole:
                continue  # too short to be anything without the whole run's context
            sizes = tuple(bounds[k + 1] - bounds[k] for k in range(i, j))
            takes_x = x_end and j == groups
            found = _classify(d[lo:hi], sizes, plus and i == 0, takes_x, ctx, whole=whole)
            if found is None:
                continue
            if not isinstance(found, str):  # a hotline is kept as it is
                entity, strength, a, b = found
                if takes_x and entity == "cn_id" and b == hi - lo:
                    value, end = d[lo + a : hi] + "X", m.end()
                else:
                    value, end = d[lo + a : lo + b], pos[lo + b - 1] + 1
                yield NumberMatch(entity, pos[lo + a], end, value, strength)
            i = j
            break
        else:
            i += 1 if split else groups


def _context(text: str, start: int, end: int, size: int) -> tuple[Context, str]:
    """The run's context, and the ASCII letters glued to its front when they
    make it an alphanumeric code (not a context word like "id" or "tel")."""
    after = text[end : end + 2]
    if after[:1] in _ASCII_LETTERS or (after[:1] in "_/#." and after[1:] in _ASCII_ALNUM):
        return Context.KEEP, ""  # a code ("2026abc"), a path or a decimal ("12345678.90")
    if size <= _AMOUNT_DIGITS and is_amount(text, start, end):
        return Context.KEEP, ""
    lead = start
    while lead > 0 and text[lead - 1] in _ASCII_LETTERS:
        lead -= 1
    letters = text[lead:start]
    if not letters and start > 1 and text[start - 1] in "-_/#." and text[start - 2] in _ASCII_ALNUM:
        return Context.KEEP, ""  # "HT-2026...", "v1.2345678"
    if letters:
        glued = letters_context(letters)  # "id110...", "tel138...": the word's context
        if glued is not Context.KEEP:
            return glued, ""
        return context_before(text, lead), letters
    return context_before(text, start), ""


def _classify(
    d: str, sizes: tuple[int, ...], plus: bool, x_end: bool, ctx: Context, *, whole: bool
) -> _Candidate | str | None:
    n = len(d)
    if n < 9 or n > 19:
        if whole and ctx is Context.PASSPORT and 7 <= n <= 9:
            return ("passport", Strength.CONTEXT, 0, n)
        return _decide([], ctx, n, grouped=whole and min(sizes[:-1], default=3) >= 3)
    if plus:
        return _international(d, 0)
    if d.startswith("00") and (found := _international(d[2:], 2)) is not None:
        return found
    if n == 10 and (d[:3] in ("400", "800") or d[:3] in _TOLL_FREE_NANP):
        return _HOTLINE
    if n == 11 and d[0] == "1" and sizes[0] == 1 and d[1:4] in _TOLL_FREE_NANP:
        return _HOTLINE
    cands: list[_Candidate] = []
    for prefix in (0, 2):
        national = d[prefix:]
        if (prefix == 0 or d.startswith("86")) and _is_cn_mobile(national, sizes, prefix):
            cands.append(("mobile", Strength.SHAPE, prefix, n))
    grouped = len(sizes) == 1 or min(sizes[:-1]) >= 3
    id_length = n == 17 if x_end else n in (15, 18)
    if grouped and id_length:
        value = d + ("X" if x_end else "")
        strength = Strength.CONTEXT
        if cn_id_shape_ok(value):
            strength = Strength.VERIFIED if cn_id_checksum_ok(value) else Strength.SHAPE
        cands.append(("cn_id", strength, 0, n))
    if grouped and n >= 13 and not x_end:
        luhn, prefix_ok = luhn_ok(d), card_prefix_plausible(d)
        strength = Strength.CONTEXT
        if luhn and prefix_ok:
            strength = Strength.VERIFIED
        elif n >= 16 and (luhn or prefix_ok):
            strength = Strength.SHAPE
        cands.append(("bank_card", strength, 0, n))
    if n == 9 and not x_end:
        shaped = sizes == (3, 2, 4) and ssn_ok(d)
        cands.append(("us_ssn", Strength.SHAPE if shaped else Strength.CONTEXT, 0, n))
        cands.append(("passport", Strength.CONTEXT, 0, n))
    return _decide(cands, ctx, n, grouped=grouped and whole)


def _decide(cands: list[_Candidate], ctx: Context, n: int, *, grouped: bool) -> _Candidate | None:
    best: _Candidate | None = None
    best_rank: tuple[bool, int, int] = (False, 0, 0)
    for cand in cands:
        entity, strength = cand[0], cand[1]
        if (
            strength is Strength.VERIFIED
            or (strength is Strength.SHAPE and ctx is not Context.KEEP)
            or (strength is Strength.CONTEXT and ctx.value == entity and grouped)
        ):
            rank = (ctx.value == entity, int(strength), _PRIORITY[entity])
            if rank > best_rank:
                best, best_rank = cand, rank
    if best is None and grouped and ctx in (Context.CN_ID, Context.ACCOUNT) and 8 <= n <= 19:
        best = (ctx.value, Strength.CONTEXT, 0, n)  # a mistyped ID or an account number
    return best


def _is_cn_mobile(national: str, sizes: tuple[int, ...], prefix: int) -> bool:
    if not _CN_MOBILE.fullmatch(national):
        return False
    # the national number's first group has at least three digits (not "1-888-...")
    seen = first = 0
    for size in sizes:
        if prefix < seen + size:
            first = seen + size - prefix
            break
        seen += size
    return first >= 3 and _phone_kind("86" + national)[0] == "mobile"


def _international(digits: str, lead: int) -> _Candidate | str | None:
    """``digits`` after ``+`` or ``00``; ``lead`` digits precede them in the run."""
    kind, country = _phone_kind(digits)
    if kind == "mobile":
        start = lead + len(str(country))
        return ("mobile", Strength.SHAPE, start, lead + len(digits))
    return _HOTLINE if kind == "service" else None


def _phone_kind(digits: str) -> tuple[str | None, int]:
    """("mobile" | "service" | None, country code) for an international number."""
    try:
        number = phonenumbers.parse("+" + digits, None)
    except NumberParseException:
        return None, 0
    kind = phonenumbers.number_type(number)  # UNKNOWN exactly when not a valid number
    if kind == PhoneNumberType.UNKNOWN:
        return None, 0
    country = number.country_code or 0
    if kind in _MOBILE_TYPES:
        return "mobile", country
    return ("service" if kind in _SERVICE_TYPES else None), country
