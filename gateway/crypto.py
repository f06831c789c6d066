"""Field encryption, blind indexes and constant-time comparison.

:class:`FieldCipher` seals personal fields (phone numbers, message bodies,
findings) with AES-256-GCM. A sealed value is a compact ASCII token::

    v1.<key_id>.<base64url(nonce || ciphertext || tag)>

with a fresh random 96-bit nonce per value. The ``v1.<key_id>.`` header is
bound into the associated data together with the caller's ``aad``, so neither
the header nor the context a value was sealed for can be swapped unnoticed.
The key id lets a later key ring pick the right key without trial decryption.

:class:`BlindIndex` turns a phone number or a borrower id into a keyed hash
that can be stored and looked up without revealing the value. Callers
normalise values first (E.164 for phone numbers): the index compares bytes.

All keys are exactly 32 random bytes (``config.settings.key_bytes``); a key of
another length is almost always a configuration slip (for instance the base64
text instead of the decoded bytes) and is refused. :func:`derive_key` makes
independent keys for separate purposes from one such key (HKDF-SHA256), and
:class:`SigningKey` signs with Ed25519 (the audit log's checkpoints), so that
anyone holding only the public half can check a signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from typing import Any, Final

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT_VERSION: Final = "v1"
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16

_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class DecryptionError(Exception):
    """A token could not be opened: malformed, tampered with, sealed under another
    key, or opened with other associated data. The message gives the reason only,
    never any part of the content."""


def _check_key(key: bytes, what: str) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise ValueError(f"{what} key must be {KEY_BYTES} bytes")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    if not _BASE64URL.fullmatch(text):
        raise DecryptionError("malformed token")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionError("malformed token") from None


def _split(token: str) -> tuple[str, str]:
    """The key id and the base64 body of a token, or :class:`DecryptionError`."""
    if not isinstance(token, str):
        raise DecryptionError("malformed token")
    version, _, rest = token.partition(".")
    key_id, dot, body = rest.partition(".")
    if version != FORMAT_VERSION or not dot or not _KEY_ID.fullmatch(key_id):
        raise DecryptionError("malformed token")
    return key_id, body


def token_key_id(token: str) -> str:
    """The key id a token was sealed under (no decryption; for key rotation)."""
    return _split(token)[0]


class FieldCipher:
    """AES-256-GCM for personal fields at rest."""

    __slots__ = ("_aead", "_header", "_key_id")

    def __init__(self, key: bytes, key_id: str = "k1") -> None:
        _check_key(key, "field cipher")
        if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
            raise ValueError("key_id must be 1-32 characters of A-Z, a-z, 0-9, _ and -")
        self._aead = AESGCM(key)
        self._key_id = key_id
        self._header = f"{FORMAT_VERSION}.{key_id}."

    @property
    def key_id(self) -> str:
        return self._key_id

    def __repr__(self) -> str:
        return f"FieldCipher(key_id={self._key_id!r})"

    def _associated(self, aad: bytes) -> bytes:
        return self._header.encode("ascii") + aad

    def seal(self, plaintext: str, *, aad: bytes = b"") -> str:
        """Encrypt ``plaintext``; ``aad`` names the context it belongs to."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), self._associated(aad))
        return self._header + _b64url(nonce + sealed)

    def open(self, token: str, *, aad: bytes = b"") -> str:
        """Decrypt a token from :meth:`seal` with the same ``aad``."""
        key_id, body = _split(token)
        if key_id != self._key_id:
            raise DecryptionError("token was sealed under another key")
        raw = _unb64url(body)
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("malformed token")
        try:
            data = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._associated(aad))
        except InvalidTag:
            raise DecryptionError("authentication failed (tampered, wrong key or aad)") from None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionError("sealed content is not text") from None

    def seal_json(self, obj: Any, *, aad: bytes = b"") -> str:
        """Seal any JSON-serialisable value (``TypeError``/``ValueError`` otherwise)."""
        return self.seal(_JSON.encode(obj), aad=aad)

    def open_json(self, token: str, *, aad: bytes = b"") -> Any:
        text = self.open(token, aad=aad)
        try:
            return json.loads(text)
        except ValueError:
            raise DecryptionError("sealed content is not JSON") from None


class BlindIndex:
    """Keyed, domain-separated hashes for lookups by phone number or borrower.

    ``digest(kind, value)`` is the hex HMAC-SHA256 of ``kind + "\\x00" + value``:
    the same value under two kinds gives unrelated digests."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        _check_key(key, "blind index")
        # keyed once; each digest copies it instead of hashing the padded key again
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def __repr__(self) -> str:
        return "BlindIndex(key='********')"

    def digest(self, kind: str, value: str) -> str:
        if not kind or "\x00" in kind:
            raise ValueError("kind must be a non-empty string without NUL")
        mac = self._keyed.copy()
        mac.update(kind.encode("utf-8") + b"\x00" + value.encode("utf-8"))
        return mac.hexdigest()

    def phone(self, e164: str) -> str:
        """The lookup hash of a phone number (E.164)."""
        return self.digest("phone", e164)

    def borrower(self, client_id: str, borrower_id: str) -> str:
        """The lookup hash of a client's borrower (borrower ids are per client)."""
        return self.digest("borrower", f"{client_id}\x00{borrower_id}")


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    """Compare secrets without leaking where they differ (str is UTF-8 encoded)."""
    left = a.encode("utf-8") if isinstance(a, str) else a
    right = b.encode("utf-8") if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


def derive_key(master: bytes, purpose: str) -> bytes:
    """A 32-byte key for one ``purpose``, independent of the keys for others."""
    _check_key(master, "master")
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose.encode()
    ).derive(master)


class SigningKey:
    """An Ed25519 key made from a 32-byte seed; signatures are base64url text."""

    __slots__ = ("_private", "public")

    def __init__(self, seed: bytes) -> None:
        _check_key(seed, "signing")
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        self.public = self._private.public_key().public_bytes_raw()

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public.hex()[:16]}...)"

    def sign(self, data: bytes) -> str:
        return _b64url(self._private.sign(data))


def signature_valid(public: bytes, data: bytes, signature: str) -> bool:
    """True when ``signature`` (base64url) is the Ed25519 signature of ``data``."""
    try:
        raw = _unb64url(signature)
        Ed25519PublicKey.from_public_bytes(public).verify(raw, data)
    except (DecryptionError, InvalidSignature, ValueError):
        return False
    return True
