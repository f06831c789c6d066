"""Validation at the boundary: raw JSON in, a frozen :class:`SendRequest` out.

Errors name the field and the rule, never the value (it may be a phone
number or a borrower's text).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType

from config.settings import PURPOSES, TemplateSettings
from gateway.errors import Invalid
from gateway.policy.zones import zone_names

ROLES = ("borrower", "contact")
MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
MAX_SCHEDULE_AHEAD = timedelta(days=30)
_FIELDS = frozenset(
    {
        "to",
        "region",
        "borrower_id",
        "purpose",
        "text",
        "template",
        "params",
        "recipient_role",
        "reference",
        "scheduled_at",
        "callback_url",
    }
)
_PRINTABLE = frozenset(string.printable) - frozenset("\t\n\r\x0b\x0c")
# an optional leading "+", then digits (any script's decimal digits: phonenumbers
# reads full-width and Arabic-Indic ones) and spaces, dots, dashes and brackets,
# ending in a digit: no letters, extensions, "++" or invisible characters
_PHONE_SHAPE = re.compile(r"\+?[\d (.)-]*\d")
_PLAIN_E164 = re.compile(r"\+(?:86(1[3-9]\d{9})|1([2-9]\d{9}))")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,31})\}")
# C0 controls and DEL; bidi embeddings, overrides and isolates (U+202A-U+202E,
# U+2066-U+2069) let a text display in another order than it reads ("Trojan
# Source" spoofing of amounts or links) and have no place in an SMS
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True, slots=True)
class SendRequest:
    to: str  # E.164
    region: str  # ISO 3166 region of the number ("CN", "US", ...)
    borrower_id: str
    purpose: str
    text: str  # the submitted text, or the rendered template
    recipient_role: str = "borrower"
    template: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    reference: str | None = None
    scheduled_at: datetime | None = None
    callback_url: str | None = None
    # what the template declares about itself (settings); free text: nothing
    attests: frozenset[str] = frozenset()
    # ``mask_phone(to)``, made from the number parsed once at the boundary
    to_masked: str = ""
    # ``zone_names`` of ``to`` from the same parse; None: looked up when needed
    to_zones: tuple[str, ...] | None = None

    def __repr__(self) -> str:
        return f"SendRequest(purpose={self.purpose!r}, region={self.region!r})"


def request_hash(data: Any) -> str:
    """A hash of the parsed body: key order and spacing do not matter."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


_MAX_NUMBER_CHARS = 64


def parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8 only, no duplicate keys, no NaN/Infinity, no numbers
    longer than 64 characters or overflowing a float, and a nesting depth
    Python's parser can handle. (Unpaired surrogate escapes such as
    ``"\\ud800"`` are refused per field by the field validators.)"""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("the body is not valid UTF-8") from None
    try:
        data = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
            object_pairs_hook=_unique_keys,
        )
    except (json.JSONDecodeError, RecursionError):
        raise Invalid("the body is not valid JSON") from None
    return data


def _reject_constant(name: str) -> Any:
    raise Invalid(f"{name} is not allowed in JSON")


def _parse_int(literal: str) -> int:
    if len(literal) > _MAX_NUMBER_CHARS:
        raise Invalid("a number in the body is too long")
    return int(literal)


def _parse_float(literal: str) -> float:
    value = float(literal) if len(literal) <= _MAX_NUMBER_CHARS else math.inf
    if not math.isfinite(value):
        raise Invalid("a number in the body is out of range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise Invalid("the body has a duplicate key in an object")
    return out


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, name: str, message: str) -> None:
        self.items.append({"field": name, "message": message})


def _text_field(
    data: Mapping[str, Any], name: str, errors: _Errors, *, max_len: int, required: bool = False
) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            errors.add(name, "is required")
        return None
    if not isinstance(value, str):
        errors.add(name, "must be a string")
        return None
    if not 1 <= len(value) <= max_len:
        errors.add(name, f"must be 1 to {max_len} characters")
        return None
    if not _is_valid_unicode(value) or _CONTROL.search(value):
        errors.add(name, "contains characters that are not allowed")
        return None
    return value


def _is_valid_unicode(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def parse_phone(raw: str, region: str | None) -> tuple[str, str]:
    """``(e164, region)``; Invalid when the number is not a valid mobile number."""
    e164, number_region, _, _ = _parse_mobile(raw, region)
    return e164, number_region


def _plain_e164(raw: str) -> phonenumbers.PhoneNumber | None:
    """The number ``phonenumbers.parse`` makes of the commonest input, plain
    E.164 without spaces: ``+86``, ``1``, a digit 3-9 and nine more (a Chinese
    mobile), or ``+1`` and ten digits not starting with 0 or 1, without its generic
    path, which is half of the validation's cost; None for anything else. For
    these shapes no national or carrier prefix can be stripped and there is no
    leading zero, so the two agree (tests/unit/test_phone_fast_path.py compares
    them)."""
    m = _PLAIN_E164.fullmatch(raw)
    if m is None:
        return None
    cn, us = m.groups()
    if cn is not None:
        return phonenumbers.PhoneNumber(country_code=86, national_number=int(cn))
    return phonenumbers.PhoneNumber(country_code=1, national_number=int(us))


def _parse_mobile(raw: str, region: str | None) -> tuple[str, str, str, tuple[str, ...]]:
    """``(e164, region, masked, time zones)`` from one parse of the number."""
    if len(raw) > 32:
        raise Invalid(errors=[{"field": "to", "message": "is too long"}])
    if not raw.startswith("+") and not region:
        raise Invalid(errors=[{"field": "to", "message": "needs E.164 form or a region"}])
    number = _plain_e164(raw)
    if number is None:
        if not _PHONE_SHAPE.fullmatch(raw):
            raise Invalid(errors=[{"field": "to", "message": "is not a phone number"}])
        try:
            number = phonenumbers.parse(raw, None if raw.startswith("+") else region)
        except phonenumbers.NumberParseException:
            raise Invalid(errors=[{"field": "to", "message": "is not a phone number"}]) from None
    # a mobile type implies a valid number (is_valid_number matches the same
    # patterns again), so the validity check is only needed to word the refusal
    number_type = phonenumbers.number_type(number)
    if number_type not in MOBILE_TYPES:
        if not phonenumbers.is_valid_number(number):
            raise Invalid(errors=[{"field": "to", "message": "is not a valid phone number"}])
        raise Invalid(errors=[{"field": "to", "message": "is not a mobile number"}])
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    region_code = phonenumbers.region_code_for_number(number) or "ZZ"
    return e164, region_code, _mask(number), zone_names(number, number_type)


def mask_phone(e164: str) -> str:
    """``+86 138****5678``: country code, a short prefix and the last four."""
    return _mask(phonenumbers.parse(e164, None))


def _mask(number: phonenumbers.PhoneNumber) -> str:
    national = str(number.national_number)
    keep_head = 3 if len(national) >= 10 else 1
    hidden = len(national) - keep_head - 4
    if hidden < 2:
        return f"+{number.country_code} {'*' * (len(national) - 2)}{national[-2:]}"
    return f"+{number.country_code} {national[:keep_head]}{'*' * hidden}{national[-4:]}"


def _render(template: TemplateSettings, params: Mapping[str, str], errors: _Errors) -> str | None:
    needed = set(_PLACEHOLDER.findall(template.text))
    missing = sorted(needed - set(params))
    extra = sorted(set(params) - needed)
    if missing:
        errors.add("params", f"missing placeholder values: {', '.join(missing)}")
    if extra:
        errors.add("params", f"unknown placeholders: {', '.join(extra)}")
    if missing or extra:
        return None
    return _PLACEHOLDER.sub(lambda m: params[m.group(1)], template.text)


def _params(data: Mapping[str, Any], errors: _Errors) -> dict[str, str]:
    raw = data.get("params", {})
    if not isinstance(raw, dict) or len(raw) > 20:
        errors.add("params", "must be an object of at most 20 string values")
        return {}
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(value, str) or not 0 < len(value) <= 200 or len(key) > 32:
            errors.add("params", "each value must be a string of 1 to 200 characters")
            return {}
        if not (_is_valid_unicode(key) and _is_valid_unicode(value)) or _CONTROL.search(value):
            errors.add("params", "contains characters that are not allowed")
            return {}
        out[key] = value
    return out


def _scheduled_at(value: Any, now: datetime, errors: _Errors) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        errors.add("scheduled_at", "must be an RFC 3339 date-time string")
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        errors.add("scheduled_at", "must be an RFC 3339 date-time string")
        return None
    if when.tzinfo is None:
        errors.add("scheduled_at", "needs a UTC offset")
        return None
    when = when.astimezone(UTC)
    if when - now > MAX_SCHEDULE_AHEAD:
        errors.add("scheduled_at", "must be within 30 days")
        return None
    return when if when > now else None


def _callback_url(data: Mapping[str, Any], errors: _Errors) -> str | None:
    value = _text_field(data, "callback_url", errors, max_len=2048)
    if value is not None and (not value.startswith("https://") or " " in value):
        errors.add("callback_url", "must be an https URL")
        return None
    return value


def parse_send_request(
    data: Any,
    *,
    now: datetime,
    templates: Mapping[str, TemplateSettings],
    max_text_chars: int,
) -> SendRequest:
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object")
    errors = _Errors()
    for name in sorted(set(data) - _FIELDS):
        errors.add(name[:64], "unknown field")

    region = data.get("region")
    if region is not None and (
        not isinstance(region, str) or not re.fullmatch(r"[A-Z]{2}", region)
    ):
        errors.add("region", "must be a two-letter region code such as CN")
        region = None
    to = _text_field(data, "to", errors, max_len=32, required=True)
    e164 = number_region = masked = ""
    zones: tuple[str, ...] | None = None
    if to is not None:
        try:
            e164, number_region, masked, zones = _parse_mobile(to, region)
        except Invalid as exc:
            errors.items.extend(dict(e) for e in exc.errors)

    borrower_id = _text_field(data, "borrower_id", errors, max_len=128, required=True)
    if borrower_id is not None and not set(borrower_id) <= _PRINTABLE:
        errors.add("borrower_id", "must be printable ASCII")
    purpose = data.get("purpose")
    if purpose not in PURPOSES:
        errors.add("purpose", f"must be one of {', '.join(PURPOSES)}")
    role = data.get("recipient_role", "borrower")
    if role not in ROLES:
        errors.add("recipient_role", "must be borrower or contact")

    text = template_id = None
    params: dict[str, str] = {}
    attests: frozenset[str] = frozenset()
    if ("text" in data) == ("template" in data):
        errors.add("text", "give either text or template (with params), not both or neither")
    elif "text" in data:
        text = _text_field(data, "text", errors, max_len=max_text_chars, required=True)
        if "params" in data:
            errors.add("params", "only with template")
    else:
        template_id = _text_field(data, "template", errors, max_len=64, required=True)
        params = _params(data, errors)
        if template_id is not None:
            tpl = templates.get(template_id)
            if tpl is None:
                errors.add("template", "unknown template")
            else:
                if purpose in PURPOSES and tpl.purpose != purpose:
                    errors.add("purpose", f"template {template_id} is for {tpl.purpose}")
                text = _render(tpl, params, errors)
                attests = tpl.attests

    reference = _text_field(data, "reference", errors, max_len=256)
    scheduled_at = _scheduled_at(data.get("scheduled_at"), now, errors)
    callback_url = _callback_url(data, errors)

    if errors.items:
        raise Invalid("the request has invalid fields", errors=errors.items)
    assert text is not None and borrower_id is not None  # noqa: S101 - no errors
    return SendRequest(
        to=e164,
        region=number_region,
        borrower_id=borrower_id,
        purpose=str(purpose),
        text=text,
        recipient_role=str(role),
        template=template_id,
        params=MappingProxyType(params),
        reference=reference,
        scheduled_at=scheduled_at,
        callback_url=callback_url,
        attests=attests,
        to_masked=masked,
        to_zones=zones,
    )
