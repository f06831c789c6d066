"""Erasing one borrower's personal data from the embedded store
(``lendsms audit erase``, besides the audit keys it destroys).

:class:`SqliteErasure` is mixed into :class:`gateway.store.sqlite.SqliteStore`
and runs on its database thread. In one transaction, for every message of the
(client, borrower): the sealed personal fields are replaced by a sealed marker
(each field that had a value reads :data:`ERASED`), a message not yet handed to
a provider (queued, scheduled, held) moves to ``cancelled`` with detail
``erased`` through the state machine, and the idempotency answers stored for
those messages are sealed again with ``to_masked`` and ``body`` erased (kept,
so a retried request is still answered, not accepted twice), and the status
webhooks still queued for them (sealed URL and body) are deleted. ``secure_delete``
overwrites the freed bytes and a WAL checkpoint empties the WAL, so the old
ciphertext leaves the files.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from gateway.crypto import FieldCipher
from gateway.models import CANCELLABLE, ERASED, Status
from gateway.store.base import BorrowerErasure

T = TypeVar("T")

ERASED_DETAIL = "erased"
_IDEM_FIELDS = ("to_masked", "body")


def erased_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The sealed fields of a message with every value that was set erased;
    fields that were empty stay empty, template placeholder names stay."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None:
            out[name] = None
        elif name == "template":
            out[name] = value  # a lendsms template id: configuration, not personal
        elif name == "params" and isinstance(value, Mapping):
            out[name] = {key: ERASED for key in value}
        else:
            out[name] = ERASED
    return out


class SqliteErasure(ABC):
    """See :meth:`gateway.store.base.Store.erase_borrower`."""

    cipher: FieldCipher  # provided by SqliteStore

    @abstractmethod
    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Provided by SqliteStore: run ``fn`` on the store\'s database thread."""

    @staticmethod
    @abstractmethod
    def _tx(db: sqlite3.Connection, body: Callable[[], T]) -> T:
        """Provided by SqliteStore: ``body`` in one transaction (a savepoint in a group commit)."""

    @abstractmethod
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
        """Provided by SqliteStore: one state-machine move inside a transaction."""

    async def erase_borrower(
        self, client_id: str, borrower_hash: str, now: datetime
    ) -> BorrowerErasure:
        t = now.timestamp()

        def scrub(db: sqlite3.Connection) -> BorrowerErasure:
            rows = db.execute(
                "SELECT id, status, sealed FROM messages WHERE client_id=? AND borrower_hash=?",
                (client_id, borrower_hash),
            ).fetchall()
            cancelled: list[str] = []
            for message_id, status, sealed in rows:
                aad = f"msg:{message_id}".encode()
                fields = erased_fields(self.cipher.open_json(sealed, aad=aad))
                db.execute(
                    "UPDATE messages SET sealed=? WHERE id=?",
                    (self.cipher.seal_json(fields, aad=aad), message_id),
                )
                if Status(status) in CANCELLABLE:
                    self._move(
                        db, message_id, Status.CANCELLED, t, ERASED_DETAIL,
                        CANCELLABLE, None, {},
                    )  # fmt: skip
                    cancelled.append(message_id)
            ids = {str(r[0]) for r in rows}
            # their queued status webhooks: the sealed URL and body carry the
            # reference and the detail, and nothing is left to tell the client
            db.executemany("DELETE FROM webhooks WHERE message_id=?", [(i,) for i in ids])
            answers = 0
            aad = f"idem:{client_id}".encode()
            for key, response in db.execute(
                "SELECT key, response FROM idempotency WHERE client_id=? AND response IS NOT NULL",
                (client_id,),
            ).fetchall():
                answer = self.cipher.open_json(response, aad=aad)
                if not isinstance(answer, dict) or answer.get("id") not in ids:
                    continue
                for name in _IDEM_FIELDS:
                    if answer.get(name) is not None:
                        answer[name] = ERASED
                db.execute(
                    "UPDATE idempotency SET response=? WHERE client_id=? AND key=?",
                    (self.cipher.seal_json(answer, aad=aad), client_id, key),
                )
                answers += 1
            return BorrowerErasure(
                messages=tuple(sorted(ids)), cancelled=tuple(cancelled), answers=answers
            )

        def op(db: sqlite3.Connection) -> BorrowerErasure:
            # overwrite the freed bytes (old ciphertext) rather than only unlink them
            db.execute("PRAGMA secure_delete=ON")
            return self._tx(db, lambda: scrub(db))

        def flush_wal(db: sqlite3.Connection) -> bool:
            # move the WAL (which holds page images with the old ciphertext) into
            # the main file and empty it; False when a reader kept it from finishing
            if db.in_transaction:
                return False
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return not busy

        report = await self._run(op)
        flushed = await self._run(flush_wal)
        return BorrowerErasure(report.messages, report.cancelled, report.answers, flushed)
