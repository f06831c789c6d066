"""The review port of the embedded store on a real SQLite file: the queue's
query plan uses the review indexes. The backend-neutral review contract (the
queue and its filters, cursor pages, counts, the reviewer registry) runs on
SQLite and Redis in tests/contract/test_review.py."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.models import Status
from gateway.store.review import Reviewer
from gateway.store.sqlite import SqliteStore
from gateway.store.sqlite_review import decode_cursor, encode_cursor
from tests.contract.helpers import put
from tests.integration.test_sqlite_store import open_raw_store

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = open_raw_store(tmp_path / "var" / "lendsms.db")
    await s.open()
    yield s
    await s.close()


def test_a_cursor_decodes_to_what_was_encoded() -> None:
    assert decode_cursor(encode_cursor(12.5, "msg_1")) == (12.5, "msg_1")


def test_a_reviewer_sees_only_its_clients() -> None:
    ana = Reviewer("Ana Li", can_reveal=True, clients=("acme",), created_at=T0)
    assert ana.sees("acme") and not ana.sees("globex")


async def test_queue_uses_the_indexes(store: SqliteStore, tmp_path: Path) -> None:
    await put(store, Status.HELD)
    db = sqlite3.connect(tmp_path / "var" / "lendsms.db")
    try:
        plans = {}
        for name, clause in (("all", ""), ("client", " AND client_id IN ('acme')")):
            rows = db.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM messages m WHERE status IN ('held')"  # noqa: S608
                + clause
                + " ORDER BY created_at DESC, id DESC LIMIT 5"
            ).fetchall()
            plans[name] = " ".join(str(r[-1]) for r in rows)
    finally:
        db.close()
    assert "messages_review" in plans["all"]
    assert "messages_client_status" in plans["client"] or "messages_review" in plans["client"]
