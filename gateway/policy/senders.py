"""Which clients sent to a number through a provider lately (for inbound
STOP / 退订 replies, API.md "Opt-outs and consent").

The port takes the number's blind-index hash. The adapter reads the embedded
store's ``messages`` and ``attempts`` tables through its own read-only
connection (the store port has no such query yet; the Redis store of the
scale-out issue should grow one and replace this adapter).
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Protocol

from gateway.policy.caps import PolicyUnavailable


class RecentSenders(Protocol):
    async def clients(self, phone: str, provider: str, since: datetime) -> list[str]: ...


class SqliteRecentSenders:
    def __init__(self, store_path: Path) -> None:
        self.path = store_path

    def _query(self, phone: str, provider: str, since: float) -> list[str]:
        if not self.path.exists():
            return []
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        try:
            db = sqlite3.connect(uri, uri=True, timeout=10)
            try:
                rows = db.execute(
                    "SELECT DISTINCT m.client_id FROM attempts a JOIN messages m"
                    " ON m.id = a.message_id WHERE m.to_hash = ? AND a.provider = ?"
                    " AND a.started_at >= ? ORDER BY m.client_id",
                    (phone, provider, since),
                ).fetchall()
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            raise PolicyUnavailable(f"sqlite: {exc.__class__.__name__}") from exc
        return [str(r[0]) for r in rows]

    async def clients(self, phone: str, provider: str, since: datetime) -> list[str]:
        return await asyncio.to_thread(self._query, phone, provider, since.timestamp())
