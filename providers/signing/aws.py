"""AWS Signature Version 4.

Source: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html;
vectors from the aws-sig-v4-test-suite (``providers.md`` §4.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

from providers.signing.common import canonical_query, hmac_sha256, sha256_hex

ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True, slots=True)
class SigV4Request:
    """``headers`` are the headers to sign (any case); ``query`` the raw query string."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    payload: bytes


def _canonical_path(path: str) -> str:
    return quote(path or "/", safe="/-_.~%")


def _normalize_value(value: str) -> str:
    return " ".join(value.strip().split())


def canonical_request(req: SigV4Request, payload_hash: str | None = None) -> tuple[str, str]:
    """``(canonical request, signed headers)``."""
    items = sorted((k.lower(), _normalize_value(v)) for k, v in req.headers.items())
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in items)
    signed = ";".join(k for k, _ in items)
    query = canonical_query(parse_qsl(req.query, keep_blank_values=True))
    text = "\n".join(
        [req.method.upper(), _canonical_path(req.path), query, canonical_headers, signed,
         payload_hash or sha256_hex(req.payload)]
    )  # fmt: skip
    return text, signed


def credential_scope(amz_date: str, region: str, service: str) -> str:
    return f"{amz_date[:8]}/{region}/{service}/aws4_request"


def string_to_sign(req: SigV4Request, amz_date: str, region: str, service: str) -> str:
    scope = credential_scope(amz_date, region, service)
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{sha256_hex(canonical_request(req)[0])}"


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    k_date = hmac_sha256(("AWS4" + secret_key).encode("utf-8"), date)
    k_region = hmac_sha256(k_date, region)
    k_service = hmac_sha256(k_region, service)
    return hmac_sha256(k_service, "aws4_request")


def signature(secret_key: str, req: SigV4Request, amz_date: str, region: str, service: str) -> str:
    key = signing_key(secret_key, amz_date[:8], region, service)
    return hmac_sha256(key, string_to_sign(req, amz_date, region, service)).hex()


def authorization(
    access_key_id: str,
    secret_key: str,
    req: SigV4Request,
    amz_date: str,
    region: str,
    service: str,
) -> str:
    """The ``Authorization`` header value. ``req.headers`` must include ``host`` and
    ``x-amz-date`` (= ``amz_date``, ``yyyyMMddTHHmmssZ``)."""
    _, signed = canonical_request(req)
    scope = credential_scope(amz_date, region, service)
    sig = signature(secret_key, req, amz_date, region, service)
    credential = f"{access_key_id}/{scope}"
    return f"{ALGORITHM} Credential={credential}, SignedHeaders={signed}, Signature={sig}"


def parse_authorization(value: str) -> dict[str, str] | None:
    if not value.startswith(ALGORITHM + " "):
        return None
    fields: dict[str, str] = {}
    for part in value[len(ALGORITHM) + 1 :].split(","):
        name, sep, val = part.strip().partition("=")
        if not sep:
            return None
        fields[name] = val
    return fields if {"Credential", "SignedHeaders", "Signature"} <= set(fields) else None
