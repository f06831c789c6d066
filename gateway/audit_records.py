"""What the audit log records about a message's decision: the clear fields
(ids, client, purpose, the decision as ``status``, blind-index hashes for
``audit find``) and the sealed ones (number, borrower id, original and sent
text, findings), sealed under the borrower's own key (its blind-index hash is
the record's owner).

The other events are written where they happen: ``sending``, ``sent``,
``failed``, ``expired``… by the dispatcher; ``cancelled`` by the API;
``key_created`` / ``key_revoked`` / ``audit_key_rotated`` and the audit
commands' own ``audit_revealed``, ``audit_searched``, ``audit_exported``,
``audit_pruned`` and ``audit_erased`` by the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.clock import rfc3339
from gateway.crypto import BlindIndex
from gateway.models import Message


@dataclass(frozen=True, slots=True)
class AuditEntry:
    clear: Mapping[str, str | int | None]
    sealed: Mapping[str, Any]
    owner: str | None


def decision_entry(message: Message, api_key_id: str, index: BlindIndex | None) -> AuditEntry:
    """The ``accepted`` record of one message (its decision is in ``status``)."""
    owner = index.borrower(message.client_id, message.borrower_id) if index else None
    return AuditEntry(
        clear={
            "client": message.client_id,
            "key_id": api_key_id,
            "status": str(message.status),
            "purpose": message.purpose,
            "segments": message.segments,
            "to_hash": index.phone(message.to) if index else None,
            "borrower_hash": owner,
        },
        sealed={
            "to": message.to,
            "borrower_id": message.borrower_id,
            "text": message.text,
            "body": message.body,
            "reference": message.reference,
            "findings": [f.to_json() for f in message.findings],
            "scheduled_at": rfc3339(message.scheduled_at) if message.scheduled_at else None,
        },
        owner=owner,
    )
