"""Group commit for the embedded store.

Every statement runs on the store's one database thread. With ``synchronous=FULL``
each commit costs an fsync, so one transaction per request caps the dispatcher at a
few hundred sends a second on an ordinary disk. Here the operations that arrive while
the thread is busy are run together: one ``BEGIN IMMEDIATE``, each operation inside
its own ``SAVEPOINT`` (an operation that fails is rolled back alone), one ``COMMIT``
— one fsync for the lot. Nobody is answered before that commit returns, so an answer
still means durable. An operation that arrives alone runs exactly as before, in its
own transaction; so does one that opens its own transaction with ``BEGIN`` (it is
rolled back to its savepoint and run again after the group's commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.errors import StoreUnavailable

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]
Call = Callable[[Op], Any]


@dataclass
class _Pending:
    op: Op
    call: Call  # runs ``op`` on the connection, mapping sqlite errors (SqliteStore._call)
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


@dataclass
class _Group:
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: list[_Pending] = field(default_factory=list)
    draining: bool = False


def _own_transaction(error: BaseException) -> bool:
    """The operation tried to BEGIN inside the group's transaction."""
    cause = error.__cause__ if isinstance(error, StoreUnavailable) else error
    return isinstance(cause, sqlite3.OperationalError) and "within a transaction" in str(cause)


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # the caller went away (cancelled)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class SqliteGroupCommit:
    """Mixed into :class:`gateway.store.sqlite.SqliteStore`."""

    _executor: ThreadPoolExecutor
    _db: sqlite3.Connection | None

    def _group_state(self) -> _Group:
        group: _Group | None = self.__dict__.get("_group")
        if group is None:
            group = self.__dict__.setdefault("_group", _Group())
        return group

    async def _grouped(self, call: Call, op: Op) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        group = self._group_state()
        with group.lock:
            group.pending.append(_Pending(op, call, future, loop))
            start, group.draining = not group.draining, True
        if start:
            try:
                loop.run_in_executor(self._executor, self._drain_group)
            except RuntimeError:  # the executor is shut down
                with group.lock:
                    group.draining = False
                    stranded, group.pending = group.pending, []
                for item in stranded:
                    _settle(item.future, None, StoreUnavailable("store is closed"))
        return await future

    def _drain_group(self) -> None:
        """On the database thread: run what is pending, batch after batch."""
        group = self._group_state()
        while True:
            with group.lock:
                batch, group.pending = group.pending, []
                if not batch:
                    group.draining = False
                    return
            outcomes = self._run_batch(batch)
            for item, (value, error) in zip(batch, outcomes, strict=True):
                with contextlib.suppress(RuntimeError):  # the loop is closed
                    item.loop.call_soon_threadsafe(_settle, item.future, value, error)

    @staticmethod
    def _one(item: _Pending) -> tuple[Any, BaseException | None]:
        try:
            return item.call(item.op), None
        except Exception as exc:
            return None, exc

    def _run_batch(self, batch: list[_Pending]) -> list[tuple[Any, BaseException | None]]:
        db = self._db
        if db is None or len(batch) == 1 or db.in_transaction:
            return [self._one(item) for item in batch]
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:  # busy or broken: fall back to one transaction each
            return [self._one(item) for item in batch]
        outcomes: list[tuple[Any, BaseException | None]] = []
        alone: list[int] = []  # operations that manage their own transaction
        try:
            for index, item in enumerate(batch):
                db.execute("SAVEPOINT grouped")
                value, error = self._one(item)
                if error is not None:
                    db.execute("ROLLBACK TO grouped")
                    if _own_transaction(error):
                        alone.append(index)
                db.execute("RELEASE grouped")
                outcomes.append((value, error))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            failed = StoreUnavailable(f"sqlite: {exc.__class__.__name__}")
            return [(None, failed) for _ in batch]
        for index in alone:
            outcomes[index] = self._one(batch[index])
        return outcomes
