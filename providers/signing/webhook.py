"""The HMAC-SHA256 signature lendsms puts on the HTTP requests it makes itself (the
``webhook`` provider and client status webhooks): ``t=<unix seconds>,v1=<hex>`` where
``v1 = HMAC-SHA256(secret, "<t>." + body)``. The timestamp in the signed string lets a
receiver refuse replays older than its tolerance."""

from __future__ import annotations

from providers.signing.common import hmac_sha256, same

HEADER = "Lendsms-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac_sha256(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body)
    return f"t={timestamp},v1={mac.hex()}"


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """True when ``header`` signs ``body`` and its timestamp is within ``tolerance``."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(name, []).append(value)
    stamps = fields.get("t", [])
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return any(same(expected, candidate) for candidate in fields.get("v1", []))
