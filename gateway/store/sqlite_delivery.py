"""Receipts, attempt counts, webhook secrets and the webhook queue in the embedded
store.

:class:`SqliteDeliveryTables` is mixed into :class:`gateway.store.sqlite.SqliteStore`
and runs on its database thread. A receipt row holds ids, a state and a carrier code:
nothing personal. It also answers the queue-age question of the metrics.

A ``webhooks`` row is one client status webhook still to be POSTed: ids, the
attempts made, when it is due and who holds its lease; the URL and the body are
sealed together (:func:`seal_webhook`, associated data ``wh:<job id>``).
"""

from __future__ import annotations

import logging
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from gateway.crypto import DecryptionError, FieldCipher
from gateway.models import Message
from gateway.store.delivery import WebhookBacklog, WebhookJob

T = TypeVar("T")
log = logging.getLogger("lendsms.store")

DELIVERY_SCHEMA = """
CREATE INDEX IF NOT EXISTS messages_provider_mid ON messages(provider_message_id);
CREATE TABLE IF NOT EXISTS receipts (
    provider TEXT NOT NULL,
    provider_message_id TEXT NOT NULL,
    state TEXT NOT NULL,
    code TEXT NOT NULL,
    message_id TEXT,
    received_at REAL NOT NULL,
    PRIMARY KEY (provider, provider_message_id, state, code)
);
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    sealed TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    due_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks(due_at);
CREATE INDEX IF NOT EXISTS webhooks_message ON webhooks(message_id);
"""


def seal_webhook(cipher: FieldCipher, job: WebhookJob) -> str:
    """The job's URL and body, sealed (the body carries ``reference``/``detail``)."""
    fields = {"url": job.url, "body": job.body.decode("utf-8")}
    return cipher.seal_json(fields, aad=f"wh:{job.id}".encode())


def opened_webhooks(cipher: FieldCipher, rows: Sequence[Sequence[Any]]) -> list[WebhookJob]:
    """Claimed rows ``(id, message id, client id, sealed, attempts, due)`` as jobs.
    One that cannot be opened (sealed under another data key) is left out and
    logged (its id only): it stays leased, comes back after its lease, and never
    holds up the others."""
    jobs = []
    for row in rows:
        try:
            jobs.append(open_webhook(cipher, *row))
        except DecryptionError:
            log.warning("webhook job cannot be opened; left in the store", extra={"job": row[0]})
    return jobs


def open_webhook(
    cipher: FieldCipher,
    job_id: str,
    message_id: str,
    client_id: str,
    sealed: str,
    attempts: int,
    due: float,
) -> WebhookJob:
    fields: dict[str, Any] = cipher.open_json(sealed, aad=f"wh:{job_id}".encode())
    return WebhookJob(
        id=job_id,
        message_id=message_id,
        client_id=client_id,
        url=str(fields["url"]),
        body=str(fields["body"]).encode("utf-8"),
        attempts=attempts,
        due=datetime.fromtimestamp(due, UTC),
    )


