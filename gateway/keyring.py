"""Audit keys.

One master secret, ``[keys] audit`` in the settings (a file or an environment
variable, like every secret), is the key-encryption key (KEK). Keys for
separate purposes are derived from it (:class:`AuditSecrets`): the chain key
(the records' HMACs), the Ed25519 checkpoint key, and the wrapping key.

Records are sealed under *data keys*: 32 random bytes each, stored in the
store only wrapped (AES-256-GCM under the wrapping key, the key's id and
owner bound as associated data), named by a key id that every sealed token
carries (``v1.<key_id>.…``), so keys rotate without re-encrypting history:

- a *generation* key (``a1``, ``a2``, …) for records without an owner;
  ``lendsms keys rotate-audit`` starts the next generation, which writers
  use from their next start (a ring keeps the generation it first loaded);
- a *per-borrower* key (``a2-<16 hex>``) for each (client, borrower) and
  generation, owned by the borrower's blind-index hash.
  ``lendsms audit erase`` destroys every key of one owner (crypto-shredding):
  the chain and its macs stay intact, the sealed fields read as erased.

A record whose key id is not in the ring fails with :class:`MissingKey`
naming the key id; one whose key was destroyed with :class:`ErasedKey`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.audit_ports import AuditUnavailable
from gateway.crypto import DecryptionError, FieldCipher, SigningKey, derive_key
from gateway.errors import StoreUnavailable
from gateway.store.base import AuditDataKey, AuditStore

log = logging.getLogger("gateway.audit")

FIRST_GENERATION = "a1"
LEGACY = "k1"
OWNER_KEY_TTL = 5.0  # seconds a writer reuses a borrower's key without asking the store
_OWNER_CACHE_MAX = 10_000
_WRAP_ID = "kek"


class MissingKey(Exception):
    """A record's data key cannot be had; the message names the key id."""

    def __init__(self, key_id: str, why: str = "is not in the key ring") -> None:
        super().__init__(f"audit key {key_id} {why}")
        self.key_id = key_id


