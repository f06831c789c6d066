"""Domain types: message statuses and their allowed transitions, findings,
decisions, clients and keys. No I/O here."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Status(enum.StrEnum):
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    HELD = "held"
    BLOCKED = "blocked"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


TERMINAL: frozenset[Status] = frozenset(
    {
        Status.BLOCKED,
        Status.DELIVERED,
        Status.UNDELIVERED,
        Status.FAILED,
        Status.REJECTED,
        Status.EXPIRED,
        Status.CANCELLED,
    }
)

# The one place where the message state machine is written down. A status
# may only move to the statuses listed for it; the store refuses anything else.
TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset(
        {Status.SENDING, Status.SCHEDULED, Status.CANCELLED, Status.EXPIRED, Status.FAILED}
    ),
    Status.SCHEDULED: frozenset(
        {Status.QUEUED, Status.SENDING, Status.CANCELLED, Status.EXPIRED, Status.FAILED}
    ),
    Status.HELD: frozenset({Status.QUEUED, Status.SCHEDULED, Status.REJECTED, Status.CANCELLED}),
    # sending -> queued/scheduled: a retry after a clean provider refusal, or a
    # re-check at hand-off that moved the message back to its window.
    Status.SENDING: frozenset(
        {
            Status.SENT,
            Status.DELIVERED,
            Status.UNDELIVERED,
            Status.FAILED,
            Status.QUEUED,
            Status.SCHEDULED,
            Status.EXPIRED,
            Status.CANCELLED,
        }
    ),
    Status.SENT: frozenset({Status.DELIVERED, Status.UNDELIVERED}),
    Status.BLOCKED: frozenset(),
    Status.DELIVERED: frozenset(),
    Status.UNDELIVERED: frozenset(),
    Status.FAILED: frozenset(),
    Status.REJECTED: frozenset(),
    Status.EXPIRED: frozenset(),
    Status.CANCELLED: frozenset(),
}

CANCELLABLE: frozenset[Status] = frozenset({Status.QUEUED, Status.SCHEDULED, Status.HELD})

# What a personal field of a message reads after ``lendsms audit erase``.
ERASED = "[erased]"


def can_transition(old: Status, new: Status) -> bool:
    return new in TRANSITIONS[old]


class Action(enum.StrEnum):
    """What a finding asks for. Order matters: block beats hold beats the rest."""

    MASK = "mask"
    APPEND = "append"
    NOTE = "note"
    HOLD = "hold"
    BLOCK = "block"


class Decision(enum.StrEnum):
    QUEUE = "queue"
    SCHEDULE = "schedule"
    HOLD = "hold"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # "pii" | "content" | "policy"
    rule: str
    category: str
    action: Action
    start: int | None = None  # code points into the submitted text
    end: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rule": self.rule,
            "category": self.category,
            "action": str(self.action),
            "start": self.start,
            "end": self.end,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Finding:
        return cls(
            kind=data["kind"],
            rule=data["rule"],
            category=data["category"],
            action=Action(data["action"]),
            start=data.get("start"),
            end=data.get("end"),
        )


@dataclass(frozen=True, slots=True)
class Client:
    id: str
    policy: str
    signatures: tuple[str, ...] = ()
    rate: float | None = None  # messages per second, None = unlimited
    link_domains: tuple[str, ...] = ()
    has_webhook_secret: bool = False


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    client_id: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None = None


SCOPES = frozenset({"send", "review", "audit", "admin"})


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    status: Status
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """A stored message. ``to`` and ``text`` are plaintext only in memory;
    the store keeps them encrypted."""

    id: str
    client_id: str
    to: str
    to_masked: str
    region: str
    borrower_id: str
    purpose: str
    recipient_role: str
    text: str  # what the client submitted
    body: str  # what will be sent
    segments: int
    encoding: str
    findings: tuple[Finding, ...]
    status: Status
    created_at: datetime
    updated_at: datetime
    scheduled_at: datetime | None
    expires_at: datetime
    reference: str | None = None
    callback_url: str | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    attempts: int = 0
    events: tuple[Event, ...] = field(default=())
    # a template message: its lendsms template id and placeholder values (sealed at rest)
    template: str | None = None
    params: Mapping[str, str] | None = None

    def __repr__(self) -> str:  # never a number or a body
        return f"Message(id={self.id!r}, status={self.status!r}, purpose={self.purpose!r})"

    @property
    def erased(self) -> bool:
        """Its borrower's data was erased (``to`` is never that when accepted)."""
        return self.to == ERASED
