"""Opening a SQLite file the way every lendsms database wants it: WAL,
``synchronous=FULL`` (a commit is on disk when it returns), autocommit mode
(transactions are explicit), a busy timeout, owner-only permissions."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from gateway.errors import StoreUnavailable

T = TypeVar("T")


def open_durable(path: Path, *schemas: str, foreign_keys: bool = False) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    if foreign_keys:
        db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=10000")
    for schema in schemas:
        db.executescript(schema)
    path.chmod(0o600)
    return db


class SqliteThread:
    """One SQLite connection owned by one dedicated thread: every statement
    runs there, so the event loop never waits on disk. Subclasses set
    ``schemas`` (and ``foreign_keys``) and ``unavailable``, the exception a
    caller sees when the database cannot answer."""

    schemas: tuple[str, ...] = ()
    foreign_keys = False
    unavailable: type[Exception] = StoreUnavailable

    def __init__(self, path: Path, *, thread_name: str) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._closed = False

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:  # the executor is shut down: it would raise RuntimeError
            raise self.unavailable("database is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:
            raise self.unavailable("database is not open")
        try:
            return fn(self._db)
        except sqlite3.DatabaseError as exc:  # operational, programming (closed), corrupt
            raise self.unavailable(f"sqlite: {exc.__class__.__name__}") from exc

    def _connect(self) -> None:
        self._db = open_durable(self.path, *self.schemas, foreign_keys=self.foreign_keys)

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)

    async def close(self) -> None:
        def _close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, _close)
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())
