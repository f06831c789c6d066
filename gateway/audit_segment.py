"""Audit segments on disk: the blocking file work of
:class:`gateway.audit.AuditWriter` (which runs it in threads): creating,
continuing and reopening segments, cutting torn tails, group writes.

The layout and the failure rules are described in :mod:`gateway.audit`; the
record format is :mod:`gateway.audit_format`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
from pathlib import Path
from typing import Final

from gateway.audit_format import (
    GENESIS,
    check_record,
    parse_record,
    segment_name,
    segment_paths,
)

log = logging.getLogger("gateway.audit")

_CHUNK: Final = 64 * 1024
_OPEN: Final = os.O_RDWR | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
sync = getattr(os, "fdatasync", os.fsync)


def hold(fd: int) -> None:
    """Lock the segment a writer appends to for as long as it is open: a
    process that finds the lock free knows no live writer has that segment
    (``gateway.audit_recover``). The kernel drops it when the writer dies."""
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


class CorruptSegment(Exception):
    """A segment's last record does not verify; the writer will not continue it."""


# -- file work (blocking) ------------------------------------------------------


def rfind_newline(fd: int, end: int) -> int:
    """Offset of the last newline before ``end``, or -1."""
    while end > 0:
        start = max(0, end - _CHUNK)
        hit = os.pread(fd, end - start, start).rfind(b"\n")
        if hit >= 0:
            return start + hit
        end = start
    return -1


def last_line(fd: int, end: int) -> tuple[int, bytes]:
    """The line that ends (with its newline) at ``end``, and where it starts."""
    start = rfind_newline(fd, end - 1) + 1
    return start, os.pread(fd, end - start, start)


def repair_tail(fd: int, name: str, chain_key: bytes) -> tuple[int, str] | None:
    """Cut a torn last line; the last record's (seq, mac), or None if empty."""
    size = os.fstat(fd).st_size
    end = rfind_newline(fd, size) + 1
    if end < size:
        log.warning("audit: cutting %d bytes of a torn last line from %s", size - end, name)
    tail = None
    for attempt in range(2):
        if end == 0:
            break
        start, raw = last_line(fd, end)
        record = parse_record(raw)
        if record is None and attempt == 0:  # torn, yet ending in a newline
            log.warning("audit: cutting a last line that is not JSON from %s", name)
            end = start
            continue
        if record is None or check_record(record, chain_key) is not None:
            raise CorruptSegment(f"{name}: the last record does not verify; run audit verify")
        tail = (record["seq"], record["mac"])
        break
    if end < size:
        os.ftruncate(fd, end)
        sync(fd)
    return tail


def close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_batch(fd: int | None, data: bytes, good_end: int) -> None:
    """Append ``data`` and fsync; on failure cut the file back to ``good_end``."""
    if fd is None:
        raise OSError(errno.EBADF, "audit segment is not open")
    try:
        write_all(fd, data)
        sync(fd)
    except OSError:
        with contextlib.suppress(OSError):  # leave no half record behind
            os.ftruncate(fd, good_end)
        raise


class SegmentFiles:
    """Creating, continuing and reopening one instance's segments."""

    def __init__(self, directory: Path, instance_id: str, chain_key: bytes) -> None:
        self.directory, self.instance, self._chain_key = directory, instance_id, chain_key

    def create(self, first_seq: int) -> tuple[int, Path]:
        path = self.directory / segment_name(self.instance, first_seq)
        fd = os.open(path, _OPEN | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            hold(fd)
            os.fchmod(fd, 0o600)
            dir_fd = os.open(self.directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                os.fsync(dir_fd)  # make the new name durable
            finally:
                os.close(dir_fd)
        except OSError:
            os.close(fd)
            raise
        return fd, path

    def open_next(self, old: int | None) -> tuple[int, Path, int, str]:
        """A new segment continuing the chain: (fd, path, last seq, last mac)."""
        if old is not None:
            close_quietly(old)
        if not self.directory.is_dir():
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)  # whatever the umask
        seq, mac = 0, GENESIS
        for path in reversed(segment_paths(self.directory, self.instance)):
            fd = os.open(path, _OPEN)
            try:
                tail = repair_tail(fd, path.name, self._chain_key)
            finally:
                os.close(fd)
            if tail is not None:
                seq, mac = tail
                break
            log.warning("audit: removing empty segment %s", path.name)
            path.unlink()
        return (*self.create(seq + 1), seq, mac)

    def reopen(
        self, old: int | None, path: Path, end: int, seq: int, mac: str
    ) -> tuple[int, Path, int]:
        """After a failure: cut ``path`` back to ``end`` where record ``seq`` (with
        ``mac``) ends, or, if it no longer ends so, start a new segment after it."""
        if old is not None:
            close_quietly(old)
        try:
            fd = os.open(path, _OPEN)
        except FileNotFoundError:
            fd = -1
        if fd >= 0:
            try:
                if _ends_with(fd, end, mac):
                    hold(fd)
                    os.ftruncate(fd, end)
                    sync(fd)
                    return fd, path, end
            except OSError:
                os.close(fd)
                raise
            os.close(fd)
        fd, new_path = self.create(seq + 1)
        log.error(
            "audit: %s no longer ends with record %d; continuing in %s",
            path.name,
            seq,
            new_path.name,
        )
        return fd, new_path, 0


def _ends_with(fd: int, end: int, mac: str) -> bool:
    if os.fstat(fd).st_size < end:
        return False
    if end == 0:
        return True
    record = parse_record(last_line(fd, end)[1])
    return record is not None and record.get("mac") == mac
