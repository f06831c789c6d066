"""The store port for what happens after the hand-off: provider delivery receipts,
per-provider attempt counts (failover), the client's webhook secret, and the
durable queue of client status webhooks (:class:`WebhookJob`).

Webhook jobs are leased like the send queue: :meth:`DeliveryStore.claim_webhooks`
hands a due job to one owner until ``lease_until`` (the caller's clock); a job
whose owner died is claimable again once that has passed. The URL and the body
(which carries the client's ``reference`` and the status detail) are sealed with
the field cipher in both backends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.models import Message


@dataclass(frozen=True, slots=True)
class WebhookJob:
    """One status webhook to POST: ``body`` exactly as it is sent (and signed);
    ``attempts`` made so far; not before ``due``."""

    id: str
    message_id: str
    client_id: str
    url: str
    body: bytes
    attempts: int
    due: datetime


@dataclass(frozen=True, slots=True)
class WebhookBacklog:
    """Webhook jobs in the store: all of them (waiting or leased), those claimable
    at ``now`` (due, and not leased or the lease has passed), and since when the
    oldest of those has been claimable (its due time, or the end of the lease it
    outlived; None when none is)."""

    pending: int
    due: int
    oldest_due: datetime | None = None


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

    async def enqueue_webhook(self, job: WebhookJob) -> None:
        """Keep ``job`` (durably, URL and body sealed) until it is finished."""

    async def claim_webhooks(
        self, now: datetime, limit: int, owner: str, lease_until: datetime
    ) -> Sequence[WebhookJob]:
        """Up to ``limit`` jobs due at ``now`` and not leased (or whose lease has
        passed), oldest due first, leased to ``owner`` until ``lease_until`` — in
        one atomic step, so two owners never hold the same job."""

    async def finish_webhook(self, job_id: str) -> None:
        """Delivered, refused or given up: the job leaves the store."""

    async def retry_webhook(self, job_id: str, owner: str, due: datetime, attempts: int) -> bool:
        """Release ``owner``'s lease on the job and make it due again at ``due``
        with ``attempts`` made; False (nothing changed) when ``owner`` no longer
        holds it (its lease passed and another owner claimed it) or it is gone."""

    async def webhook_backlog(self, now: datetime) -> WebhookBacklog:
        """How many jobs are kept, how many are claimable at ``now``, and since when
        the oldest claimable one has been (read at scrape time by the metrics)."""
