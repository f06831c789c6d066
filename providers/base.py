"""The provider protocol: what the dispatcher needs from an SMS carrier adapter.

Every adapter maps its own answers into one small fixed set of outcomes
(:class:`Outcome`), so the dispatcher's retry and failover logic never has to
know a provider's error codes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


class Outcome(enum.StrEnum):
    """What the dispatcher should do after one provider call."""

    SENT = "sent"  # the provider accepted the message
    RETRY = "retry"  # transient: try the same provider again after a backoff
    RETRY_LATER = "retry_later"  # the recipient's window at the provider is full: defer
    SWITCH_PROVIDER = "switch_provider"  # this provider cannot take it now: fail over
    PERMANENT = "permanent"  # no provider will ever take it: the message fails


class DeliveryState(enum.StrEnum):
    """What a provider's status query says about one message."""

    NOT_FOUND = "not_found"  # the provider never got it: safe to send again
    ACCEPTED = "accepted"  # the provider has it (sent, delivery unknown yet)
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"


@dataclass(frozen=True, slots=True)
class OutboundSms:
    """One SMS as handed to a provider. ``to`` is E.164, ``body`` the final text. A
    template message also names the lendsms ``template``, this provider's
    ``template_code`` and the ``params`` in the order their placeholders appear."""

    message_id: str
    to: str
    body: str
    purpose: str
    client_id: str
    template: str | None = None
    template_code: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print a number or a body
        return f"OutboundSms(message_id={self.message_id!r}, purpose={self.purpose!r})"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    provider_message_id: str | None = None
    code: str | None = None  # the provider's own error or status code, for events
    retry_after: float | None = None  # seconds, when the provider says so


@dataclass(frozen=True, slots=True)
class StatusResult:
    state: DeliveryState
    provider_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    free_text: bool = True  # False: template messages only (Alibaba, Tencent)
    max_segments: int = 10
    status_query: bool = False  # True: query_status() can resolve an ambiguous attempt
    countries: frozenset[str] | None = None  # ISO regions it can reach; None: any


class ProviderError(Exception):
    """A provider call whose outcome is unknown (timeout, connection reset, crash).

    The message may or may not have reached the provider: the dispatcher must
    not resend blindly (DESIGN.md invariant 9).
    """


@runtime_checkable
class Provider(Protocol):
    name: str
    capabilities: Capabilities

    async def start(self) -> None:
        """Open sessions, files, connections."""

    async def close(self) -> None:
        """Release what start() opened."""

    async def send(self, sms: OutboundSms) -> SendResult:
        """Hand one SMS over. Raises ProviderError when the outcome is unknown."""

    async def query_status(
        self, message_id: str, provider_message_id: str | None
    ) -> StatusResult | None:
        """Ask the provider what became of a message; ``None`` when it cannot say."""


class ProviderFactory(Protocol):
    """What an entry point in group ``lendsms.providers`` must resolve to."""

    def __call__(self, name: str, options: Mapping[str, Any], *, base_dir: Path) -> Provider: ...


class ProviderConfigError(ValueError):
    """Bad ``[providers.NAME]`` settings; the message names the key, never a secret."""


@runtime_checkable
class DetailedStatusQuery(Protocol):
    """Optional: a provider whose status query needs more than the ids (Alibaba Cloud
    asks by phone number and send date, Tencent Cloud by phone number and time range).
    The dispatcher prefers it over :meth:`Provider.query_status` when present."""

    async def query_sms_status(
        self, sms: OutboundSms, provider_message_id: str | None, attempted_at: datetime
    ) -> StatusResult | None:
        """Like ``query_status``; ``attempted_at`` is when the attempt was recorded."""


# -- provider callbacks (delivery receipts, inbound replies) -----------------------------


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """A provider's push as the gateway received it. ``url`` is the full URL the
    provider requested (what Twilio signs); ``headers`` have lower-case names."""

    url: str
    method: str
    headers: Mapping[str, str]
    query: Sequence[tuple[str, str]]
    body: bytes
    remote: str | None = None

    def __repr__(self) -> str:  # the body and the query may hold numbers or tokens
        return f"CallbackRequest(method={self.method!r}, bytes={len(self.body)})"


@dataclass(frozen=True, slots=True)
class Receipt:
    """One delivery report. ``state`` ACCEPTED means an intermediate status (sent to the
    carrier, queued); ``message_id`` is the lendsms id when the provider echoes it."""

    provider_message_id: str | None
    state: DeliveryState
    code: str | None = None
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class InboundSms:
    """A reply from a handset. ``sender`` is E.164 where the provider says enough."""

    sender: str
    text: str
    recipient: str | None = None
    provider_message_id: str | None = None
    received_at: datetime | None = None

    def __repr__(self) -> str:  # never a number or a text
        return f"InboundSms(provider_message_id={self.provider_message_id!r})"


@dataclass(frozen=True, slots=True)
class CallbackReply:
    """What the provider expects back from a push it made."""

    body: bytes = b""
    content_type: str = "text/plain"
    status: int = 200


class CallbackRejected(Exception):
    """The push failed its signature, token or source-network check (answer 403)."""


class CallbackMalformed(ValueError):
    """The push is not in the provider's documented shape (answer 400)."""


@runtime_checkable
class CallbackProvider(Protocol):
    """Optional: a provider that pushes delivery receipts and inbound replies. Each
    method authenticates the push first and raises CallbackRejected when it fails."""

    def parse_receipts(self, request: CallbackRequest) -> tuple[list[Receipt], CallbackReply]:
        """The receipts in one push, and the reply the provider expects."""

    def parse_inbound(self, request: CallbackRequest) -> tuple[list[InboundSms], CallbackReply]:
        """The replies in one push, and the reply the provider expects."""
