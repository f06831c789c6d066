"""The audit log: encrypted, hash-chained, group-committed JSON Lines.

One record per line (the format: :mod:`gateway.audit_format`).

Records are sealed under the writer's current key, or, with ``owner`` (a
borrower's blind-index hash), under that borrower's own key (``keys``,
:class:`gateway.keyring.KeyRing`), so erasing one borrower destroys one key.
A ``tracker`` registers the chain and signs checkpoints of its head.

Segments are ``audit-<instance>-<first seq, 12 digits>.jsonl``. Every
:meth:`AuditWriter.start` opens a new segment whose first record continues the
chain of the instance's last segment; a torn last line there (a crash in the
middle of a write) is cut off first.

An ``append`` returns once its record is written and fsynced. With
``fsync="batch"`` the appends that arrive while one write is in flight share
the next write and fsync; with ``"always"`` each record has its own.

When a write or fsync fails, every waiting append raises
:class:`AuditUnavailable` and the writer is *failed*: its chain head goes back
to the last durable record (the seqs of the failed records are reused) and the
segment is truncated back to the end of that record. The next ``append`` or
:meth:`AuditWriter.probe` reopens the segment, truncates it again, checks that
it still ends with the last durable record and carries on. If the segment is
gone or no longer ends with that record, a new segment continues the chain
from the last durable record and an error is logged: ``verify`` will show the
break. Calling :meth:`AuditWriter.start` instead rescans the disk like a
restart: a half record is cut as a torn line, but whole records of the failed
batch that could not be cut back stay in the chain (their appends had failed).
Logs name files, counts and errno codes only, never record content.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from gateway.audit_format import (
    GENESIS,
    clear_fields,
    mac_of,
    record_body,
    record_mac,
    sealed_aad,
    segment_paths,
)
from gateway.audit_ports import AuditUnavailable, HeadTracker, SealingKeys
from gateway.audit_segment import CorruptSegment, SegmentFiles, close_quietly, write_batch
from gateway.audit_verify import VerifyResult, verify_chain, verify_segment
from gateway.clock import Clock, SystemClock, rfc3339
from gateway.crypto import KEY_BYTES, BlindIndex, FieldCipher

__all__ = [
    "FSYNC_MODES",
    "GENESIS",
    "AuditUnavailable",
    "AuditWriter",
    "VerifyResult",
    "record_mac",
    "sealed_aad",
    "segment_paths",
    "verify_chain",
    "verify_segment",
]

log = logging.getLogger(__name__)

FSYNC_MODES: Final = ("batch", "always")
_INSTANCE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_BATCH: Final = 8192


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return type(exc).__name__


# -- the writer -----------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    seq: int
    mac: str
    line: bytes
    done: asyncio.Future[None]


class AuditWriter:
    """Appends records to this instance's segment; see the module docstring.

    States: ``idle`` (not started), ``open``, ``failed``, ``closed``. Call
    :meth:`start` before the first :meth:`append`."""

    def __init__(
        self,
        directory: Path,
        *,
        instance_id: str,
        seal_key: bytes | None = None,
        chain_key: bytes,
        fsync: str = "batch",
        key_id: str = "k1",
        clock: Clock | None = None,
        tracker: HeadTracker | None = None,
        keys: SealingKeys | None = None,
        index: BlindIndex | None = None,
    ) -> None:
        """Records are sealed under ``seal_key`` (as ``key_id``), or, with
        ``keys``, under its current key and per-owner keys. ``index`` is the
        blind index that callers hash numbers and borrowers with."""
        if not _INSTANCE.fullmatch(instance_id):
            raise ValueError("instance_id must be 1-64 characters of A-Z, a-z, 0-9, _ and -")
        if fsync not in FSYNC_MODES:
            raise ValueError(f"fsync must be one of {', '.join(FSYNC_MODES)}")
        if not isinstance(chain_key, bytes) or len(chain_key) != KEY_BYTES:
            raise ValueError(f"chain key must be {KEY_BYTES} bytes")
        if (seal_key is None) == (keys is None):
            raise ValueError("give either seal_key or keys")
        self._files = SegmentFiles(Path(directory), instance_id, chain_key)
        self._instance = instance_id
        self._cipher = None if seal_key is None else FieldCipher(seal_key, key_id)
        self._keys = keys
        self.index = index
        self._chain_key = chain_key
        self._batch_max = 1 if fsync == "always" else _MAX_BATCH
        self._clock: Clock = clock or SystemClock()
        self._tracker = tracker
        self._tracking = False
        self._state = "idle"
        self._fd: int | None = None
        self._path: Path | None = None
        self._seq, self._mac = 0, GENESIS  # head as handed out, durable or not
        self._good_seq, self._good_mac, self._good_end = 0, GENESIS, 0  # last durable record
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._reopen_lock = asyncio.Lock()
        # told (seconds, ok) after each append: the gateway's audit metrics
        self.on_append: Callable[[float, bool], None] | None = None

    @property
    def healthy(self) -> bool:
        return self._state == "open"

    @property
    def segment(self) -> Path | None:
        """The segment being written."""
        return self._path

    @property
    def durable_seq(self) -> int:
        """The seq of the last record known to be on disk."""
        return self._good_seq

    # -- life cycle -------------------------------------------------------------

    async def start(self) -> None:
        """Open a new segment that continues the instance's chain."""
        if self._state == "open":
            await self.close()
        await self._drain()
        old, self._fd, self._state = self._fd, None, "idle"
        try:
            fd, path, seq, mac = await asyncio.to_thread(self._files.open_next, old)
        except OSError as exc:
            raise AuditUnavailable(f"cannot open the audit log ({_why(exc)})") from exc
        except CorruptSegment as exc:
            raise AuditUnavailable(str(exc)) from exc
        await self._connect(fd, seq, mac)
        self._fd, self._path, self._state = fd, path, "open"
        self._seq, self._mac = self._good_seq, self._good_mac = seq, mac
        self._good_end = 0

    async def _connect(self, fd: int, seq: int, mac: str) -> None:
        """Load the current key and register the chain; on failure close ``fd``."""
        try:
            if self._keys is not None:
                self._cipher = await self._keys.current()
            if self._tracker is not None:
                await self._tracker.register()
        except AuditUnavailable:
            await asyncio.to_thread(close_quietly, fd)
            raise
        if self._tracker is not None:
            self._tracker.begin(seq, mac)
            self._tracking = True

    async def close(self) -> None:
        """Write what is pending, then close. Safe to call twice."""
        if self._state == "closed":
            return
        self._state = "closed"  # refuse new appends while draining
        await self._drain()
        fd, self._fd = self._fd, None
        if fd is not None:
            await asyncio.to_thread(close_quietly, fd)
        if self._tracker is not None and self._tracking:
            self._tracking = False
            await self._tracker.finish()

    async def probe(self) -> bool:
        """True when appends can be written; a failed writer tries to reopen."""
        if self._state == "failed":
            async with self._reopen_lock:
                if self._state == "failed":
                    await self._reopen()
        return self._state == "open"

    async def _drain(self) -> None:
        while (task := self._flusher) is not None:
            await asyncio.wait([task])

    async def _reopen(self) -> None:
        old, self._fd = self._fd, None
        if self._path is None:
            return
        head = (self._path, self._good_end, self._good_seq, self._good_mac)
        try:
            self._fd, self._path, self._good_end = await asyncio.to_thread(
                self._files.reopen, old, *head
            )
        except OSError as exc:
            log.error("audit: log still unavailable (%s)", _why(exc))
            return
        if self._state != "failed":  # closed meanwhile
            fd, self._fd = self._fd, None
            if fd is not None:
                await asyncio.to_thread(close_quietly, fd)
            return
        self._state = "open"
        log.warning("audit: log writable again at seq %d", self._good_seq)

    # -- appending --------------------------------------------------------------

    async def append(
        self,
        event: str,
        *,
        message_id: str | None,
        clear: Mapping[str, str | int | None] | None = None,
        sealed: Mapping[str, Any] | None = None,
        owner: str | None = None,
    ) -> int:
        """Add one record; return its seq once it is on disk. ``sealed`` is
        sealed under ``owner``'s own key when an owner is given (and the writer
        has ``keys``), else under the current key.

        Raises :class:`AuditUnavailable` when it cannot be made durable. If the
        caller is cancelled while waiting, the record is written all the same."""
        started = time.perf_counter()
        try:
            seq = await self._append(event, message_id, clear, sealed, owner)
        except AuditUnavailable:
            if self.on_append is not None:
                self.on_append(time.perf_counter() - started, False)
            raise
        if self.on_append is not None:
            self.on_append(time.perf_counter() - started, True)
        return seq

    async def _append(
        self,
        event: str,
        message_id: str | None,
        clear: Mapping[str, str | int | None] | None,
        sealed: Mapping[str, Any] | None,
        owner: str | None,
    ) -> int:
        if self._state == "failed":
            await self.probe()
        cipher = self._cipher
        if owner is not None and self._keys is not None and sealed is not None:
            cipher = await self._keys.for_owner(owner)
        if self._state != "open":
            raise AuditUnavailable(f"audit log is {self._state}")
        entry = self._build(event, message_id, clear, sealed, cipher)
        self._pending.append(entry)
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        await entry.done  # cancelling the wait does not withdraw the record
        return entry.seq

    def _build(
        self,
        event: str,
        message_id: str | None,
        clear: Mapping[str, str | int | None] | None,
        sealed: Mapping[str, Any] | None,
        cipher: FieldCipher | None,
    ) -> _Pending:
        if not isinstance(event, str) or not event:
            raise ValueError("event must be a non-empty string")
        if message_id is not None and not isinstance(message_id, str):
            raise TypeError("message_id must be a string or None")
        seq = self._seq + 1
        aad = sealed_aad(seq, self._instance, event, message_id)
        if sealed is not None and cipher is None:
            raise AuditUnavailable("no audit data key loaded")
        token = (
            None if sealed is None or cipher is None else cipher.seal_json(dict(sealed), aad=aad)
        )
        data = record_body(
            seq,
            rfc3339(self._clock.now()),
            self._instance,
            event,
            message_id,
            clear_fields(clear),
            token,
            self._mac,
        )
        mac = mac_of(self._chain_key, data)
        self._seq, self._mac = seq, mac
        line = data[:-1] + b',"mac":"' + mac.encode("ascii") + b'"}\n'
        return _Pending(seq, mac, line, asyncio.get_running_loop().create_future())

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._batch_max]
                del self._pending[: len(batch)]
                data = b"".join(entry.line for entry in batch)
                try:
                    await asyncio.to_thread(write_batch, self._fd, data, self._good_end)
                except BaseException as exc:
                    self._fail(exc, batch)
                    if not isinstance(exc, OSError):
                        raise
                    return
                self._good_seq, self._good_mac = batch[-1].seq, batch[-1].mac
                self._good_end += len(data)
                if self._tracker is not None:
                    self._tracker.advanced(self._good_seq, self._good_mac)
                for entry in batch:
                    if not entry.done.done():
                        entry.done.set_result(None)
        finally:
            self._flusher = None

    def _fail(self, exc: BaseException, batch: list[_Pending]) -> None:
        waiting, self._pending = batch + self._pending, []
        if self._state != "closed":
            self._state = "failed"
        self._seq, self._mac = self._good_seq, self._good_mac
        why = _why(exc)
        log.error("audit: write failed (%s); %d appends rejected", why, len(waiting))
        for entry in waiting:
            if not entry.done.done():
                entry.done.set_exception(AuditUnavailable(f"audit write failed ({why})"))
