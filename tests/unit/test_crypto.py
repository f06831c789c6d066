"""Field encryption, blind indexes and constant-time comparison."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from gateway.crypto import (
    BlindIndex,
    DecryptionError,
    FieldCipher,
    constant_time_equals,
    token_key_id,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NUMBER = "+8613812345678"
BODY = "【安心消费金融】尊敬的客户，您的借款已逾期3天，请尽快还款。"
TOKEN = re.compile(r"v1\.k1\.[A-Za-z0-9_-]+")


def flip(token: str, index: int) -> str:
    """The token with one base64 character changed."""
    old = token[index]
    return token[:index] + ("A" if old != "A" else "B") + token[index + 1 :]


# -- FieldCipher -----------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "x", NUMBER, BODY, "emoji 😀 and NUL \x00"])
def test_seal_open_round_trip(text: str) -> None:
    cipher = FieldCipher(KEY)
    token = cipher.seal(text, aad=b"msg:1")
    assert TOKEN.fullmatch(token) and token.isascii()
    assert cipher.open(token, aad=b"msg:1") == text


@given(text=st.text(), aad=st.binary(max_size=64))
def test_round_trip_any_text(text: str, aad: bytes) -> None:
    cipher = FieldCipher(KEY, key_id="k7")
    assert cipher.open(cipher.seal(text, aad=aad), aad=aad) == text


def test_token_layout_and_fresh_nonce() -> None:
    cipher = FieldCipher(KEY)
    first, second = cipher.seal(BODY), cipher.seal(BODY)
    assert first != second  # random nonce per value
    raw = base64.urlsafe_b64decode(first.split(".")[2] + "==")
    assert len(raw) == 12 + len(BODY.encode()) + 16  # nonce | ciphertext | tag
    assert NUMBER not in cipher.seal(NUMBER) and BODY not in first


def test_json_round_trip() -> None:
    cipher = FieldCipher(KEY)
    value = {"to": NUMBER, "text": BODY, "findings": [{"rule": "r1", "span": [0, 3]}], "n": None}
    token = cipher.seal_json(value, aad=b"ctx")
    assert cipher.open_json(token, aad=b"ctx") == value
    assert BODY not in token


def test_seal_json_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(ValueError):
        FieldCipher(KEY).seal_json({"x": float("nan")})
    with pytest.raises(TypeError):
        FieldCipher(KEY).seal_json({"x": object()})


def test_open_json_of_plain_text_is_a_decryption_error() -> None:
    cipher = FieldCipher(KEY)
    with pytest.raises(DecryptionError, match="not JSON"):
        cipher.open_json(cipher.seal(BODY))


def test_every_tampered_character_is_detected() -> None:
    cipher = FieldCipher(KEY)
    token = cipher.seal(NUMBER, aad=b"a")
    body_start = len("v1.k1.")
    for index in range(body_start, len(token)):
        tampered = flip(token, index)
        if tampered == token:
            continue
        with pytest.raises(DecryptionError) as caught:
            cipher.open(tampered, aad=b"a")
        assert NUMBER not in str(caught.value)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-4],  # truncated
        lambda t: t[: len("v1.k1.") + 10],  # shorter than nonce + tag
        lambda t: "v2" + t[2:],  # other version
        lambda t: t.replace("v1.k1.", "v1.k1"),  # header without its dot
        lambda t: t + "!",  # not base64url
        lambda t: t[:10] + "+" + t[11:],  # standard base64, not url-safe
        lambda t: t[:10] + "=" + t[11:],  # padding in the middle
        lambda t: t + "é",  # not ASCII
        lambda t: "",
        lambda t: "v1..abc",
        lambda t: "v1.k1.AAAAA",  # a base64 length that cannot be
    ],
)
def test_malformed_tokens_are_decryption_errors(mangle: Callable[[str], str]) -> None:
    cipher = FieldCipher(KEY)
    token = cipher.seal(NUMBER)
    with pytest.raises(DecryptionError):
        cipher.open(mangle(token))


def test_non_string_token_is_a_decryption_error() -> None:
    with pytest.raises(DecryptionError):
        FieldCipher(KEY).open(b"v1.k1.abc")  # type: ignore[arg-type]


def test_wrong_key_is_a_decryption_error() -> None:
    token = FieldCipher(KEY).seal(NUMBER)
    with pytest.raises(DecryptionError, match="authentication failed") as caught:
        FieldCipher(OTHER_KEY).open(token)
    assert NUMBER not in str(caught.value)


def test_wrong_or_missing_aad_is_a_decryption_error() -> None:
    cipher = FieldCipher(KEY)
    token = cipher.seal(BODY, aad=b"msg:1")
    for aad in (b"msg:2", b"", b"msg:1\x00"):
        with pytest.raises(DecryptionError):
            cipher.open(token, aad=aad)
    with pytest.raises(DecryptionError):
        cipher.open(cipher.seal(BODY), aad=b"msg:1")


def test_key_id_is_bound_to_the_ciphertext() -> None:
    token = FieldCipher(KEY, key_id="k1").seal(NUMBER)
    with pytest.raises(DecryptionError, match="another key"):
        FieldCipher(KEY, key_id="k2").open(token)
    # relabelling the token does not help: the header is associated data
    relabelled = token.replace("v1.k1.", "v1.k2.", 1)
    with pytest.raises(DecryptionError, match="authentication failed"):
        FieldCipher(KEY, key_id="k2").open(relabelled)


def test_authentic_bytes_that_are_not_utf8_are_a_decryption_error() -> None:
    nonce = bytes(12)
    raw = nonce + AESGCM(KEY).encrypt(nonce, b"\xff\xfe", b"v1.k1.")
    token = "v1.k1." + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    with pytest.raises(DecryptionError, match="not text"):
        FieldCipher(KEY).open(token)


def test_token_key_id() -> None:
    assert token_key_id(FieldCipher(KEY, key_id="2026-01_a").seal("x")) == "2026-01_a"
    with pytest.raises(DecryptionError):
        token_key_id("not a token")


@pytest.mark.parametrize("key", [b"", bytes(16), bytes(31), bytes(33), b"A" * 44])
def test_cipher_refuses_keys_that_are_not_32_bytes(key: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        FieldCipher(key)


def test_cipher_refuses_a_base64_text_key() -> None:
    with pytest.raises(ValueError):
        FieldCipher(base64.b64encode(KEY).decode())  # type: ignore[arg-type]


@pytest.mark.parametrize("key_id", ["", "a.b", "x" * 33, "ключ", "a b"])
def test_cipher_refuses_bad_key_ids(key_id: str) -> None:
    with pytest.raises(ValueError, match="key_id"):
        FieldCipher(KEY, key_id=key_id)


def test_reprs_do_not_show_keys() -> None:
    assert FieldCipher(KEY, key_id="k2").key_id == "k2"
    assert KEY.hex() not in repr(FieldCipher(KEY)) and "k1" in repr(FieldCipher(KEY))
    assert KEY.hex() not in repr(BlindIndex(KEY))


# -- BlindIndex ------------------------------------------------------------------


def test_blind_index_is_full_hmac_sha256_hex() -> None:
    digest = BlindIndex(KEY).digest("phone", NUMBER)
    expected = hmac.new(KEY, b"phone\x00" + NUMBER.encode(), hashlib.sha256).hexdigest()
    assert digest == expected
    assert re.fullmatch(r"[0-9a-f]{64}", digest)


def test_blind_index_is_stable_across_instances() -> None:
    assert BlindIndex(KEY).digest("phone", NUMBER) == BlindIndex(KEY).digest("phone", NUMBER)
    assert BlindIndex(KEY).digest("borrower", "b-1") == BlindIndex(bytes(KEY)).digest(
        "borrower", "b-1"
    )


def test_blind_index_separates_kinds_keys_and_values() -> None:
    index = BlindIndex(KEY)
    digests = {
        index.digest("phone", NUMBER),
        index.digest("borrower", NUMBER),
        index.digest("phone", NUMBER + " "),
        index.digest("phone", "+8613812345679"),
        BlindIndex(OTHER_KEY).digest("phone", NUMBER),
        # the separator keeps ("ab", "c") and ("a", "bc") apart
        index.digest("ab", "c"),
        index.digest("a", "bc"),
    }
    assert len(digests) == 7
    assert NUMBER not in "".join(digests)


@pytest.mark.parametrize("kind", ["", "pho\x00ne"])
def test_blind_index_refuses_ambiguous_kinds(kind: str) -> None:
    with pytest.raises(ValueError, match="kind"):
        BlindIndex(KEY).digest(kind, NUMBER)


def test_blind_index_refuses_short_keys() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        BlindIndex(bytes(16))


# -- constant_time_equals --------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ("abc", "abc", True),
        ("abc", "abd", False),
        ("abc", "abcd", False),
        (b"abc", "abc", True),
        ("abc", b"abc", True),
        (b"\x00\xff", b"\x00\xff", True),
        ("密钥", "密钥", True),  # non-ASCII text is compared as UTF-8
        ("密钥", "密码", False),
        ("", "", True),
    ],
)
def test_constant_time_equals(a: str | bytes, b: str | bytes, equal: bool) -> None:
    assert constant_time_equals(a, b) is equal
