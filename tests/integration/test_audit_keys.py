"""The audit key ring on a real SQLite store: data keys wrapped under the KEK,
generations and rotation, per-borrower keys, erasure, and every failure
naming the key id."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest

from config.settings import Settings, key_bytes
from gateway.app import open_store
from gateway.audit import AuditUnavailable
from gateway.audit_read import ERASED, for_message, opened, scan
from gateway.audit_setup import open_audit_writer, open_keyring
from gateway.crypto import (
    BlindIndex,
    FieldCipher,
    SigningKey,
    derive_key,
    signature_valid,
    token_key_id,
)
from gateway.keyring import AuditSecrets, ErasedKey, KeyRing, MissingKey
from gateway.store.base import Store

OWNER = "f" * 64


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    s = open_store(settings)
    await s.open()
    yield s
    await s.close()


@pytest.fixture
def ring(settings: Settings, store: Store) -> KeyRing:
    return open_keyring(settings, store)


def other_secrets() -> AuditSecrets:
    return AuditSecrets.from_master(bytes(range(32)))


async def test_the_first_key_is_made_once_and_stored_wrapped(
    ring: KeyRing, store: Store, settings: Settings
) -> None:
    first = await ring.current()
    assert first.key_id == "a1"
    again = open_keyring(settings, store)  # another process: same key, from the store
    token = first.seal("secret", aad=b"x")
    assert (await again.current()).open(token, aad=b"x") == "secret"
    stored = await store.get_audit_key("a1")
    assert stored is not None and stored.wrapped is not None
    assert stored.wrapped.startswith("v1.kek.") and stored.owner is None


async def test_rotation_keeps_old_keys_readable(ring: KeyRing, settings: Settings) -> None:
    old = await ring.current()
    token = old.seal("before", aad=b"r")
    assert await ring.rotate() == "a2"
    assert await ring.rotate() == "a3"
    fresh = open_keyring(settings, ring._store)  # type: ignore[attr-defined]
    assert (await fresh.current()).key_id == "a3"
    assert (await fresh.cipher(token_key_id(token))).open(token, aad=b"r") == "before"


async def test_owner_keys_per_generation(ring: KeyRing) -> None:
    a = await ring.for_owner(OWNER)
    assert a.key_id.startswith("a1-") and len(a.key_id) == 19
    assert (await ring.for_owner(OWNER)).key_id == a.key_id
    assert (await ring.for_owner("e" * 64)).key_id != a.key_id
    await ring.rotate()
    b = await ring.for_owner(OWNER)
    assert b.key_id.startswith("a2-")
    assert (await ring.cipher(a.key_id)).key_id == a.key_id  # the old one is kept


async def test_unwrapped_borrower_keys_are_bounded(
    ring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One key per borrower: the ring keeps only the most recently used open,
    and a dropped one is unwrapped again from the store when it is needed."""
    monkeypatch.setattr("gateway.keyring._OWNER_CACHE_MAX", 3)
    keys = [await ring.for_owner(f"{n:x}" * 64) for n in range(5)]
    assert repr(ring) == "KeyRing(5 keys open)"  # legacy + generation + 3 borrowers
    first = await ring.cipher(keys[0].key_id)  # dropped, read back from the store
    assert first.key_id == keys[0].key_id
    assert first.open(keys[0].seal("x")) == "x"
    assert repr(ring) == "KeyRing(5 keys open)"


async def test_erasure_destroys_every_key_of_an_owner(ring: KeyRing, store: Store) -> None:
    a = await ring.for_owner(OWNER)
    await ring.rotate()
    b = await ring.for_owner(OWNER)
    kept = await ring.for_owner("e" * 64)
    assert sorted(await ring.erase(OWNER)) == sorted([a.key_id, b.key_id])
    for key_id in (a.key_id, b.key_id):
        with pytest.raises(ErasedKey, match=f"audit key {key_id} was erased"):
            await ring.cipher(key_id)
        stored = await store.get_audit_key(key_id)
        assert stored is not None and stored.wrapped is None and stored.destroyed_at
    assert (await ring.cipher(kept.key_id)).key_id == kept.key_id
    assert await ring.erase(OWNER) == []
    c = await ring.for_owner(OWNER)  # new records after the erasure get a new key
    assert c.key_id not in (a.key_id, b.key_id)


