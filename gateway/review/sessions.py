"""Sessions of the reviewers' web page: sealed cookies, revocable per reviewer.

The cookie ``lendsms_review`` (Path=/review, HttpOnly, SameSite=Strict, Secure
over TLS or when ``review.secure_cookies = "always"``) carries AES-256-GCM over
``{reviewer, issued, seen, csrf}``, under a key derived (HKDF) from ``keys.data``
for this purpose alone. The server keeps no per-session state, so any replica
accepts a cookie another one issued (no sticky sessions), and the store needs
no session table.

On every request the server checks the seal, the idle timeout (``seen`` plus
``review.idle_timeout_seconds``) and the absolute lifetime (12 hours from
sign-in), re-issues the cookie with a fresh ``seen`` and re-reads the reviewer
from the store, so a disabled reviewer is out at once. A visitor who has not
signed in gets an anonymous session too (``reviewer`` empty): it carries the
CSRF token of the sign-in form. Signing in always starts a new session with a
new CSRF token (no fixation).

Revocation: the reviewer's record carries a sign-out instant
(``Reviewer.signed_out_at``), read with the reviewer on that same request, so
it costs no extra round trip. A session whose ``issued`` is at or before it is
refused on every replica, exactly as if there were no cookie (see
:func:`revoked`). Signing out sets it to now, so it signs the reviewer out
everywhere, and a copy of a cookie taken before is dead at once; so do
``lendsms reviewers signout NAME``, a new password and disabling. ``issued``
and the instant are both unix seconds from the server's clock, compared to the
microsecond (``datetime``'s resolution), so a session issued in the same second
as a sign-out, or the same microsecond, cannot survive it.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.crypto import derive_key

COOKIE: Final = "lendsms_review"
COOKIE_PATH: Final = "/review"
LIFETIME_SECONDS: Final = 12 * 3600
_VERSION: Final = "s1"
_AAD: Final = b"lendsms-review-session-v1"
_NONCE: Final = 12
_MAX_COOKIE: Final = 1024


@dataclass(frozen=True, slots=True)
class Session:
    reviewer: str  # "" before sign-in
    issued: float  # unix seconds
    seen: float
    csrf: str

    @property
    def signed_in(self) -> bool:
        return bool(self.reviewer)

    def __repr__(self) -> str:  # never the token or a name
        return f"Session(signed_in={self.signed_in})"


def _micros(unix_seconds: float) -> int:
    return round(unix_seconds * 1_000_000)


def revoked(session: Session, signed_out_at: datetime | None) -> bool:
    """True when ``session`` was issued at or before the reviewer's sign-out
    instant (compared to the microsecond): such a session is no session."""
    if signed_out_at is None:
        return False
    return _micros(session.issued) <= _micros(signed_out_at.timestamp())


class SessionCodec:
    """Makes, seals and opens sessions. ``idle_seconds`` from the settings."""

    def __init__(self, data_key: bytes, idle_seconds: int) -> None:
        self._aead = AESGCM(derive_key(data_key, "lendsms-review-session"))
        self.idle_seconds = idle_seconds

    @staticmethod
    def new(reviewer: str, now: datetime) -> Session:
        at = now.timestamp()
        return Session(reviewer=reviewer, issued=at, seen=at, csrf=secrets.token_urlsafe(32))

    @staticmethod
    def touch(session: Session, now: datetime) -> Session:
        return replace(session, seen=now.timestamp())

    def seal(self, session: Session) -> str:
        plain = json.dumps(
            {"r": session.reviewer, "i": session.issued, "s": session.seen, "c": session.csrf},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        nonce = secrets.token_bytes(_NONCE)
        sealed = nonce + self._aead.encrypt(nonce, plain, _AAD)
        return f"{_VERSION}.{base64.urlsafe_b64encode(sealed).rstrip(b'=').decode('ascii')}"

    def open(self, token: str | None, now: datetime) -> Session | None:
        """The session in ``token``, or None when it is missing, malformed,
        tampered with, sealed under another key, idle too long or too old."""
        session = self._unseal(token) if token else None
        if session is None:
            return None
        at = now.timestamp()
        if at - session.seen > self.idle_seconds or at - session.issued > LIFETIME_SECONDS:
            return None
        if session.seen > at + 60:  # from the future: a clock far off, or forged
            return None
        return session

    def _unseal(self, token: str) -> Session | None:
        version, _, body = token.partition(".")
        if version != _VERSION or not body or len(token) > _MAX_COOKIE:
            return None
        try:
            sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            plain = self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], _AAD)
            data = json.loads(plain)
            return Session(
                reviewer=str(data["r"]),
                issued=float(data["i"]),
                seen=float(data["s"]),
                csrf=str(data["c"]),
            )
        except (binascii.Error, ValueError, InvalidTag, KeyError, TypeError):
            return None
