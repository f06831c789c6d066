"""The audit log's tables in the embedded store: the chain registry, copies of
the signed checkpoints, and the wrapped audit data keys.

:class:`SqliteAuditTables` is mixed into :class:`gateway.store.sqlite.SqliteStore`
and runs on its one database thread (``_run``). Nothing here is personal:
instance ids, seqs, macs, signatures, key ids, blind-index hashes and keys
wrapped under the key-encryption key.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from gateway.store.base import AuditChain, AuditDataKey

T = TypeVar("T")

AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_chains (
    instance TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    closed_at REAL
);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    instance TEXT NOT NULL,
    seq INTEGER NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (instance, seq, line)
);
CREATE TABLE IF NOT EXISTS audit_keys (
    key_id TEXT PRIMARY KEY,
    generation TEXT NOT NULL,
    owner TEXT,
    wrapped TEXT,
    created_at REAL NOT NULL,
    destroyed_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS audit_keys_owner ON audit_keys(owner, generation)
    WHERE owner IS NOT NULL AND wrapped IS NOT NULL;
"""

_KEY_COLUMNS = "key_id, generation, owner, wrapped, created_at, destroyed_at"
_SELECT = f"SELECT {_KEY_COLUMNS} FROM audit_keys"  # noqa: S608 - constant column list
_INSERT = "INSERT OR IGNORE INTO audit_keys VALUES (?,?,?,?,?,NULL)"
_CHUNK = 500  # owners per IN (...) query


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _key(row: tuple[Any, ...] | None) -> AuditDataKey | None:
    if row is None:
        return None
    created = _dt(row[4])
    assert created is not None  # noqa: S101 - NOT NULL column
    return AuditDataKey(row[0], row[1], row[2], row[3], created, _dt(row[5]))


def _live_owner_keys(
    db: sqlite3.Connection, generation: str, owners: Sequence[str]
) -> dict[str, AuditDataKey]:
    out: dict[str, AuditDataKey] = {}
    for start in range(0, len(owners), _CHUNK):
        chunk = owners[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        query = f"{_SELECT} WHERE generation=? AND wrapped IS NOT NULL AND owner IN ({marks})"
        for row in db.execute(query, (generation, *chunk)):
            key = _key(row)
            if key is not None and key.owner is not None:
                out[key.owner] = key
    return out


class SqliteAuditTables(ABC):
    """Audit registry, checkpoints and keys; see :class:`gateway.store.base.AuditStore`."""

    @abstractmethod
    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Provided by SqliteStore: run ``fn`` on the store\'s database thread."""

    @staticmethod
    @abstractmethod
    def _tx(db: sqlite3.Connection, body: Callable[[], T]) -> T:
        """Provided by SqliteStore: ``body`` in one transaction (a savepoint in a group commit)."""

    # -- chains and checkpoints -------------------------------------------------

    async def register_audit_chain(self, chain: AuditChain) -> None:
        row = (chain.instance, chain.kind, chain.host, chain.pid, chain.started_at.timestamp())
        await self._run(
            lambda db: db.execute(
                "INSERT INTO audit_chains VALUES (?,?,?,?,?,NULL)"
                " ON CONFLICT(instance) DO UPDATE SET closed_at=NULL",
                row,
            )
        )

    async def close_audit_chain(self, instance: str, when: datetime) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE audit_chains SET closed_at=? WHERE instance=?",
                (when.timestamp(), instance),
            )
        )

    async def list_audit_chains(self) -> Sequence[AuditChain]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT instance, kind, host, pid, started_at, closed_at FROM audit_chains"
                " ORDER BY started_at, instance"
            ).fetchall()
        )
        return [
            AuditChain(r[0], r[1], r[2], r[3], _dt(r[4]) or datetime.now(UTC), _dt(r[5]))
            for r in rows
        ]

    async def add_audit_checkpoint(self, instance: str, seq: int, line: str) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT OR IGNORE INTO audit_checkpoints VALUES (?,?,?)", (instance, seq, line)
            )
        )

    async def list_audit_checkpoints(self) -> Sequence[str]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT line FROM audit_checkpoints ORDER BY instance, seq"
            ).fetchall()
        )
        return [str(r[0]) for r in rows]

    # -- data keys --------------------------------------------------------------

    async def add_audit_key(self, key: AuditDataKey) -> AuditDataKey:
        row = (key.key_id, key.generation, None, key.wrapped, key.created_at.timestamp())

        def op(db: sqlite3.Connection) -> AuditDataKey:
            db.execute(_INSERT, row)
            found = _key(db.execute(_SELECT + " WHERE key_id=?", (key.key_id,)).fetchone())
            assert found is not None  # noqa: S101 - just inserted or already there
            return found

        return await self._run(op)

    async def owner_keys(self, generation: str, owners: Sequence[str]) -> dict[str, AuditDataKey]:
        return await self._run(lambda db: _live_owner_keys(db, generation, owners))

    async def add_owner_keys(self, keys: Sequence[AuditDataKey]) -> dict[str, AuditDataKey]:
        rows = [
            (k.key_id, k.generation, k.owner, k.wrapped, k.created_at.timestamp()) for k in keys
        ]
        by_generation: dict[str, list[str]] = {}
        for k in keys:
            by_generation.setdefault(k.generation, []).append(str(k.owner))

        def op(db: sqlite3.Connection) -> dict[str, AuditDataKey]:
            def body() -> dict[str, AuditDataKey]:  # one transaction: one fsync for the batch
                db.executemany(_INSERT, rows)
                out: dict[str, AuditDataKey] = {}
                for generation, owners in by_generation.items():
                    out.update(_live_owner_keys(db, generation, owners))
                return out

            return self._tx(db, body)

        return await self._run(op)

    async def get_audit_key(self, key_id: str) -> AuditDataKey | None:
        return await self._run(
            lambda db: _key(
                db.execute(
                    _SELECT + " WHERE key_id=?",
                    (key_id,),
                ).fetchone()
            )
        )

    async def current_audit_generation(self) -> AuditDataKey | None:
        return await self._run(
            lambda db: _key(
                db.execute(
                    _SELECT + " WHERE owner IS NULL ORDER BY created_at DESC, rowid DESC LIMIT 1"
                ).fetchone()
            )
        )

    async def destroy_owner_keys(self, owner: str, when: datetime) -> list[str]:
        def op(db: sqlite3.Connection) -> list[str]:
            # overwrite the freed bytes rather than only unlink them
            db.execute("PRAGMA secure_delete=ON")

            def body() -> list[str]:
                ids = [
                    str(r[0])
                    for r in db.execute(
                        "SELECT key_id FROM audit_keys WHERE owner=? AND wrapped IS NOT NULL",
                        (owner,),
                    )
                ]
                db.execute(
                    "UPDATE audit_keys SET wrapped=NULL, destroyed_at=?"
                    " WHERE owner=? AND wrapped IS NOT NULL",
                    (when.timestamp(), owner),
                )
                return ids

            return self._tx(db, body)

        def flush_wal(db: sqlite3.Connection) -> None:
            # push the WAL (which still holds the old pages) into the main file and
            # empty it; inside another transaction this waits for a later checkpoint
            if not db.in_transaction:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

        destroyed = await self._run(op)
        await self._run(flush_wal)
        return destroyed