class ErasedKey(MissingKey):
    """The key was destroyed on purpose (``audit erase``)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(key_id, "was erased")


@dataclass(frozen=True, slots=True)
class AuditSecrets:
    """The keys derived from the audit master secret (the KEK)."""

    chain_key: bytes
    signer: SigningKey
    wrap_key: bytes
    legacy_seal: bytes  # key "k1" of records written before the key ring existed

    @classmethod
    def from_master(cls, master: bytes) -> AuditSecrets:
        return cls(
            chain_key=derive_key(master, "lendsms audit chain v1"),
            signer=SigningKey(derive_key(master, "lendsms audit checkpoint v1")),
            wrap_key=derive_key(master, "lendsms audit wrap v1"),
            legacy_seal=derive_key(master, "lendsms audit seal v1"),
        )

    def __repr__(self) -> str:
        return f"AuditSecrets({self.signer!r})"


@contextlib.contextmanager
def _fail_closed() -> Iterator[None]:
    """A writer that cannot have its key cannot record: AuditUnavailable."""
    try:
        yield
    except StoreUnavailable as exc:
        raise AuditUnavailable("the audit key ring in the store is unavailable") from exc
    except MissingKey as exc:
        raise AuditUnavailable(str(exc)) from exc


def _binding(key_id: str, generation: str, owner: str | None) -> bytes:
    return f"audit-key\x00{key_id}\x00{generation}\x00{owner or ''}".encode()


class KeyRing:
    """The audit data keys in the store, wrapped under the KEK."""

    def __init__(self, store: AuditStore, secrets_: AuditSecrets) -> None:
        self._store = store
        self._wrapper = FieldCipher(secrets_.wrap_key, _WRAP_ID)
        # unwrapped generation keys, by key id; "k1" sealed the records of the first release
        self._open: dict[str, FieldCipher] = {LEGACY: FieldCipher(secrets_.legacy_seal, LEGACY)}
        # unwrapped per-borrower keys, least recently used first: one per borrower
        # would grow without bound, so the oldest are dropped (and unwrapped again)
        self._open_owned: OrderedDict[str, FieldCipher] = OrderedDict()
        self._generation: str | None = None  # fixed from the first current()
        self._owned: dict[str, tuple[float, FieldCipher]] = {}  # owner -> (expiry, key)
        self._waiting: dict[str, asyncio.Future[FieldCipher]] = {}  # owners to look up
        self._resolver: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"KeyRing({len(self._open) + len(self._open_owned)} keys open)"

    # -- writing (the SealingKeys port) -----------------------------------------

    async def current(self) -> FieldCipher:
        with _fail_closed():
            stored = await self._store.current_audit_generation()
            if stored is None:
                stored = await self._store.add_audit_key(self._new(FIRST_GENERATION, None))
            cipher = self._unwrap(stored)
        self._generation = stored.key_id
        return cipher

    async def for_owner(self, owner: str) -> FieldCipher:
        """The owner's key of this ring's generation (made on first use). Kept
        for :data:`OWNER_KEY_TTL` seconds, so an erasure by another process
        takes effect here within that time (at once in this one). Concurrent
        requests share one store lookup, and the keys they make one commit."""
        cached = self._owned.get(owner)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        if self._generation is None:
            await self.current()
        loop = asyncio.get_running_loop()
        waiting = self._waiting.get(owner)
        if waiting is None:
            waiting = self._waiting[owner] = loop.create_future()
            if self._resolver is None:
                self._resolver = loop.create_task(self._resolve())
        return await asyncio.shield(waiting)  # one waiter's cancel must not fail the others

    async def _resolve(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                try:
                    keys = await self._fetch(list(batch))
                except Exception as exc:  # every waiter fails closed, never hangs
                    why = exc if isinstance(exc, AuditUnavailable) else type(exc).__name__
                    log.error("audit: borrower key lookup failed (%s)", why)
                    for waiting in batch.values():
                        if not waiting.done():
                            waiting.set_exception(
                                AuditUnavailable(f"audit keys unavailable ({why})")
                            )
                    continue
                expiry = time.monotonic() + OWNER_KEY_TTL
                for owner, waiting in batch.items():
                    if len(self._owned) >= _OWNER_CACHE_MAX:
                        self._owned.pop(next(iter(self._owned)))
                    self._owned[owner] = (expiry, keys[owner])
                    if not waiting.done():
                        waiting.set_result(keys[owner])
        finally:
            self._resolver = None

    async def _fetch(self, owners: list[str]) -> dict[str, FieldCipher]:
        generation = self._generation
        assert generation is not None  # noqa: S101 - for_owner loaded it
        with _fail_closed():
            found = await self._store.owner_keys(generation, owners)
            missing = [o for o in owners if o not in found]  # first use, or erased
            if missing:
                made = [self._new(generation, o, f"{generation}-{secrets.token_hex(8)}")
                        for o in missing]  # fmt: skip
                found.update(await self._store.add_owner_keys(made))
            return {owner: self._unwrap(found[owner]) for owner in owners}

    # -- reading and managing ---------------------------------------------------

    async def cipher(self, key_id: str) -> FieldCipher:
        """The key a token names; :class:`MissingKey` / :class:`ErasedKey`."""
        if (cipher := self._opened(key_id)) is not None:
            return cipher
        stored = await self._store.get_audit_key(key_id)
        if stored is None:
            raise MissingKey(key_id)
        return self._unwrap(stored)

    async def rotate(self) -> str:
        """Start the next generation; the new key id."""
        current = await self._store.current_audit_generation()
        number = int(current.key_id[1:]) + 1 if current is not None else 1
        made = await self._store.add_audit_key(self._new(f"a{number}", None))
        self._generation = made.key_id
        self._owned.clear()  # owners get keys of the new generation
        return made.key_id

    async def erase(self, owner: str) -> list[str]:
        """Destroy every key of ``owner``; the key ids destroyed."""
        destroyed = await self._store.destroy_owner_keys(owner, datetime.now(UTC))
        self._owned.pop(owner, None)
        for key_id in destroyed:
            self._forget(key_id)
        return destroyed

    # -- wrapping ---------------------------------------------------------------

    def _new(self, generation: str, owner: str | None, key_id: str | None = None) -> AuditDataKey:
        key_id = key_id or generation
        raw = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
        wrapped = self._wrapper.seal(raw, aad=_binding(key_id, generation, owner))
        return AuditDataKey(key_id, generation, owner, wrapped, datetime.now(UTC))

    def _unwrap(self, stored: AuditDataKey) -> FieldCipher:
        if stored.wrapped is None:
            self._forget(stored.key_id)
            raise ErasedKey(stored.key_id)
        if (opened := self._opened(stored.key_id)) is not None:
            return opened
        aad = _binding(stored.key_id, stored.generation, stored.owner)
        try:
            raw = base64.b64decode(self._wrapper.open(stored.wrapped, aad=aad), validate=True)
        except (DecryptionError, binascii.Error, ValueError):
            raise MissingKey(stored.key_id, "cannot be unwrapped with this keys.audit") from None
        cipher = FieldCipher(raw, stored.key_id)
        if stored.owner is None:
            self._open[stored.key_id] = cipher
        else:
            self._open_owned[stored.key_id] = cipher
            if len(self._open_owned) > _OWNER_CACHE_MAX:
                self._open_owned.popitem(last=False)
        return cipher

    def _opened(self, key_id: str) -> FieldCipher | None:
        cipher = self._open.get(key_id)
        if cipher is None and (cipher := self._open_owned.get(key_id)) is not None:
            self._open_owned.move_to_end(key_id)
        return cipher

    def _forget(self, key_id: str) -> None:
        self._open.pop(key_id, None)
        self._open_owned.pop(key_id, None)
