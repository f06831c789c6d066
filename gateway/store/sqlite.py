"""The embedded store: one SQLite file in WAL mode, ``synchronous=FULL`` so a
commit is on disk before it returns (a 202 means durable).

Every statement runs on one dedicated thread, so the event loop never waits
on disk and SQLite sees one writer per process. Personal fields (number,
texts, borrower id, reference, callback URL) are sealed with the field cipher
before they reach the file; lookups use blind-index hashes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from gateway.crypto import BlindIndex, FieldCipher
from gateway.errors import StoreUnavailable, TransitionError
from gateway.models import (
    TERMINAL,
    ApiKey,
    Client,
    Event,
    Finding,
    Message,
    Status,
    can_transition,
)
from gateway.store.base import (
    ClaimState,
    IdempotencyClaim,
    IdempotencyRecord,
    QueueItem,
    StoredKey,
)
from gateway.store.sqlite_audit import AUDIT_SCHEMA, SqliteAuditTables
from gateway.store.sqlite_conn import SqliteThread
from gateway.store.sqlite_delivery import DELIVERY_SCHEMA, SqliteDeliveryTables
from gateway.store.sqlite_erase import SqliteErasure
from gateway.store.sqlite_group import SqliteGroupCommit
from gateway.store.sqlite_review import REVIEW_SCHEMA, SqliteReviewTables

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (
    id TEXT PRIMARY KEY,
    policy TEXT NOT NULL,
    signatures TEXT NOT NULL,
    rate REAL,
    link_domains TEXT NOT NULL,
    webhook_secret TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id),
    scopes TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    to_hash TEXT NOT NULL,
    borrower_hash TEXT NOT NULL,
    region TEXT NOT NULL,
    purpose TEXT NOT NULL,
    recipient_role TEXT NOT NULL,
    sealed TEXT NOT NULL,
    segments INTEGER NOT NULL,
    encoding TEXT NOT NULL,
    findings TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    scheduled_at REAL,
    expires_at REAL NOT NULL,
    provider TEXT,
    provider_message_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_client_status ON messages(client_id, status, created_at);
CREATE INDEX IF NOT EXISTS messages_to ON messages(to_hash);
CREATE INDEX IF NOT EXISTS messages_borrower ON messages(client_id, borrower_hash);
CREATE TABLE IF NOT EXISTS events (
    message_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    status TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (message_id, seq)
);
CREATE TABLE IF NOT EXISTS queue (
    message_id TEXT PRIMARY KEY,
    due_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_due ON queue(due_at);
CREATE TABLE IF NOT EXISTS attempts (
    message_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    provider TEXT NOT NULL,
    started_at REAL NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (message_id, n)
);
CREATE TABLE IF NOT EXISTS idempotency (
    client_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code INTEGER,
    response TEXT,
    lease_until REAL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (client_id, key)
);
"""

SEALED_FIELDS = (
    "to", "to_masked", "text", "body", "borrower_id", "reference", "callback_url", "template",
    "params",
)  # fmt: skip


def _ts(when: datetime | None) -> float | None:
    return None if when is None else when.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


