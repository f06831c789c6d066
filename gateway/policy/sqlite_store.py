"""SQLite adapter of the caps and opt-out ports: its own file (``policy.path``),
WAL, ``synchronous=FULL``; every statement on one dedicated thread. A cap
check-and-reserve is one ``BEGIN IMMEDIATE`` transaction, so it is exact
across the processes that share the file, too."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from gateway.policy.caps import CapCheck, CapDenied, Counter, PolicyUnavailable, over_limit
from gateway.policy.optouts import ContactState
from gateway.store.sqlite_conn import SqliteThread

T = TypeVar("T")
DAY_MS = 86_400_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS cap_entries (
    client TEXT NOT NULL,
    counter TEXT NOT NULL,
    member TEXT NOT NULL,
    at INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    PRIMARY KEY (client, counter, member)
);
CREATE INDEX IF NOT EXISTS cap_entries_at ON cap_entries(client, counter, at);
CREATE INDEX IF NOT EXISTS cap_entries_member ON cap_entries(client, member);
CREATE INDEX IF NOT EXISTS cap_entries_expires ON cap_entries(expires);
CREATE TABLE IF NOT EXISTS opt_outs (
    client TEXT NOT NULL,
    phone TEXT NOT NULL,
    scope TEXT NOT NULL,
    at REAL NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (client, phone, scope)
);
CREATE TABLE IF NOT EXISTS consents (
    client TEXT NOT NULL,
    phone TEXT NOT NULL,
    purpose TEXT NOT NULL,
    at REAL NOT NULL,
    evidence TEXT NOT NULL,
    PRIMARY KEY (client, phone, purpose)
);
"""


class SqlitePolicyStore(SqliteThread):
    schemas = (SCHEMA,)
    unavailable = PolicyUnavailable

    def __init__(self, path: Path) -> None:
        super().__init__(path, thread_name="policy-sqlite")

    @staticmethod
    def _tx(db: sqlite3.Connection, body: Callable[[], T]) -> T:
        db.execute("BEGIN IMMEDIATE")
        try:
            result = body()
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    # -- caps -----------------------------------------------------------------
    async def reserve(self, check: CapCheck) -> CapDenied | None:
        def body(db: sqlite3.Connection) -> CapDenied | None:
            if db.execute(
                "SELECT 1 FROM cap_entries WHERE client=? AND member=? LIMIT 1",
                (check.client, check.member),
            ).fetchone():
                return None  # already reserved under this name
            db.execute("DELETE FROM cap_entries WHERE expires < ?", (check.now,))
            for c in check.counters:
                lo, hi = (c.lo, c.hi) if c.calendar else (check.at - c.span, check.at + c.span)
                scores = [
                    row[0]
                    for row in db.execute(
                        "SELECT at FROM cap_entries WHERE client=? AND counter=?"
                        " AND at >= ? AND at <= ?",
                        (check.client, c.name, lo, hi),
                    )
                ]
                wait = over_limit(c, scores, check.at, check.now)
                if wait is not None:
                    return CapDenied(c.rule, c.subject, wait)
            db.executemany(
                "INSERT INTO cap_entries VALUES (?,?,?,?,?)",
                [
                    (check.client, c.name, check.member, check.at, _expiry(c, check.at))
                    for c in check.counters
                ],
            )
            return None

        return await self._run(lambda db: self._tx(db, lambda: body(db)))

    async def release(self, client: str, member: str) -> None:
        await self._run(
            lambda db: db.execute(
                "DELETE FROM cap_entries WHERE client=? AND member=?", (client, member)
            )
        )

    # -- opt-outs and consents ------------------------------------------------
    async def state(self, client: str, phone: str) -> ContactState:
        def op(db: sqlite3.Connection) -> ContactState:
            scopes = db.execute(
                "SELECT scope FROM opt_outs WHERE client=? AND phone=?", (client, phone)
            ).fetchall()
            consents = db.execute(
                "SELECT purpose FROM consents WHERE client=? AND phone=?", (client, phone)
            ).fetchall()
            return ContactState(frozenset(r[0] for r in scopes), frozenset(r[0] for r in consents))

        return await self._run(op)

    async def add_opt_out(
        self, client: str, phone: str, scope: str, at: datetime, source: str
    ) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO opt_outs VALUES (?,?,?,?,?)",
                (client, phone, scope, at.timestamp(), source),
            )
        )

    async def remove_opt_outs(self, client: str, phone: str) -> int:
        cur = await self._run(
            lambda db: db.execute(
                "DELETE FROM opt_outs WHERE client=? AND phone=?", (client, phone)
            )
        )
        return int(cur.rowcount)

    async def add_consent(
        self, client: str, phone: str, purpose: str, at: datetime, evidence: str
    ) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO consents VALUES (?,?,?,?,?)",
                (client, phone, purpose, at.timestamp(), evidence),
            )
        )

    async def remove_consent(self, client: str, phone: str, purpose: str) -> bool:
        cur = await self._run(
            lambda db: db.execute(
                "DELETE FROM consents WHERE client=? AND phone=? AND purpose=?",
                (client, phone, purpose),
            )
        )
        return bool(cur.rowcount)


def _expiry(counter: Counter, at: int) -> int:
    """When an entry can no longer matter to any check (with a day's margin)."""
    return (counter.hi if counter.calendar else at + counter.span) + DAY_MS
