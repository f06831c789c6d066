"""What the audit writer needs from outside, as small protocols, and the one
error that makes a caller fail closed."""

from __future__ import annotations

from typing import Protocol

from gateway.crypto import FieldCipher


class AuditUnavailable(Exception):
    """The audit log cannot durably record now; the caller must fail closed (503)."""


class HeadTracker(Protocol):
    """Follows a writer's durable head: the registry and the signed checkpoints
    (:class:`gateway.audit_tracker.ChainTracker`)."""

    async def register(self) -> None:
        """Called when a segment was opened, before any append; may raise
        :class:`AuditUnavailable`."""

    def begin(self, seq: int, mac: str) -> None: ...

    def advanced(self, seq: int, mac: str) -> None: ...

    async def finish(self) -> None:
        """Called once the writer closed; never raises."""


class SealingKeys(Protocol):
    """The data keys records are sealed under (:class:`gateway.keyring.KeyRing`).
    Both raise :class:`AuditUnavailable` when no key can be had."""

    async def current(self) -> FieldCipher:
        """The key of the current generation, for records without an owner."""

    async def for_owner(self, owner: str) -> FieldCipher:
        """The per-borrower key of ``owner`` (a blind-index hash), made on first use."""
