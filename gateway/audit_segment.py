"""Audit segments on disk: the record format, verification, and the blocking
file work of :class:`gateway.audit.AuditWriter` (which runs it in threads).

The layout and the failure rules are described in :mod:`gateway.audit`;
``lendsms audit verify`` builds on :func:`verify_segment` and :func:`verify_chain`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from gateway.crypto import constant_time_equals

log = logging.getLogger("gateway.audit")

GENESIS: Final = "0" * 64
FIELDS: Final = ("seq", "ts", "instance", "event", "message_id", "clear", "sealed", "prev")
_ALL_FIELDS: Final = frozenset((*FIELDS, "mac"))
_MAC_DOMAIN: Final = b"lendsms-audit-v1\n"
_SEGMENT = re.compile(r"audit-(?P<instance>[A-Za-z0-9_-]{1,64})-(?P<first>\d{12})\.jsonl")
_CHUNK: Final = 64 * 1024
_OPEN: Final = os.O_RDWR | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
sync = getattr(os, "fdatasync", os.fsync)


class CorruptSegment(Exception):
    """A segment's last record does not verify; the writer will not continue it."""


def segment_name(instance_id: str, first_seq: int) -> str:
    return f"audit-{instance_id}-{first_seq:012d}.jsonl"


def segment_paths(directory: Path, instance_id: str) -> list[Path]:
    """The instance's segments, oldest first."""
    found = []
    for path in Path(directory).glob(f"audit-{instance_id}-*.jsonl"):
        match = _SEGMENT.fullmatch(path.name)
        if match and match["instance"] == instance_id:
            found.append((int(match["first"]), path))
    return [path for _, path in sorted(found)]


def sealed_aad(seq: int, instance: str, event: str, message_id: str | None) -> bytes:
    """The associated data that binds a record's sealed blob to the record."""
    return _JSON.encode([seq, instance, event, message_id]).encode("ascii")


def canonical(body: Mapping[str, Any]) -> bytes:
    return _JSON.encode(body).encode("ascii")


def mac_of(chain_key: bytes, data: bytes) -> str:
    return hmac.new(chain_key, _MAC_DOMAIN + data, hashlib.sha256).hexdigest()


def record_mac(chain_key: bytes, record: Mapping[str, Any]) -> str:
    """The mac a record should carry (over every field but ``mac``)."""
    body = {name: record[name] for name in FIELDS}
    body["clear"] = dict(sorted(record["clear"].items()))
    return mac_of(chain_key, canonical(body))


def parse_record(raw: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def check_record(record: dict[str, Any], chain_key: bytes) -> str | None:
    """Why a parsed record is not well-formed and authentic, or None."""
    if set(record) != _ALL_FIELDS:
        return "missing or unexpected fields"
    types_ok = (
        type(record["seq"]) is int
        and isinstance(record["clear"], dict)
        and isinstance(record["prev"], str)
        and isinstance(record["mac"], str)
    )
    if not types_ok:
        return "malformed field"
    try:
        expected = record_mac(chain_key, record)
    except (TypeError, ValueError):
        return "malformed field"
    if not constant_time_equals(expected, record["mac"]):
        return "mac mismatch (record altered or wrong key)"
    return None


def clear_fields(clear: Mapping[str, str | int | None] | None) -> dict[str, str | int | None]:
    out: dict[str, str | int | None] = {}
    for key, value in sorted((clear or {}).items()):
        if not isinstance(key, str) or not (value is None or isinstance(value, str | int)):
            raise TypeError("clear fields must map str to str, int or None")
        out[key] = value
    return out


# -- verification ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    records: int
    first_seq: int | None
    last_seq: int | None
    first_prev: str | None  # the link to the previous segment
    head: str  # mac of the last good record
    bad_seq: int | None = None
    bad_line: int | None = None
    reason: str | None = None
    path: Path | None = None


def verify_segment(path: Path, chain_key: bytes, *, prev: str | None = None) -> VerifyResult:
    """Recompute every mac and link of one segment. ``prev``, when known, is the
    head of the previous segment; a chain that starts at seq 1 starts at GENESIS."""
    match = _SEGMENT.fullmatch(path.name)
    named_first = int(match["first"]) if match else None
    instance = match["instance"] if match else None
    count, first, last, first_prev, head = 0, None, None, None, prev or GENESIS

    def bad(line: int, seq: int | None, reason: str) -> VerifyResult:
        return VerifyResult(False, count, first, last, first_prev, head, seq, line, reason, path)

    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, 1):
            want = named_first if last is None else last + 1
            record = parse_record(raw)
            if record is None:
                return bad(line_no, want, "not valid JSON")
            if not raw.endswith(b"\n"):
                return bad(line_no, want, "incomplete last line")
            reason = check_record(record, chain_key)
            if reason is not None:  # its own seq cannot be trusted
                claimed = record["seq"] if type(record.get("seq")) is int else None
                return bad(line_no, want if want is not None else claimed, reason)
            seq = record["seq"]
            link = head if count or prev is not None else (GENESIS if seq == 1 else None)
            if want is not None and seq != want:
                reason = f"sequence break: expected {want}"
            elif instance is not None and record["instance"] != instance:
                reason = "instance does not match the segment name"
            elif link is not None and record["prev"] != link:
                reason = "prev does not match the previous record's mac"
            if reason is not None:
                return bad(line_no, seq, reason)
            if count == 0:
                first, first_prev = seq, record["prev"]
            count, last, head = count + 1, seq, record["mac"]
    return VerifyResult(True, count, first, last, first_prev, head, path=path)


def verify_chain(directory: Path, instance_id: str, chain_key: bytes) -> VerifyResult:
    """Verify all segments of an instance as one chain from GENESIS."""
    total, first, last, head = 0, None, None, GENESIS
    for path in segment_paths(directory, instance_id):
        result = verify_segment(path, chain_key, prev=head)
        if not result.ok:
            return result
        if result.records:
            total, head, last = total + result.records, result.head, result.last_seq
            first = first if first is not None else result.first_seq
    return VerifyResult(True, total, first, last, GENESIS if total else None, head)


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
