"""Alibaba Cloud request signatures: RPC V2 (HMAC-SHA1) and V3 (ACS3-HMAC-SHA256).

Sources: https://www.alibabacloud.com/help/en/sdk/product-overview/rpc-mechanism (V2) and
https://www.alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature
(V3); vectors in ``shared/reference/providers.md`` §1.7 and §1.8.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from providers.signing.common import (
    EMPTY_SHA256,
    canonical_query,
    hmac_sha1,
    hmac_sha256,
    percent_encode,
    sha256_hex,
)

V3_ALGORITHM = "ACS3-HMAC-SHA256"


# -- RPC V2 -------------------------------------------------------------------------


def v2_canonical_query(params: Mapping[str, str]) -> str:
    """Every parameter except ``Signature``, sorted and RFC 3986 encoded."""
    return canonical_query((k, v) for k, v in params.items() if k != "Signature")


def v2_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    # the canonical query string is encoded a second time
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(v2_canonical_query(params))}"


def v2_signature(access_key_secret: str, method: str, params: Mapping[str, str]) -> str:
    key = (access_key_secret + "&").encode("utf-8")
    digest = hmac_sha1(key, v2_string_to_sign(method, params))
    return base64.b64encode(digest).decode("ascii")


def v2_common_params(
    access_key_id: str, *, nonce: str, timestamp: str, fmt: str = "JSON"
) -> dict[str, str]:
    """The common RPC parameters; ``timestamp`` is UTC ``yyyy-MM-ddTHH:mm:ssZ``."""
    return {
        "AccessKeyId": access_key_id,
        "Format": fmt,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": nonce,
        "SignatureVersion": "1.0",
        "Timestamp": timestamp,
    }


def v2_sign(
    params: Mapping[str, str], *, access_key_secret: str, method: str = "POST"
) -> dict[str, str]:
    """``params`` (common and operation parameters) plus their ``Signature``."""
    out = {k: v for k, v in params.items() if k != "Signature"}
    out["Signature"] = v2_signature(access_key_secret, method, out)
    return out


# -- V3 -----------------------------------------------------------------------------


def _v3_header_names(headers: Mapping[str, str]) -> list[str]:
    names = {k.lower() for k in headers}
    return sorted(n for n in names if n in ("host", "content-type") or n.startswith("x-acs-"))


def v3_canonical_request(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_hash: str,
) -> tuple[str, str]:
    """``(canonical request, signed headers)``. ``headers`` hold the request's headers;
    ``host``, ``content-type`` and every ``x-acs-*`` one are signed."""
    lowered = {k.lower(): v.strip() for k, v in headers.items()}
    names = _v3_header_names(headers)
    canonical_headers = "".join(f"{n}:{lowered[n]}\n" for n in names)
    signed = ";".join(names)
    request = "\n".join(
        [method.upper(), path or "/", canonical_query(query.items()), canonical_headers,
         signed, payload_hash]
    )  # fmt: skip
    return request, signed


def v3_string_to_sign(canonical_request: str) -> str:
    return f"{V3_ALGORITHM}\n{sha256_hex(canonical_request)}"


def v3_authorization(
    access_key_id: str,
    access_key_secret: str,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_hash: str = EMPTY_SHA256,
) -> str:
    """The ``Authorization`` header value (separators are commas without spaces)."""
    request, signed = v3_canonical_request(method, path, query, headers, payload_hash)
    signature = hmac_sha256(access_key_secret.encode("utf-8"), v3_string_to_sign(request)).hex()
    return f"{V3_ALGORITHM} Credential={access_key_id},SignedHeaders={signed},Signature={signature}"


def parse_v3_authorization(value: str) -> dict[str, str] | None:
    """``{"Credential", "SignedHeaders", "Signature"}`` of a V3 header, or None."""
    prefix = V3_ALGORITHM + " "
    if not value.startswith(prefix):
        return None
    fields: dict[str, str] = {}
    for part in value[len(prefix) :].split(","):
        name, sep, val = part.strip().partition("=")
        if not sep:
            return None
        fields[name] = val
    return fields if {"Credential", "SignedHeaders", "Signature"} <= set(fields) else None
