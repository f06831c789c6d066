"""Reviewer passwords: scrypt (RFC 7914) with a random 16-byte salt, stored as
``scrypt$n$r$p$salt_b64$hash_b64``. Hashing costs ~32 MiB and tens of
milliseconds, so the async helpers run it in a worker thread."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

N, R, P = 2**15, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_LENGTH = 12
MAX_LENGTH = 1024
_MAXMEM = 128 * 1024 * 1024  # scrypt needs 128 * r * n bytes (32 MiB here)
_PREFIX = "scrypt"


class PasswordError(ValueError):
    """A password that may not be set (too short, too long)."""


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"the password must have at most {MAX_LENGTH} characters")


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=HASH_BYTES
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str) -> str:
    """A new hash of ``password`` (checked for length first)."""
    check_strength(password)
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _derive(password, salt, N, R, P)
    return f"{_PREFIX}${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time comparison; a malformed hash or an overlong password is
    simply a mismatch (after the same work, so timing does not tell)."""
    parts = stored.split("$")
    try:
        if len(parts) != 6 or parts[0] != _PREFIX:
            raise ValueError("not a scrypt hash")
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        if not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16):
            raise ValueError("scrypt parameters out of range")
        salt = base64.b64decode(parts[4], validate=True)
        expected = base64.b64decode(parts[5], validate=True)
    except ValueError:
        n, r, p, salt, expected = N, R, P, DUMMY_SALT, b""
    candidate = password if len(password) <= MAX_LENGTH else ""
    digest = _derive(candidate, salt, n, r, p)
    return hmac.compare_digest(digest, expected) and len(password) <= MAX_LENGTH


DUMMY_SALT = b"lendsms-no-user!"
# verified against when the name is unknown, so both cases cost the same
DUMMY_HASH = f"{_PREFIX}${N}${R}${P}${_b64(DUMMY_SALT)}${_b64(bytes(HASH_BYTES))}"


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, stored: str) -> bool:
    return await asyncio.to_thread(verify_password, password, stored)