async def test_erased_key_bytes_leave_the_database_files(
    ring: KeyRing, store: Store, settings: Settings
) -> None:
    await ring.for_owner(OWNER)
    stored = (await store.owner_keys("a1", [OWNER]))[OWNER]
    assert stored.wrapped is not None
    body = stored.wrapped.encode()
    await ring.erase(OWNER)
    for path in settings.store.path.parent.glob("lendsms.db*"):
        assert body not in path.read_bytes(), path.name


async def test_a_missing_key_is_named(ring: KeyRing, settings: Settings) -> None:
    await ring.current()
    owner_key = await ring.for_owner(OWNER)
    with sqlite3.connect(settings.store.path) as db:
        db.execute("DELETE FROM audit_keys WHERE key_id=?", (owner_key.key_id,))
    db.close()
    fresh = open_keyring(settings, ring._store)  # type: ignore[attr-defined]
    with pytest.raises(MissingKey, match=f"audit key {owner_key.key_id} is not in the key ring"):
        await fresh.cipher(owner_key.key_id)
    with pytest.raises(MissingKey, match="audit key a9 is not"):
        await fresh.cipher("a9")


async def test_another_kek_cannot_unwrap_and_says_which_key(ring: KeyRing, store: Store) -> None:
    await ring.current()
    wrong = KeyRing(store, other_secrets())
    with pytest.raises(MissingKey, match=r"audit key a1 cannot be unwrapped with this keys\.audit"):
        await wrong.cipher("a1")
    with pytest.raises(AuditUnavailable, match="audit key a1 cannot be unwrapped"):
        await wrong.current()


async def test_a_wrapped_key_cannot_be_moved_to_another_id(
    ring: KeyRing, settings: Settings
) -> None:
    await ring.current()
    await ring.rotate()
    with sqlite3.connect(settings.store.path) as db:
        wrapped = db.execute("SELECT wrapped FROM audit_keys WHERE key_id='a1'").fetchone()[0]
        db.execute("UPDATE audit_keys SET wrapped=? WHERE key_id='a2'", (wrapped,))
    db.close()
    fresh = open_keyring(settings, ring._store)  # type: ignore[attr-defined]
    with pytest.raises(MissingKey, match="audit key a2 cannot be unwrapped"):
        await fresh.cipher("a2")


async def test_an_unavailable_store_fails_closed(ring: KeyRing, store: Store) -> None:
    await store.close()
    with pytest.raises(AuditUnavailable, match="key ring"):
        await ring.current()
    with pytest.raises(AuditUnavailable, match="key ring"):
        await ring.for_owner(OWNER)


async def test_records_decrypt_across_a_rotation_and_an_erasure(
    settings: Settings, store: Store
) -> None:
    """A writer before and after ``rotate``: each record names its key id, the
    old ones open, an erased owner's fields read as erased."""
    ring = open_keyring(settings, store)
    first = open_audit_writer(settings, store, "gw-1")
    await first.start()
    await first.append("accepted", message_id="m1", sealed={"to": "+1"}, owner=OWNER)
    await first.append("accepted", message_id="m2", sealed={"to": "+2"}, owner="e" * 64)
    await first.append("key_created", message_id="m3", sealed={"note": "n"})
    await first.close()
    await ring.rotate()
    second = open_audit_writer(settings, store, "gw-2")
    await second.start()
    await second.append("accepted", message_id="m4", sealed={"to": "+4"}, owner=OWNER)
    await second.close()

    def record(mid: str) -> dict[str, Any]:
        [found] = scan(settings.audit.dir, for_message(mid)).records
        return found

    ids = {mid: token_key_id(record(mid)["sealed"]) for mid in ("m1", "m3", "m4")}
    assert ids["m1"].startswith("a1-") and ids["m3"] == "a1" and ids["m4"].startswith("a2-")
    reader = open_keyring(settings, store)
    assert (await opened(record("m1"), reader))["data"] == {"to": "+1"}
    assert (await opened(record("m4"), reader))["data"] == {"to": "+4"}
    await reader.erase(OWNER)
    assert (await opened(record("m1"), reader))["data"] == ERASED
    assert (await opened(record("m4"), reader))["data"] == ERASED
    assert (await opened(record("m2"), reader))["data"] == {"to": "+2"}
    assert (await opened(record("m3"), reader))["data"] == {"note": "n"}


