"""The ``outbox`` provider: a carrier stand-in for development and tests.

Every SMS handed to it becomes one JSON line in a file::

    {"id": ..., "to": ..., "body": ..., "provider": ..., "sent_at": ...}

Several processes (gateway replicas, dispatch workers) may append to the same
file. Each line goes out in a single ``write`` on an ``O_APPEND`` descriptor
while an exclusive ``flock`` is held, and is fsynced before :meth:`send`
returns, so a line is either in the file whole or not at all once the call has
answered.

Status queries are answered by lendsms message id, from an in-memory index of
the ids seen so far plus the byte offset up to which the file has been read;
each query only reads what was appended since the previous one.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from providers.base import (
    Capabilities,
    DeliveryState,
    OutboundSms,
    Outcome,
    ProviderConfigError,
    ProviderError,
    SendResult,
    StatusResult,
)

__all__ = ["OutboxProvider", "read_outbox"]

_KNOWN_OPTIONS = frozenset({"path"})
_READ_CHUNK = 1 << 20
_FILE_MODE = 0o640
_ID_PREFIX = "outbox-"

# json.dumps(ensure_ascii=False) leaves these as they are, yet str.splitlines()
# treats them as line breaks; escaping keeps "one SMS, one line" true for any
# reader, not only for one that splits on b"\n".
_LINE_BREAK_ESCAPES = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _utc_timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _encode_line(record: Mapping[str, Any]) -> bytes:
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    for char, escape in _LINE_BREAK_ESCAPES.items():
        text = text.replace(char, escape)
    return (text + "\n").encode("utf-8")


def _parse_line(line: bytes) -> dict[str, Any] | None:
    """One complete line as a JSON object, or None when it is not one."""
    try:
        value = json.loads(line)
    except ValueError:  # also UnicodeDecodeError
        return None
    return value if isinstance(value, dict) else None


def _complete_lines(stream: BinaryIO) -> tuple[list[bytes], int]:
    """The newline-terminated lines from the stream's position on.

    Returns them (without the newline) and how many bytes they span; a trailing
    piece without a newline (a line still being written, or torn by a crash) is
    neither returned nor counted.
    """
    lines: list[bytes] = []
    consumed = 0
    pending = b""
    while chunk := stream.read(_READ_CHUNK):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            consumed += len(line) + 1
            lines.append(line)
    return lines, consumed


def read_outbox(path: Path) -> list[dict[str, Any]]:
    """Every record in an outbox file, in file order (for tests and tooling).

    A missing file reads as empty; lines that are not JSON objects and a torn
    last line are skipped.
    """
    try:
        with path.open("rb") as stream:
            lines, _ = _complete_lines(stream)
    except FileNotFoundError:
        return []
    return [record for line in lines if (record := _parse_line(line)) is not None]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OutboxProvider:
    """Appends each SMS to a JSON Lines file; answers status queries from it."""

    def __init__(self, name: str, options: Mapping[str, Any], *, base_dir: Path) -> None:
        unknown = sorted(str(key) for key in options if key not in _KNOWN_OPTIONS)
        if unknown:
            raise ProviderConfigError(
                f"providers.{name}: unknown option {unknown[0]!r} for type 'outbox'"
                f" (known: {', '.join(sorted(_KNOWN_OPTIONS))})"
            )
        raw = options.get("path")
        if raw is None:
            raise ProviderConfigError(f"providers.{name}: option 'path' is required")
        if not isinstance(raw, str | os.PathLike) or not os.fspath(raw):
            raise ProviderConfigError(f"providers.{name}: option 'path' must be a non-empty path")
        path = Path(raw).expanduser()
        self.name = name
        self.capabilities = Capabilities(free_text=True, max_segments=10, status_query=True)
        self.path: Path = path if path.is_absolute() else Path(base_dir) / path
        self._started = False
        # Status index: ids seen in the file up to byte _offset of file _file_id.
        self._index_lock = threading.Lock()
        self._seen: set[str] = set()
        self._offset = 0
        self._file_id: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"OutboxProvider(name={self.name!r}, path={str(self.path)!r})"

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        try:
            await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise ProviderConfigError(
                f"providers.{self.name}: cannot create the outbox folder ({exc.__class__.__name__})"
            ) from exc
        self._started = True

    async def close(self) -> None:
        self._started = False

    # -- sending ------------------------------------------------------------

    async def send(self, sms: OutboundSms) -> SendResult:
        line = _encode_line(
            {
                "id": sms.message_id,
                "to": sms.to,
                "body": sms.body,
                "provider": self.name,
                "sent_at": _utc_timestamp(),
            }
        )
        try:
            await asyncio.to_thread(self._append, line)
        except OSError as exc:
            # The line may or may not be on disk: outcome unknown (invariant 9).
            raise ProviderError(
                f"outbox {self.name}: append failed ({exc.__class__.__name__}, errno {exc.errno})"
            ) from exc
        return SendResult(Outcome.SENT, provider_message_id=_ID_PREFIX + sms.message_id)

    def _append(self, line: bytes) -> None:
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
        created = False
        try:
            fd = os.open(self.path, flags)
        except FileNotFoundError:
            fd = os.open(self.path, flags | os.O_CREAT, _FILE_MODE)
            created = True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    # A writer died mid-line: end its torn line so ours stays whole.
                    line = b"\n" + line
                view = memoryview(line)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.path.parent)  # make the new file's name durable too

    # -- status -------------------------------------------------------------

    async def query_status(
        self, message_id: str, provider_message_id: str | None
    ) -> StatusResult | None:
        try:
            found = await asyncio.to_thread(self._lookup, message_id)
        except OSError as exc:
            raise ProviderError(
                f"outbox {self.name}: cannot read the outbox ({exc.__class__.__name__})"
            ) from exc
        if found:
            return StatusResult(DeliveryState.ACCEPTED, _ID_PREFIX + message_id)
        return StatusResult(DeliveryState.NOT_FOUND)

    def _lookup(self, message_id: str) -> bool:
        with self._index_lock:
            if message_id in self._seen:
                return True
            self._read_tail()
            return message_id in self._seen

    def _read_tail(self) -> None:
        """Index the lines appended since the last read (caller holds the lock)."""
        try:
            stream = self.path.open("rb")
        except FileNotFoundError:
            self._reset_index(None)
            return
        with stream:
            info = os.fstat(stream.fileno())
            file_id = (info.st_dev, info.st_ino)
            if file_id != self._file_id or info.st_size < self._offset:
                self._reset_index(file_id)  # replaced or truncated: start over
            stream.seek(self._offset)
            lines, consumed = _complete_lines(stream)
        for line in lines:
            record = _parse_line(line)
            if record is not None and isinstance(record.get("id"), str):
                self._seen.add(record["id"])
        self._offset += consumed

    def _reset_index(self, file_id: tuple[int, int] | None) -> None:
        self._seen.clear()
        self._offset = 0
        self._file_id = file_id