class SqliteStore(
    SqliteGroupCommit,
    SqliteThread,
    SqliteAuditTables,
    SqliteDeliveryTables,
    SqliteErasure,
    SqliteReviewTables,
):
    schemas = (SCHEMA, AUDIT_SCHEMA, DELIVERY_SCHEMA, REVIEW_SCHEMA)
    foreign_keys = True
    unavailable = StoreUnavailable

    def __init__(self, path: Path, cipher: FieldCipher, index: BlindIndex) -> None:
        super().__init__(path, thread_name="sqlite")
        self.cipher = cipher
        self.index = index

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:  # the executor is shut down: it would raise RuntimeError
            raise StoreUnavailable("store is closed")
        return await self._grouped(self._call, fn)  # type: ignore[no-any-return]

    @staticmethod
    def _tx(db: sqlite3.Connection, body: Callable[[], T]) -> T:
        if db.in_transaction:  # inside a group commit (sqlite_group): a savepoint
            db.execute("SAVEPOINT tx")
            try:
                result = body()
            except BaseException:
                db.execute("ROLLBACK TO tx")
                db.execute("RELEASE tx")
                raise
            db.execute("RELEASE tx")
            return result
        db.execute("BEGIN IMMEDIATE")
        try:
            result = body()
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    # -- clients and keys -----------------------------------------------------
    async def put_client(self, client: Client, *, webhook_secret: str | None, create: bool) -> None:
        now = datetime.now(UTC).timestamp()
        secret = None if webhook_secret is None else self.cipher.seal(webhook_secret, aad=b"wh")

        def op(db: sqlite3.Connection) -> None:
            row = (
                client.policy,
                json.dumps(client.signatures, ensure_ascii=False),
                client.rate,
                json.dumps(client.link_domains),
            )
            if create:
                try:
                    db.execute(
                        "INSERT INTO clients VALUES (?,?,?,?,?,?,?,?)",
                        (client.id, *row, secret, now, now),
                    )
                except sqlite3.IntegrityError:
                    raise ValueError(f"client {client.id} already exists") from None
                return
            cur = db.execute(
                "UPDATE clients SET policy=?, signatures=?, rate=?, link_domains=?,"
                " webhook_secret=COALESCE(?, webhook_secret), updated_at=? WHERE id=?",
                (*row, secret, now, client.id),
            )
            if cur.rowcount == 0:
                raise ValueError(f"no client {client.id}")

        await self._run(op)

    @staticmethod
    def _client(row: sqlite3.Row | tuple[Any, ...]) -> Client:
        return Client(
            id=row[0],
            policy=row[1],
            signatures=tuple(json.loads(row[2])),
            rate=row[3],
            link_domains=tuple(json.loads(row[4])),
            has_webhook_secret=row[5] is not None,
        )

    async def get_client(self, client_id: str) -> Client | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT id, policy, signatures, rate, link_domains, webhook_secret"
                " FROM clients WHERE id=?",
                (client_id,),
            ).fetchone()
        )
        return None if row is None else self._client(row)

    async def list_clients(self) -> Sequence[Client]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT id, policy, signatures, rate, link_domains, webhook_secret"
                " FROM clients ORDER BY id"
            ).fetchall()
        )
        return [self._client(r) for r in rows]

    async def add_key(self, key: ApiKey, secret_hash: str) -> None:
        def op(db: sqlite3.Connection) -> None:
            if db.execute("SELECT 1 FROM clients WHERE id=?", (key.client_id,)).fetchone() is None:
                raise ValueError(f"no client {key.client_id}")
            db.execute(
                "INSERT INTO api_keys VALUES (?,?,?,?,?,NULL)",
                (
                    key.id,
                    key.client_id,
                    json.dumps(sorted(key.scopes)),
                    secret_hash,
                    key.created_at.timestamp(),
                ),
            )

        await self._run(op)

    @staticmethod
    def _key(row: tuple[Any, ...]) -> ApiKey:
        return ApiKey(
            id=row[0],
            client_id=row[1],
            scopes=frozenset(json.loads(row[2])),
            created_at=_dt(row[3]) or datetime.now(UTC),
            revoked_at=_dt(row[4]),
        )

    async def get_key(self, key_id: str) -> StoredKey | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT id, client_id, scopes, created_at, revoked_at, secret_hash"
                " FROM api_keys WHERE id=?",
                (key_id,),
            ).fetchone()
        )
        return None if row is None else StoredKey(self._key(row), row[5])

    async def list_keys(self) -> Sequence[ApiKey]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT id, client_id, scopes, created_at, revoked_at FROM api_keys"
                " ORDER BY created_at"
            ).fetchall()
        )
        return [self._key(r) for r in rows]

    async def revoke_key(self, key_id: str, when: datetime) -> bool:
        cur = await self._run(
            lambda db: db.execute(
                "UPDATE api_keys SET revoked_at=? WHERE id=? AND revoked_at IS NULL",
                (when.timestamp(), key_id),
            )
        )
        return cur.rowcount > 0

    # -- idempotency ----------------------------------------------------------
    async def claim_idempotency(
        self, client_id: str, key: str, request_hash: str, now: datetime, lease_seconds: float
    ) -> IdempotencyClaim:
        t = now.timestamp()

        def op(db: sqlite3.Connection) -> IdempotencyClaim:
            def body() -> IdempotencyClaim:
                row = db.execute(
                    "SELECT request_hash, status_code, response, lease_until, expires_at"
                    " FROM idempotency WHERE client_id=? AND key=?",
                    (client_id, key),
                ).fetchone()
                if row is not None and row[1] is not None and row[4] > t:
                    response = self.cipher.open_json(row[2], aad=f"idem:{client_id}".encode())
                    return IdempotencyClaim(ClaimState.DONE, row[0], row[1], response)
                if row is not None and row[1] is None and (row[3] or 0) > t:
                    return IdempotencyClaim(ClaimState.IN_FLIGHT, row[0])
                db.execute(
                    "INSERT OR REPLACE INTO idempotency VALUES (?,?,?,NULL,NULL,?,?)",
                    (client_id, key, request_hash, t + lease_seconds, t + lease_seconds),
                )
                return IdempotencyClaim(ClaimState.CLAIMED, request_hash)

            return self._tx(db, body)

        return await self._run(op)

    async def release_idempotency(self, client_id: str, key: str) -> None:
        await self._run(
            lambda db: db.execute(
                "DELETE FROM idempotency WHERE client_id=? AND key=? AND status_code IS NULL",
                (client_id, key),
            )
        )

    # -- messages -------------------------------------------------------------
    def _seal_message(self, m: Message) -> str:
        fields = {name: getattr(m, name) for name in SEALED_FIELDS}
        fields["params"] = None if m.params is None else dict(m.params)
        return self.cipher.seal_json(fields, aad=f"msg:{m.id}".encode())

    async def commit_acceptance(
        self, message: Message, idempotency: IdempotencyRecord | None, due_at: datetime | None
    ) -> None:
        m = message
        sealed = self._seal_message(m)
        to_hash = self.index.digest("phone", m.to)
        borrower_hash = self.index.digest("borrower", f"{m.client_id}\x00{m.borrower_id}")
        findings = json.dumps([f.to_json() for f in m.findings])
        idem_sealed = (
            None
            if idempotency is None
            else self.cipher.seal_json(idempotency.response, aad=f"idem:{m.client_id}".encode())
        )

        def op(db: sqlite3.Connection) -> None:
            def body() -> None:
                db.execute(
                    "INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        m.id, m.client_id, to_hash, borrower_hash, m.region, m.purpose,
                        m.recipient_role, sealed, m.segments, m.encoding, findings, str(m.status),
                        _ts(m.created_at), _ts(m.updated_at), _ts(m.scheduled_at),
                        _ts(m.expires_at), None, None, 0,
                    ),
                )  # fmt: skip
                for seq, ev in enumerate(m.events, 1):
                    db.execute(
                        "INSERT INTO events VALUES (?,?,?,?,?)",
                        (m.id, seq, _ts(ev.at), str(ev.status), ev.detail),
                    )
                if due_at is not None:
                    db.execute("INSERT INTO queue VALUES (?,?,NULL,0)", (m.id, _ts(due_at)))
                if idempotency is not None:
                    db.execute(
                        "INSERT OR REPLACE INTO idempotency VALUES (?,?,?,?,?,NULL,?)",
                        (
                            m.client_id,
                            idempotency.key,
                            idempotency.request_hash,
                            idempotency.status_code,
                            idem_sealed,
                            _ts(idempotency.expires_at),
                        ),
                    )

            self._tx(db, body)

        await self._run(op)

    def _load(self, db: sqlite3.Connection, message_id: str) -> Message | None:
        row = db.execute(
            "SELECT id, client_id, region, purpose, recipient_role, sealed, segments, encoding,"
            " findings, status, created_at, updated_at, scheduled_at, expires_at, provider,"
            " provider_message_id, attempts FROM messages WHERE id=?",
            (message_id,),
        ).fetchone()
        if row is None:
            return None
        events = tuple(
            Event(at=_dt(at) or datetime.now(UTC), status=Status(st), detail=detail)
            for at, st, detail in db.execute(
                "SELECT at, status, detail FROM events WHERE message_id=? ORDER BY seq",
                (message_id,),
            )
        )
        sealed = self.cipher.open_json(row[5], aad=f"msg:{row[0]}".encode())
        return Message(
            id=row[0],
            client_id=row[1],
            region=row[2],
            purpose=row[3],
            recipient_role=row[4],
            segments=row[6],
            encoding=row[7],
            findings=tuple(Finding.from_json(f) for f in json.loads(row[8])),
            status=Status(row[9]),
            created_at=_dt(row[10]) or datetime.now(UTC),
            updated_at=_dt(row[11]) or datetime.now(UTC),
            scheduled_at=_dt(row[12]),
            expires_at=_dt(row[13]) or datetime.now(UTC),
            provider=row[14],
            provider_message_id=row[15],
            attempts=row[16],
            events=events,
            **{name: sealed.get(name) for name in SEALED_FIELDS},
        )

    async def get_message(self, message_id: str) -> Message | None:
        return await self._run(lambda db: self._load(db, message_id))

    def _move(
        self,
        db: sqlite3.Connection,
        message_id: str,
        new: Status,
        t: float,
        detail: str | None,
        expect: frozenset[Status] | None,
        due_at: float | None,
        extra: dict[str, Any],
    ) -> None:
        row = db.execute("SELECT status FROM messages WHERE id=?", (message_id,)).fetchone()
        if row is None:
            raise KeyError(message_id)
        old = Status(row[0])
        if expect is not None and old not in expect:
            raise TransitionError(
                f"{message_id}: status is {old}, expected one of {sorted(expect)}"
            )
        # a same-status move (a re-attempt, a new due time) is fine, but a
        # terminal status is final: nothing, not even itself, follows it
        if (old != new or old in TERMINAL) and not can_transition(old, new):
            raise TransitionError(f"{message_id}: {old} -> {new} is not allowed")
        sets = ", ".join(f"{k}=?" for k in extra)
        db.execute(
            f"UPDATE messages SET status=?, updated_at=?{', ' + sets if sets else ''} WHERE id=?",  # noqa: S608
            (str(new), t, *extra.values(), message_id),
        )
        seq = db.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE message_id=?", (message_id,)
        ).fetchone()[0]
        db.execute("INSERT INTO events VALUES (?,?,?,?,?)", (message_id, seq, t, str(new), detail))
        if new in (Status.QUEUED, Status.SCHEDULED):
            db.execute(
                "INSERT OR REPLACE INTO queue VALUES (?,?,NULL,0)",
                (message_id, due_at if due_at is not None else t),
            )
        elif new != Status.SENDING:
            db.execute("DELETE FROM queue WHERE message_id=?", (message_id,))

    async def transition(
        self,
        message_id: str,
        new: Status,
        now: datetime,
        *,
        detail: str | None = None,
        expect: frozenset[Status] | None = None,
        due_at: datetime | None = None,
        provider: str | None = None,
        provider_message_id: str | None = None,
    ) -> Message:
        extra: dict[str, Any] = {}
        if provider is not None:
            extra["provider"] = provider
        if provider_message_id is not None:
            extra["provider_message_id"] = provider_message_id
        if new == Status.SCHEDULED and due_at is not None:
            extra["scheduled_at"] = due_at.timestamp()

        def op(db: sqlite3.Connection) -> Message:
            def body() -> Message:
                self._move(db, message_id, new, now.timestamp(), detail, expect, _ts(due_at), extra)
                loaded = self._load(db, message_id)
                assert loaded is not None  # noqa: S101 - just moved it
                return loaded

            return self._tx(db, body)

        return await self._run(op)

    # -- dispatch -------------------------------------------------------------
    async def claim_due(
        self, now: datetime, limit: int, owner: str, lease_until: datetime
    ) -> Sequence[QueueItem]:
        t, until = now.timestamp(), lease_until.timestamp()

        def op(db: sqlite3.Connection) -> list[QueueItem]:
            def body() -> list[QueueItem]:
                rows = db.execute(
                    "SELECT q.message_id, m.status, m.attempts FROM queue q"
                    " JOIN messages m ON m.id = q.message_id"
                    " WHERE q.due_at <= ? AND q.lease_until < ? ORDER BY q.due_at LIMIT ?",
                    (t, t, limit),
                ).fetchall()
                db.executemany(
                    "UPDATE queue SET lease_owner=?, lease_until=? WHERE message_id=?",
                    [(owner, until, r[0]) for r in rows],
                )
                return [QueueItem(r[0], Status(r[1]), r[2]) for r in rows]

            return self._tx(db, body)

        return await self._run(op)

    async def begin_attempt(
        self, message_id: str, provider: str, now: datetime, owner: str, lease_until: datetime
    ) -> Message:
        t = now.timestamp()

        def op(db: sqlite3.Connection) -> Message:
            def body() -> Message:
                n = (
                    db.execute(
                        "SELECT attempts FROM messages WHERE id=?", (message_id,)
                    ).fetchone()[0]
                    + 1
                )
                self._move(
                    db, message_id, Status.SENDING, t, f"attempt {n} via {provider}",
                    frozenset({Status.QUEUED, Status.SCHEDULED, Status.SENDING}), None,
                    {"attempts": n, "provider": provider},
                )  # fmt: skip
                db.execute(
                    "INSERT INTO attempts VALUES (?,?,?,?,?)", (message_id, n, provider, t, owner)
                )
                db.execute(
                    "UPDATE queue SET lease_owner=?, lease_until=? WHERE message_id=?",
                    (owner, lease_until.timestamp(), message_id),
                )
                loaded = self._load(db, message_id)
                assert loaded is not None  # noqa: S101
                return loaded

            return self._tx(db, body)

        return await self._run(op)

    async def last_attempt_provider(self, message_id: str) -> str | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT provider FROM attempts WHERE message_id=? ORDER BY n DESC LIMIT 1",
                (message_id,),
            ).fetchone()
        )
        return None if row is None else str(row[0])

    async def queue_depth(self) -> dict[str, int]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT m.status, COUNT(*) FROM queue q JOIN messages m ON m.id=q.message_id"
                " GROUP BY m.status"
            ).fetchall()
        )
        return {str(status): int(count) for status, count in rows}
