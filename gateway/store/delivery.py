"""The store port for what happens after the hand-off: provider delivery receipts,
per-provider attempt counts (failover), and the client's webhook secret."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from gateway.models import Message


class DeliveryStore(Protocol):
    async def find_message_by_provider_id(
        self, provider: str, provider_message_id: str
    ) -> Message | None:
        """The message that ``provider`` accepted under ``provider_message_id``."""

    async def record_receipt(
        self,
        provider: str,
        provider_message_id: str | None,
        message_id: str | None,
        state: str,
        code: str | None,
        at: datetime,
    ) -> bool:
        """Keep one delivery report; False when the same report was kept before."""

    async def attempts_by_provider(self, message_id: str) -> Mapping[str, int]:
        """How many attempts each provider had at the message."""

    async def get_webhook_secret(self, client_id: str) -> str | None:
        """The client's status-webhook secret (decrypted), or None."""
