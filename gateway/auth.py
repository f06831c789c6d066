"""API keys: ``lsk_<id>_<secret>``. Only a hash of the secret is stored.

The secret is 256 random bits, so a fast keyed-free SHA-256 is as strong as
a slow password hash here and keeps authentication off the hot path's
critical section. Comparison is constant-time. An unknown id, a revoked key
and a wrong secret all produce the same 401.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from gateway.crypto import constant_time_equals
from gateway.errors import Forbidden, Unauthorized
from gateway.models import ApiKey
from gateway.store.base import Store

PREFIX = "lsk"
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_ID_LEN = 12
_MAX_KEY_LEN = 128


@dataclass(frozen=True, slots=True)
class NewKey:
    key: ApiKey
    token: str  # shown once, never stored
    secret_hash: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(b"lendsms-api-key\x00" + secret.encode("ascii")).hexdigest()


def new_key(client_id: str, scopes: frozenset[str], now: datetime) -> NewKey:
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LEN))
    secret = secrets.token_urlsafe(32)
    key = ApiKey(id=key_id, client_id=client_id, scopes=scopes, created_at=now)
    return NewKey(key=key, token=f"{PREFIX}_{key_id}_{secret}", secret_hash=hash_secret(secret))


def parse_token(token: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` or None when the token is not shaped like a key."""
    if len(token) > _MAX_KEY_LEN or not token.isascii():
        return None
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or len(key_id) != _ID_LEN or not secret:
        return None
    if any(c not in _ID_ALPHABET for c in key_id):
        return None
    return key_id, secret


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def authenticate(store: Store, header: str | None) -> ApiKey:
    """The key behind an Authorization header, or Unauthorized (one answer for
    missing, malformed, unknown, revoked and wrong keys)."""
    token = bearer_token(header)
    parsed = parse_token(token) if token else None
    if parsed is None:
        raise Unauthorized()
    key_id, secret = parsed
    stored = await store.get_key(key_id)
    presented = hash_secret(secret)
    if stored is None:
        constant_time_equals(presented, presented)  # same work as a real comparison
        raise Unauthorized()
    if not constant_time_equals(presented, stored.secret_hash) or stored.key.revoked_at is not None:
        raise Unauthorized()
    return stored.key


def require_scope(key: ApiKey, scope: str) -> None:
    if scope not in key.scopes:
        raise Forbidden(f"this key lacks the {scope!r} scope")
