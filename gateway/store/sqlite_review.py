"""The compliance-review queue and the reviewer registry in the embedded store
(the port: :mod:`gateway.store.review`).

The queue is read from ``messages`` itself: by (client, status, created_at)
through ``messages_client_status`` when the clients are known, else through
``messages_review`` (status, created_at, id). The source and category filters
look into the findings JSON with ``json_each`` on those few rows. The summary
counts need messages that *were* stopped even after a reviewer moved them
on, so a trigger notes every message accepted held or blocked in
``review_entries`` (ids, client and time: nothing personal).

Cursors are ``base64url(json([created_at, id]))`` with a version tag; any
other string is a ValueError. Reviewer names are kept in the clear (they are
the lookup key and appear in the audit records); passwords only as scrypt
hashes.

A reviewer's sign-out instant (web sessions issued at or before it are
refused) sits in ``review_signouts``, apart from the row that
``put_reviewer`` replaces, so it only ever moves forward (``max``); it is read
with the reviewer through a LEFT JOIN. The table is created with IF NOT
EXISTS, so an existing database gets it when the store opens.
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from gateway.models import Message, Status
from gateway.store.review import (
    ReviewCount,
    Reviewer,
    ReviewPage,
    ReviewQuery,
    ReviewSource,
    StoredReviewer,
)

T = TypeVar("T")

REVIEW_SCHEMA = """
CREATE TABLE IF NOT EXISTS reviewers (
    name TEXT PRIMARY KEY,
    can_reveal INTEGER NOT NULL,
    clients TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    disabled_at REAL
);
CREATE TABLE IF NOT EXISTS review_signouts (
    name TEXT PRIMARY KEY,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_review ON messages(status, created_at, id);
CREATE TABLE IF NOT EXISTS review_entries (
    message_id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS review_entries_created ON review_entries(created_at, client_id);
CREATE TRIGGER IF NOT EXISTS review_entries_add AFTER INSERT ON messages
WHEN NEW.status IN ('held', 'blocked')
BEGIN
    INSERT OR IGNORE INTO review_entries VALUES (NEW.id, NEW.client_id, NEW.created_at);
END;
CREATE TRIGGER IF NOT EXISTS review_entries_drop AFTER DELETE ON messages
BEGIN
    DELETE FROM review_entries WHERE message_id = OLD.id;
END;
CREATE TABLE IF NOT EXISTS review_meta (backfilled INTEGER PRIMARY KEY);
INSERT OR IGNORE INTO review_entries
    SELECT id, client_id, created_at FROM messages
    WHERE status IN ('held', 'blocked', 'rejected')
    AND NOT EXISTS (SELECT 1 FROM review_meta);
INSERT OR IGNORE INTO review_meta VALUES (1);
"""

_SIGNOUT_UPSERT = (
    "INSERT INTO review_signouts VALUES (?, ?)"
    " ON CONFLICT(name) DO UPDATE SET at = max(at, excluded.at)"
)
_REVIEWER_COLUMNS = (
    "SELECT r.name, r.can_reveal, r.clients, r.created_at, r.disabled_at, s.at, r.password_hash"
    " FROM reviewers r LEFT JOIN review_signouts s ON s.name = r.name"
)

_CURSOR_TAG = "r1."
_STOPPING = "json_extract(f.value, '$.action') IN ('hold', 'block')"
_BY_CONTENT = (
    "EXISTS (SELECT 1 FROM json_each(m.findings) f WHERE"
    " json_extract(f.value, '$.action') IN ('hold', 'block')"
    " AND json_extract(f.value, '$.kind') IN ('content', 'pii'))"
)
_BY_CATEGORY = (
    "EXISTS (SELECT 1 FROM json_each(m.findings) f WHERE json_extract(f.value, '$.category') = ?)"
)


def encode_cursor(created_at: float, message_id: str) -> str:
    raw = json.dumps([created_at, message_id], separators=(",", ":")).encode()
    return _CURSOR_TAG + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """(created_at, id); ValueError on anything this store did not hand out."""
    if not cursor.startswith(_CURSOR_TAG) or len(cursor) > 200:
        raise ValueError("bad cursor")
    body = cursor[len(_CURSOR_TAG) :]
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("bad cursor") from None
    ok = isinstance(data, list) and len(data) == 2
    if not ok or not isinstance(data[0], int | float) or not isinstance(data[1], str):
        raise ValueError("bad cursor")
    return float(data[0]), data[1]


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({','.join('?' * len(values))})"


def _listing(query: ReviewQuery) -> tuple[str, list[Any]]:
    """The SELECT of one page (ids and created_at; limit + 1 rows)."""
    statuses = sorted(str(s) for s in query.statuses)
    where = [_in("m.status", statuses)]
    args: list[Any] = list(statuses)
    if query.clients is not None:
        clients = sorted(query.clients)
        where.append(_in("m.client_id", clients))
        args += clients
    if query.purpose is not None:
        where.append("m.purpose = ?")
        args.append(query.purpose)
    if query.after is not None:
        where.append("m.created_at >= ?")
        args.append(query.after.timestamp())
    if query.before is not None:
        where.append("m.created_at < ?")
        args.append(query.before.timestamp())
    if query.cursor is not None:
        at, mid = decode_cursor(query.cursor)
        where.append("(m.created_at < ? OR (m.created_at = ? AND m.id < ?))")
        args += [at, at, mid]
    if query.source is ReviewSource.CONTENT:
        where.append(_BY_CONTENT)
    elif query.source is ReviewSource.POLICY:
        where.append("NOT " + _BY_CONTENT)
    if query.category is not None:
        where.append(_BY_CATEGORY)
        args.append(query.category)
    sql = (
        "SELECT m.id, m.created_at FROM messages m WHERE "  # noqa: S608 - fixed fragments
        + " AND ".join(where)
        + " ORDER BY m.created_at DESC, m.id DESC LIMIT ?"
    )
    args.append(query.limit + 1)
    return sql, args


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _reviewer(row: sqlite3.Row | tuple[Any, ...]) -> Reviewer:
    return Reviewer(
        name=row[0],
        can_reveal=bool(row[1]),
        clients=tuple(json.loads(row[2])),
        created_at=_dt(row[3]) or datetime.now(UTC),
        disabled_at=_dt(row[4]),
        signed_out_at=_dt(row[5]),
    )


class SqliteReviewTables(ABC):
    """See :class:`gateway.store.review.ReviewStore`."""

    @abstractmethod
    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Provided by SqliteStore: run ``fn`` on the store's database thread."""

    @staticmethod
    @abstractmethod
    def _tx(db: sqlite3.Connection, body: Callable[[], T]) -> T:
        """Provided by SqliteStore: ``body`` in one transaction (or savepoint)."""

    @abstractmethod
    def _load(self, db: sqlite3.Connection, message_id: str) -> Message | None:
        """Provided by SqliteStore: one message, decrypted."""

    async def list_for_review(self, query: ReviewQuery) -> ReviewPage:
        if not query.statuses or query.limit < 1:
            return ReviewPage((), None)
        sql, args = _listing(query)  # ValueError on a bad cursor, before any I/O

        def op(db: sqlite3.Connection) -> ReviewPage:
            rows = db.execute(sql, args).fetchall()
            page = rows[: query.limit]
            messages = [m for r in page if (m := self._load(db, r[0])) is not None]
            more = len(rows) > query.limit
            cursor = encode_cursor(page[-1][1], page[-1][0]) if more and page else None
            return ReviewPage(messages, cursor)

        return await self._run(op)

    async def review_counts(
        self, clients: frozenset[str] | None, since: datetime, until: datetime
    ) -> Sequence[ReviewCount]:
        args: list[Any] = [since.timestamp(), until.timestamp()]
        client_filter = ""
        if clients is not None:
            if not clients:
                return []
            client_filter = " AND " + _in("r.client_id", sorted(clients))
            args += sorted(clients)
        sql = (
            "SELECT strftime('%Y-%m-%d', r.created_at, 'unixepoch'), m.status,"  # noqa: S608
            " COALESCE(json_extract(f.value, '$.category'), ''), COUNT(DISTINCT m.id)"
            " FROM review_entries r JOIN messages m ON m.id = r.message_id"
            " LEFT JOIN json_each(m.findings) f ON " + _STOPPING + " WHERE r.created_at >= ?"
            " AND r.created_at < ?" + client_filter + " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        )
        rows = await self._run(lambda db: db.execute(sql, args).fetchall())
        return [ReviewCount(day, Status(st), cat, int(n)) for day, st, cat, n in rows]

    # -- reviewers ------------------------------------------------------------
    async def put_reviewer(self, reviewer: Reviewer, password_hash: str, *, create: bool) -> None:
        row = (
            int(reviewer.can_reveal),
            json.dumps(list(reviewer.clients)),
            password_hash,
            reviewer.created_at.timestamp(),
            None if reviewer.disabled_at is None else reviewer.disabled_at.timestamp(),
        )
        signed_out = reviewer.signed_out_at

        def write(db: sqlite3.Connection) -> None:
            if create:
                try:
                    db.execute("INSERT INTO reviewers VALUES (?,?,?,?,?,?)", (reviewer.name, *row))
                except sqlite3.IntegrityError:
                    raise ValueError("a reviewer with this name exists") from None
            else:
                db.execute(
                    "INSERT OR REPLACE INTO reviewers VALUES (?,?,?,?,?,?)", (reviewer.name, *row)
                )
            if signed_out is not None:
                db.execute(_SIGNOUT_UPSERT, (reviewer.name, signed_out.timestamp()))

        await self._run(lambda db: self._tx(db, lambda: write(db)))

    async def end_reviewer_sessions(self, name: str, at: datetime) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            if db.execute("SELECT 1 FROM reviewers WHERE name=?", (name,)).fetchone() is None:
                return False
            db.execute(_SIGNOUT_UPSERT, (name, at.timestamp()))
            return True

        return await self._run(lambda db: self._tx(db, lambda: write(db)))

    async def get_reviewer(self, name: str) -> StoredReviewer | None:
        row = await self._run(
            lambda db: db.execute(_REVIEWER_COLUMNS + " WHERE r.name=?", (name,)).fetchone()
        )
        return None if row is None else StoredReviewer(_reviewer(row), row[6])

    async def list_reviewers(self) -> Sequence[Reviewer]:
        rows = await self._run(
            lambda db: db.execute(_REVIEWER_COLUMNS + " ORDER BY r.name").fetchall()
        )
        return [_reviewer(r) for r in rows]
