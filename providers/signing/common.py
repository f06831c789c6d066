"""Helpers shared by the signing schemes: RFC 3986 encoding, hashes, HMACs."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import quote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def percent_encode(value: str) -> str:
    """RFC 3986: ``A-Z a-z 0-9 - _ . ~`` kept, everything else ``%XY`` (upper-case hex,
    UTF-8; a space is ``%20``, ``*`` is ``%2A``)."""
    return quote(value, safe="-_.~")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """``enc(k)=enc(v)`` joined with ``&``, sorted by encoded name, then value."""
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def sha256_hex(data: bytes | str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def hmac_sha256(key: bytes, message: bytes | str) -> bytes:
    raw = message.encode("utf-8") if isinstance(message, str) else message
    return hmac.new(key, raw, hashlib.sha256).digest()


def hmac_sha1(key: bytes, message: bytes | str) -> bytes:
    raw = message.encode("utf-8") if isinstance(message, str) else message
    return hmac.new(key, raw, hashlib.sha1).digest()


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two signatures."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
