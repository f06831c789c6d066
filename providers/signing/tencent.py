"""Tencent Cloud API 3.0 signature, TC3-HMAC-SHA256.

Source: https://www.tencentcloud.com/document/product/382/40467 and the official demo
``TencentCloud/signature-process-demo``; vectors in ``providers.md`` §2.4.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from providers.signing.common import hmac_sha256, sha256_hex

ALGORITHM = "TC3-HMAC-SHA256"


@dataclass(frozen=True, slots=True)
class Tc3Request:
    """What the signature covers. ``headers`` are the signed ones, by lower-case name
    (e.g. ``content-type``, ``host`` and optionally ``x-tc-action``)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    payload: bytes


def credential_date(timestamp: int) -> str:
    """The UTC date of ``X-TC-Timestamp`` (not local time)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def canonical_request(req: Tc3Request) -> tuple[str, str]:
    """``(canonical request, signed headers)``; header names and values lower-cased."""
    items = sorted((k.lower(), v.strip().lower()) for k, v in req.headers.items())
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in items)
    signed = ";".join(k for k, _ in items)
    text = "\n".join(
        [req.method.upper(), req.path or "/", req.query, canonical_headers, signed,
         sha256_hex(req.payload)]
    )  # fmt: skip
    return text, signed


def string_to_sign(req: Tc3Request, timestamp: int, service: str) -> str:
    scope = f"{credential_date(timestamp)}/{service}/tc3_request"
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{sha256_hex(canonical_request(req)[0])}"


def signing_key(secret_key: str, date: str, service: str) -> bytes:
    secret_date = hmac_sha256(("TC3" + secret_key).encode("utf-8"), date)
    secret_service = hmac_sha256(secret_date, service)
    return hmac_sha256(secret_service, "tc3_request")


def signature(secret_key: str, req: Tc3Request, timestamp: int, service: str) -> str:
    key = signing_key(secret_key, credential_date(timestamp), service)
    return hmac_sha256(key, string_to_sign(req, timestamp, service)).hex()


def authorization(
    secret_id: str, secret_key: str, req: Tc3Request, timestamp: int, service: str
) -> str:
    """The ``Authorization`` header value (separators are ``", "``)."""
    _, signed = canonical_request(req)
    scope = f"{credential_date(timestamp)}/{service}/tc3_request"
    sig = signature(secret_key, req, timestamp, service)
    return f"{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={signed}, Signature={sig}"


def parse_authorization(value: str) -> dict[str, str] | None:
    """``{"Credential", "SignedHeaders", "Signature"}`` of a TC3 header, or None."""
    if not value.startswith(ALGORITHM + " "):
        return None
    fields: dict[str, str] = {}
    for part in value[len(ALGORITHM) + 1 :].split(","):
        name, sep, val = part.strip().partition("=")
        if not sep:
            return None
        fields[name] = val
    return fields if {"Credential", "SignedHeaders", "Signature"} <= set(fields) else None
