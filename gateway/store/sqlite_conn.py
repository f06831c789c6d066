"""Opening a SQLite file the way every lendsms database wants it: WAL,
``synchronous=FULL`` (a commit is on disk when it returns), autocommit mode
(transactions are explicit), a busy timeout, owner-only permissions."""

from __future__ import annotations

import sqlite3
from pathlib import Path


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