class SqliteDeliveryTables(ABC):
    """See :class:`gateway.store.delivery.DeliveryStore`."""

    cipher: FieldCipher  # provided by SqliteStore

    @abstractmethod
    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Provided by SqliteStore: run ``fn`` on the store\'s database thread."""

    @staticmethod
    @abstractmethod
    def _tx(db: sqlite3.Connection, body: Callable[[], T]) -> T:
        """Provided by SqliteStore: ``body`` in one transaction (a savepoint in a group commit)."""

    @abstractmethod
    def _load(self, db: sqlite3.Connection, message_id: str) -> Message | None:
        """Provided by SqliteStore: one message, decrypted."""

    async def find_message_by_provider_id(
        self, provider: str, provider_message_id: str
    ) -> Message | None:
        def op(db: sqlite3.Connection) -> Message | None:
            row = db.execute(
                "SELECT id FROM messages WHERE provider_message_id=? AND provider=?"
                " ORDER BY created_at DESC LIMIT 1",
                (provider_message_id, provider),
            ).fetchone()
            return None if row is None else self._load(db, row[0])

        return await self._run(op)

    async def record_receipt(
        self,
        provider: str,
        provider_message_id: str | None,
        message_id: str | None,
        state: str,
        code: str | None,
        at: datetime,
    ) -> bool:
        key = provider_message_id or f"id:{message_id}"
        cur = await self._run(
            lambda db: db.execute(
                "INSERT OR IGNORE INTO receipts VALUES (?,?,?,?,?,?)",
                (provider, key, state, code or "", message_id, at.timestamp()),
            )
        )
        return bool(cur.rowcount)

    async def attempts_by_provider(self, message_id: str) -> Mapping[str, int]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT provider, COUNT(*) FROM attempts WHERE message_id=? GROUP BY provider",
                (message_id,),
            ).fetchall()
        )
        return {str(name): int(count) for name, count in rows}

    async def get_webhook_secret(self, client_id: str) -> str | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT webhook_secret FROM clients WHERE id=?", (client_id,)
            ).fetchone()
        )
        if row is None or row[0] is None:
            return None
        return self.cipher.open(row[0], aad=b"wh")

    async def oldest_due(self, now: datetime) -> datetime | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT MIN(q.due_at) FROM queue q JOIN messages m ON m.id=q.message_id"
                " WHERE q.due_at<=? AND m.status IN ('queued','scheduled')",
                (now.timestamp(),),
            ).fetchone()
        )
        return None if row is None or row[0] is None else datetime.fromtimestamp(row[0], UTC)

    # -- client status webhooks -----------------------------------------------
    async def enqueue_webhook(self, job: WebhookJob) -> None:
        sealed = seal_webhook(self.cipher, job)
        row = (job.id, job.message_id, job.client_id, sealed, job.attempts, job.due.timestamp())
        await self._run(
            lambda db: db.execute("INSERT INTO webhooks VALUES (?,?,?,?,?,?,NULL,0)", row)
        )

    async def claim_webhooks(
        self, now: datetime, limit: int, owner: str, lease_until: datetime
    ) -> Sequence[WebhookJob]:
        if limit <= 0:
            return []
        t, until = now.timestamp(), lease_until.timestamp()

        def op(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            def body() -> list[tuple[Any, ...]]:
                rows = db.execute(
                    "SELECT id, message_id, client_id, sealed, attempts, due_at FROM webhooks"
                    " WHERE due_at <= ? AND lease_until <= ? ORDER BY due_at LIMIT ?",
                    (t, t, limit),
                ).fetchall()
                db.executemany(
                    "UPDATE webhooks SET lease_owner=?, lease_until=? WHERE id=?",
                    [(owner, until, r[0]) for r in rows],
                )
                return [tuple(r) for r in rows]

            return self._tx(db, body)

        return opened_webhooks(self.cipher, await self._run(op))

    async def finish_webhook(self, job_id: str) -> None:
        await self._run(lambda db: db.execute("DELETE FROM webhooks WHERE id=?", (job_id,)))

    async def retry_webhook(self, job_id: str, owner: str, due: datetime, attempts: int) -> bool:
        cur = await self._run(
            lambda db: db.execute(
                "UPDATE webhooks SET due_at=?, attempts=?, lease_owner=NULL, lease_until=0"
                " WHERE id=? AND lease_owner=?",
                (due.timestamp(), attempts, job_id, owner),
            )
        )
        return bool(cur.rowcount)

    async def webhook_backlog(self, now: datetime) -> WebhookBacklog:
        t = now.timestamp()
        row = await self._run(
            lambda db: db.execute(
                "SELECT COUNT(*), COALESCE(SUM(due_at <= ? AND lease_until <= ?), 0),"
                " MIN(CASE WHEN due_at <= ? AND lease_until <= ?"
                " THEN MAX(due_at, lease_until) END) FROM webhooks",
                (t, t, t, t),
            ).fetchone()
        )
        oldest = None if row[2] is None else datetime.fromtimestamp(row[2], UTC)
        return WebhookBacklog(pending=int(row[0]), due=int(row[1]), oldest_due=oldest)
