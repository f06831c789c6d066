"""Group commit in the embedded store: concurrent operations share one transaction,
yet each stays atomic on its own and is durable before its caller is answered."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.crypto import BlindIndex, FieldCipher
from gateway.errors import TransitionError
from gateway.models import Event, Message, Status
from gateway.store import sqlite_group
from gateway.store.sqlite import SqliteStore

NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def message(n: int) -> Message:
    return Message(
        id=f"msg_{n:04d}", client_id="acme", to="+8613812345678", to_masked="+86 138****5678",
        region="CN", borrower_id=f"B-{n}", purpose="service", recipient_role="borrower",
        text="t", body="t", segments=1, encoding="UCS-2", findings=(), status=Status.QUEUED,
        created_at=NOW, updated_at=NOW, scheduled_at=None, expires_at=NOW + timedelta(days=1),
        events=(Event(NOW, Status.QUEUED, None),),
    )  # fmt: skip


async def test_concurrent_operations_share_commits_and_fail_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = (secrets.token_bytes(32), secrets.token_bytes(32))
    store = SqliteStore(tmp_path / "db", FieldCipher(keys[0]), BlindIndex(keys[1]))
    await store.open()
    sizes: list[int] = []
    real = sqlite_group.SqliteGroupCommit._run_batch

    def spy(self: Any, batch: list[Any]) -> Any:
        sizes.append(len(batch))
        return real(self, batch)

    monkeypatch.setattr(sqlite_group.SqliteGroupCommit, "_run_batch", spy)
    await asyncio.gather(*(store.commit_acceptance(message(n), None, NOW) for n in range(40)))
    await store.transition("msg_0007", Status.CANCELLED, NOW)
    moves = [store.transition(f"msg_{n:04d}", Status.SCHEDULED, NOW, due_at=NOW) for n in range(40)]
    results = await asyncio.gather(*moves, return_exceptions=True)
    assert max(sizes) > 1  # they were grouped
    assert isinstance(results[7], TransitionError)  # cancelled is final: this one fails alone
    assert all(isinstance(r, Message) and r.status is Status.SCHEDULED
               for i, r in enumerate(results) if i != 7)  # fmt: skip
    await store.close()

    reopened = SqliteStore(tmp_path / "db", FieldCipher(keys[0]), BlindIndex(keys[1]))
    await reopened.open()
    statuses = [(await reopened.get_message(f"msg_{n:04d}")) for n in range(40)]
    assert [m.status if m else None for m in statuses].count(Status.SCHEDULED) == 39
    got = statuses[7]
    assert got is not None and got.status is Status.CANCELLED and len(got.events) == 2
    await reopened.close()


async def test_an_operation_with_its_own_transaction_runs_after_the_group(tmp_path: Path) -> None:
    import sqlite3

    store = SqliteStore(tmp_path / "db", FieldCipher(secrets.token_bytes(32)),
                        BlindIndex(secrets.token_bytes(32)))  # fmt: skip
    await store.open()

    def own(db: sqlite3.Connection) -> int:
        db.execute("BEGIN IMMEDIATE")  # as a few audit-table operations do
        db.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
        db.execute("INSERT INTO t VALUES (1)")
        db.execute("COMMIT")
        return int(db.execute("SELECT COUNT(*) FROM t").fetchone()[0])

    ops = [store.commit_acceptance(message(n), None, NOW) for n in range(10)]
    results = await asyncio.gather(*ops[:5], store._run(own), *ops[5:], store._run(own))
    assert sorted(r for r in results if r is not None) == [1, 2]
    stored = [await store.get_message(f"msg_{n:04d}") for n in range(10)]
    assert None not in stored
    await store.close()
