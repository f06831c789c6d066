"""Receipts, attempt counts and webhook secrets in the embedded store.

:class:`SqliteDeliveryTables` is mixed into :class:`gateway.store.sqlite.SqliteStore`
and runs on its database thread. A receipt row holds ids, a state and a carrier code:
nothing personal. It also answers the queue-age question of the metrics.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TypeVar

from gateway.crypto import FieldCipher
from gateway.models import Message

T = TypeVar("T")

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
"""


class SqliteDeliveryTables(ABC):
    """See :class:`gateway.store.delivery.DeliveryStore`."""

    cipher: FieldCipher  # provided by SqliteStore

    @abstractmethod
    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Provided by SqliteStore: run ``fn`` on the store\'s database thread."""

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
