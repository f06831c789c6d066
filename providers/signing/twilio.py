"""Twilio webhook signatures (``X-Twilio-Signature``).

Source: https://www.twilio.com/docs/usage/security#validating-requests (reference
implementation ``twilio/twilio-python`` ``twilio/request_validator.py``); vectors in
``providers.md`` §3.4.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from providers.signing.common import hmac_sha1, same, sha256_hex

_DEFAULT_PORTS = {"https": 443, "http": 80}


def signing_string(url: str, params: Iterable[tuple[str, str]]) -> str:
    """The URL, then each parameter name (sorted) followed by its values (sorted,
    repeated values collapsed)."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    parts = [url]
    for name in sorted(values):
        parts.extend(name + value for value in sorted(values[name]))
    return "".join(parts)


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    digest = hmac_sha1(auth_token.encode("utf-8"), signing_string(url, params))
    return base64.b64encode(digest).decode("ascii")


def _with_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port is not None or parts.scheme not in _DEFAULT_PORTS:
        return url
    netloc = f"{parts.netloc}:{_DEFAULT_PORTS[parts.scheme]}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _without_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port is None:
        return url
    host = parts.netloc.rsplit(":", 1)[0]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def validate(
    auth_token: str,
    url: str,
    params: Iterable[tuple[str, str]],
    header: str,
    *,
    body: bytes | None = None,
) -> bool:
    """True when ``header`` signs this request. Like twilio-python, the URL is tried with
    and without the default port (proxies change it). A JSON-bodied webhook carries
    ``bodySHA256`` in the URL: the URL alone is signed and the body hash is compared."""
    if not header:
        return False
    pairs = list(params)
    body_hash = dict(parse_qsl(urlsplit(url).query)).get("bodySHA256")
    if body_hash is not None:
        if body is None or not same(sha256_hex(body), body_hash):
            return False
        pairs = []
    candidates = {_without_port(url), _with_port(url)}
    return any(same(signature(auth_token, u, pairs), header) for u in candidates)
