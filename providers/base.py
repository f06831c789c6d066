"""The provider protocol: what the dispatcher needs from an SMS carrier adapter.

Every adapter maps its own answers into one small fixed set of outcomes
(:class:`Outcome`), so the dispatcher's retry and failover logic never has to
know a provider's error codes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    """One SMS as handed to a provider. ``to`` is E.164, ``body`` the final text."""

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