async def test_an_erasure_elsewhere_reaches_a_writer_after_the_ttl(
    ring: KeyRing, settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await ring.for_owner(OWNER)
    other = open_keyring(settings, store)  # e.g. `lendsms audit erase` in another process
    await other.erase(OWNER)
    assert (await ring.for_owner(OWNER)).key_id == first.key_id  # within the ttl
    monkeypatch.setattr("gateway.keyring.OWNER_KEY_TTL", 0.0)
    ring._owned.clear()  # type: ignore[attr-defined]
    assert (await ring.for_owner(OWNER)).key_id != first.key_id


async def test_records_of_the_first_release_stay_readable(
    ring: KeyRing, settings: Settings
) -> None:
    """Before the key ring, records were sealed under key "k1", derived from the master."""
    legacy = FieldCipher(derive_key(key_bytes(settings.keys.audit), "lendsms audit seal v1"), "k1")
    token = legacy.seal("old", aad=b"a")
    assert (await ring.cipher(token_key_id(token))).open(token, aad=b"a") == "old"


# -- the primitives under the key ring (gateway.crypto) --------------------------


def test_derived_keys_are_independent_and_need_a_32_byte_master() -> None:
    master = bytes(range(32))
    a, b = derive_key(master, "purpose a"), derive_key(master, "purpose b")
    assert len(a) == len(b) == 32 and a != b and derive_key(master, "purpose a") == a
    with pytest.raises(ValueError, match="32 bytes"):
        derive_key(b"short", "x")


@pytest.mark.parametrize(
    "signature",
    ["", "!!!not-base64!!!", "AAAA", None],
    ids=["empty", "not base64", "too short", "other key"],
)
def test_signatures_fail_closed(signature: str | None) -> None:
    key = SigningKey(bytes(range(32)))
    good = key.sign(b"head")
    assert signature_valid(key.public, b"head", good)
    assert not signature_valid(key.public, b"head!", good)
    other = SigningKey(bytes(32)).sign(b"head")
    assert not signature_valid(key.public, b"head", other if signature is None else signature)
    assert not signature_valid(b"\x00" * 5, b"head", good)  # not a public key
    assert "public=" in repr(key) and str(bytes(range(32))) not in repr(key)


def test_blind_index_helpers_match_the_store_hashes() -> None:
    index = BlindIndex(bytes(range(32)))
    assert index.phone("+8613812345678") == index.digest("phone", "+8613812345678")
    assert index.borrower("acme", "B-1") == index.digest("borrower", "acme\x00B-1")
    assert index.borrower("acme", "B-1") != index.borrower("acme-", "B-1")


async def test_concurrent_first_uses_share_lookups_and_one_commit(
    ring: KeyRing, store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    owners = [f"{i:064x}" for i in range(300)]
    await ring.current()
    calls: list[int] = []
    real = store.add_owner_keys

    async def counting(keys: Any) -> Any:
        calls.append(len(keys))
        return await real(keys)

    monkeypatch.setattr(store, "add_owner_keys", counting)
    first = await asyncio.gather(*(ring.for_owner(o) for o in owners + owners))
    assert len({c.key_id for c in first}) == 300 and sum(calls) == 300 and len(calls) <= 3
    again = open_keyring(settings, store)  # another process: the same keys, from the store
    assert [(await again.for_owner(o)).key_id for o in owners] == [c.key_id for c in first[:300]]


async def test_a_cancelled_waiter_does_not_fail_the_others(ring: KeyRing) -> None:
    await ring.current()
    one = asyncio.ensure_future(ring.for_owner(OWNER))
    two = asyncio.ensure_future(ring.for_owner(OWNER))
    await asyncio.sleep(0)
    one.cancel()
    assert (await two).key_id.startswith("a1-")
