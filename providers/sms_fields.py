"""Small conversions the template providers share: phone number forms, the signature
carried in a body (【name】), positional template parameters."""

from __future__ import annotations

import re
from collections.abc import Mapping

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,31})\}")
_SIGNATURE = re.compile(r"^【([^【】]{2,12})】|【([^【】]{2,12})】$")


def ordered_params(template_text: str | None, params: Mapping[str, str]) -> dict[str, str]:
    """The params in the order their placeholders first appear in the lendsms template
    (Tencent's ``{1}``, ``{2}``… are positional); otherwise in the mapping's order."""
    if template_text:
        names: list[str] = []
        for name in _PLACEHOLDER.findall(template_text):
            if name not in names and name in params:
                names.append(name)
        if len(names) == len(params):
            return {n: params[n] for n in names}
    return dict(params)


def signature_in(body: str) -> str | None:
    """The name of a 【signature】 at the start or end of a Chinese text."""
    found = _SIGNATURE.search(body.strip())
    if found is None:
        return None
    return found.group(1) or found.group(2)


def cn_national(e164: str) -> str | None:
    """``+8613812345678`` -> ``13812345678``; None when not a mainland number."""
    if e164.startswith("+86") and len(e164) == 14:
        return e164[3:]
    return None


def digits_only(e164: str) -> str:
    """E.164 without the ``+`` (Alibaba's international form)."""
    return e164.lstrip("+")


def e164_from(national: str, country_code: str | None = None) -> str:
    """A number as a provider reports it -> E.164 (mainland China when unsure)."""
    number = national.strip().replace(" ", "")
    if number.startswith("+"):
        return number
    if number.startswith("00"):
        return "+" + number[2:]
    if country_code:
        return f"+{country_code.lstrip('+')}{number}"
    if len(number) == 11 and number.startswith("1"):
        return "+86" + number
    if len(number) == 13 and number.startswith("86"):
        return "+" + number
    return "+" + number


def render(template_text: str, params: Mapping[str, str]) -> str | None:
    """The lendsms template with its placeholders filled; None when one is missing."""
    needed = set(_PLACEHOLDER.findall(template_text))
    if not needed <= set(params):
        return None
    return _PLACEHOLDER.sub(lambda m: params[m.group(1)], template_text)
