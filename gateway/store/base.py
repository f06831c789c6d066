"""The store port. Backends (gateway/store/sqlite.py, gateway/store/redis_store.py;
gateway/store/factory.py picks one) implement :class:`Store` and pass the same
contract tests (tests/contract/)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from gateway.models import ApiKey, Client, Message, Status
from gateway.store.delivery import DeliveryStore
from gateway.store.review import ReviewStore


class ClaimState(enum.Enum):
    CLAIMED = "claimed"  # the caller owns the key and must finish or release it
    IN_FLIGHT = "in_flight"  # another request holds it: wait and ask again
    DONE = "done"  # a final answer is stored: replay it (if the body matches)


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    state: ClaimState
    request_hash: str | None = None
    status_code: int | None = None
    response: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """The final answer stored under (client, key) with the accepted message."""

    key: str
    request_hash: str
    status_code: int
    response: dict[str, Any]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class QueueItem:
    message_id: str
    status: Status  # queued / scheduled: ready to send; sending: an attempt was interrupted
    attempts: int


@dataclass(frozen=True, slots=True)
class BorrowerErasure:
    """What :meth:`Store.erase_borrower` did: the messages whose personal fields
    now read as erased, those of them it moved to ``cancelled`` (they had not
    reached a provider), how many stored idempotency answers it scrubbed, and
    whether the write-ahead log was emptied too (False: a reader held it; the
    old pages go at the next checkpoint)."""

    messages: tuple[str, ...]
    cancelled: tuple[str, ...]
    answers: int
    flushed: bool = False


@dataclass(frozen=True, slots=True)
class StoredKey:
    key: ApiKey
    secret_hash: str


@dataclass(frozen=True, slots=True)
class AuditChain:
    """One audit chain (a gateway process, or a CLI process that writes) as the
    registry in the store knows it."""

    instance: str
    kind: str  # "gateway" | "cli"
    host: str
    pid: int
    started_at: datetime
    closed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditDataKey:
    """An audit data key, wrapped under the key-encryption key. ``generation``
    is the rotation key id it belongs to (its own id for a rotation key);
    ``owner`` the blind-index hash of (client, borrower) for a per-borrower
    key. ``wrapped`` is None once the key was destroyed (crypto-shredding)."""

    key_id: str
    generation: str
    owner: str | None
    wrapped: str | None
    created_at: datetime
    destroyed_at: datetime | None = None


class AuditStore(Protocol):
    """What the audit log keeps in the store: the chain registry, copies of the
    signed checkpoints, and the wrapped data keys."""

    async def register_audit_chain(self, chain: AuditChain) -> None:
        """Insert, or mark an instance that starts again as open."""

    async def close_audit_chain(self, instance: str, when: datetime) -> None: ...

    async def list_audit_chains(self) -> Sequence[AuditChain]: ...

    async def add_audit_checkpoint(self, instance: str, seq: int, line: str) -> None:
        """Keep a signed checkpoint line (JSON); adding the same line twice is a no-op."""

    async def list_audit_checkpoints(self) -> Sequence[str]: ...

    async def add_audit_key(self, key: AuditDataKey) -> AuditDataKey:
        """Insert a generation key (no owner); if its id exists, return that one."""

    async def get_audit_key(self, key_id: str) -> AuditDataKey | None: ...

    async def current_audit_generation(self) -> AuditDataKey | None:
        """The newest rotation key (owner None), or None before the first."""

    async def owner_keys(self, generation: str, owners: Sequence[str]) -> dict[str, AuditDataKey]:
        """The live (not destroyed) keys of these owners in that generation, by owner."""

    async def add_owner_keys(self, keys: Sequence[AuditDataKey]) -> dict[str, AuditDataKey]:
        """Insert per-owner keys in one transaction; an owner that already has a
        live key in that generation keeps it. The live key of each owner."""

    async def destroy_owner_keys(self, owner: str, when: datetime) -> list[str]:
        """Forget every key of ``owner`` (all generations); the ids destroyed now."""


class Store(AuditStore, DeliveryStore, ReviewStore, Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StoreUnavailable when the store cannot serve."""

    # clients and keys -------------------------------------------------------
    async def put_client(self, client: Client, *, webhook_secret: str | None, create: bool) -> None:
        """Insert (create=True; KeyError-free ValueError if it exists) or update."""

    async def get_client(self, client_id: str) -> Client | None: ...

    async def list_clients(self) -> Sequence[Client]: ...

    async def add_key(self, key: ApiKey, secret_hash: str) -> None: ...

    async def get_key(self, key_id: str) -> StoredKey | None: ...

    async def list_keys(self) -> Sequence[ApiKey]: ...

    async def revoke_key(self, key_id: str, when: datetime) -> bool: ...

    # acceptance -------------------------------------------------------------
    async def claim_idempotency(
        self, client_id: str, key: str, request_hash: str, now: datetime, lease_seconds: float
    ) -> IdempotencyClaim: ...

    async def release_idempotency(self, client_id: str, key: str) -> None: ...

    async def commit_acceptance(
        self, message: Message, idempotency: IdempotencyRecord | None, due_at: datetime | None
    ) -> None:
        """Message, its first event, its queue entry (when due_at is given) and the
        idempotency record, in one durable transaction."""

    # reading and moving messages ------------------------------------------
    async def get_message(self, message_id: str) -> Message | None: ...

    async def transition(
        self,
        message_id: str,
        new: Status,
        now: datetime,
        *,
        detail: str | None = None,
        expect: frozenset[Status] | None = None,
        due_at: datetime | None = None,
        provider: str | None = None,
        provider_message_id: str | None = None,
    ) -> Message:
        """Move a message along the state machine, record an event, and keep the
        queue entry in step (kept with ``due_at`` for queued/scheduled, dropped
        for every other status). Raises TransitionError when ``expect`` does not
        hold or the move is not allowed; KeyError when there is no such message."""

    # dispatch ---------------------------------------------------------------
    async def claim_due(
        self, now: datetime, limit: int, owner: str, lease_until: datetime
    ) -> Sequence[QueueItem]: ...

    async def begin_attempt(
        self, message_id: str, provider: str, now: datetime, owner: str, lease_until: datetime
    ) -> Message:
        """Record an attempt and move the message to ``sending`` before any
        provider call (invariant 9). One transaction, durable."""

    async def last_attempt_provider(self, message_id: str) -> str | None: ...

    async def queue_depth(self) -> dict[str, int]: ...

    async def oldest_due(self, now: datetime) -> datetime | None:
        """The earliest due time among queued or scheduled messages that are
        due at ``now`` (None when none waits): the queue-age metric."""

    # erasure ----------------------------------------------------------------
    async def erase_borrower(
        self, client_id: str, borrower_hash: str, now: datetime
    ) -> BorrowerErasure:
        """In one durable transaction: seal every message of (client, borrower
        blind-index hash) again with its personal fields erased, move those not
        yet handed to a provider (queued, scheduled, held) to ``cancelled`` with
        detail ``erased``, and erase ``to_masked`` and ``body`` in their stored
        idempotency answers. The old ciphertext must leave the files (SQLite:
        ``secure_delete`` and a WAL checkpoint). Running it again is harmless."""
