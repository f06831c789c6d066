"""Reading the audit log back for people: the records of one message, the
messages sent to a number or a borrower (by blind-index hash, nothing is
decrypted), the records of a time range, each with its sealed fields opened
by the key ring.

Reading never repairs or skips silently: a line that is not a record is
counted and reported (``audit verify`` says why).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.audit_format import SEGMENT_NAME, parse_record, sealed_aad, segment_paths
from gateway.crypto import DecryptionError, token_key_id
from gateway.keyring import ErasedKey, KeyRing

ERASED = "erased"


class UnreadableRecord(Exception):
    """A sealed field that does not open under its key (altered: run verify)."""


@dataclass(slots=True)
class Scan:
    """Records that matched, in (ts, instance, seq) order, and lines skipped."""

    records: list[dict[str, Any]] = field(default_factory=list)
    unreadable: int = 0


def instances(directory: Path) -> list[str]:
    names = set()
    for path in Path(directory).glob("audit-*.jsonl"):
        match = SEGMENT_NAME.fullmatch(path.name)
        if match:
            names.add(match["instance"])
    return sorted(names)


def iter_lines(directory: Path) -> Iterator[dict[str, Any] | None]:
    """Every line of every segment as a record, or None when it is not one."""
    for instance in instances(directory):
        for path in segment_paths(directory, instance):
            with path.open("rb") as fh:
                for raw in fh:
                    record = parse_record(raw)
                    yield record if record is not None and _shaped(record) else None


def _shaped(record: dict[str, Any]) -> bool:
    return (
        type(record.get("seq")) is int
        and isinstance(record.get("ts"), str)
        and isinstance(record.get("instance"), str)
        and isinstance(record.get("event"), str)
        and isinstance(record.get("clear"), dict)
        and (record.get("sealed") is None or isinstance(record["sealed"], str))
    )


def scan(directory: Path, match: Callable[[dict[str, Any]], bool]) -> Scan:
    found = Scan()
    for record in iter_lines(directory):
        if record is None:
            found.unreadable += 1
        elif match(record):
            found.records.append(record)
    found.records.sort(key=lambda r: (when(r), r["instance"], r["seq"]))
    return found


def when(record: dict[str, Any]) -> datetime:
    """A record's time (its ``ts`` text, parsed; a malformed one sorts first)."""
    try:
        parsed = datetime.fromisoformat(record["ts"])
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def for_message(message_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda r: r.get("message_id") == message_id


def accepted_with(key: str, hashes: set[str]) -> Callable[[dict[str, Any]], bool]:
    """``accepted`` records whose clear field ``key`` is one of ``hashes``."""
    return lambda r: r["event"] == "accepted" and r["clear"].get(key) in hashes


def between(since: datetime | None, until: datetime | None) -> Callable[[dict[str, Any]], bool]:
    """Records with ``since <= ts < until``."""
    return lambda r: (since is None or when(r) >= since) and (until is None or when(r) < until)


async def opened(record: dict[str, Any], keys: KeyRing) -> dict[str, Any]:
    """The record for a reader: ``data`` holds the opened sealed fields (or
    ``"erased"``); the mac and link are left out. Raises
    :class:`~gateway.keyring.MissingKey` naming a key id that is not there."""
    token = record.get("sealed")
    data: Any = None
    if token is not None:
        try:
            cipher = await keys.cipher(token_key_id(token))
            aad = sealed_aad(
                record["seq"], record["instance"], record["event"], record["message_id"]
            )
            data = cipher.open_json(token, aad=aad)
        except ErasedKey:
            data = ERASED
        except DecryptionError as exc:
            where = f"{record['instance']} record {record['seq']}"
            raise UnreadableRecord(f"{where}: {exc}; run lendsms audit verify") from None
    names = ("seq", "ts", "instance", "event", "message_id", "clear")
    return {**{name: record.get(name) for name in names}, "data": data}
