"""Reading audit segments back: every record's mac, its link to the one before,
its seq and instance, and its exact bytes.

:func:`verify_segment` checks one file, :func:`verify_chain` one instance's
files from GENESIS. The whole log (every chain, the registry in the store, the
signed checkpoints) is checked by :mod:`gateway.audit_proof`.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

from gateway.audit_format import (
    GENESIS,
    SEGMENT_NAME,
    canonical_line,
    check_record,
    parse_record,
    segment_paths,
)

INCOMPLETE = "incomplete last line"


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


def verify_segment(
    path: Path,
    chain_key: bytes,
    *,
    prev: str | None = None,
    marks: MutableMapping[int, str | None] | None = None,
) -> VerifyResult:
    """Recompute every mac and link of one segment. ``prev``, when known, is the
    head of the previous segment; a chain that starts at seq 1 starts at GENESIS.
    ``marks`` maps seqs to fill in with their records' macs (for checkpoints)."""
    match = SEGMENT_NAME.fullmatch(path.name)
    named_first = int(match["first"]) if match else None
    instance = match["instance"] if match else None
    count, first, last, first_prev, head = 0, None, None, None, prev or GENESIS

    def bad(line: int, seq: int | None, reason: str) -> VerifyResult:
        return VerifyResult(False, count, first, last, first_prev, head, seq, line, reason, path)

    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, 1):
            want = named_first if last is None else last + 1
            if not raw.endswith(b"\n"):  # a crash mid-write, or a cut
                return bad(line_no, want, INCOMPLETE)
            record = parse_record(raw)
            if record is None:
                return bad(line_no, want, "not valid JSON")
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
            elif raw != canonical_line(record):
                reason = "bytes differ from the record's canonical form"
            if reason is not None:
                return bad(line_no, seq, reason)
            if count == 0:
                first, first_prev = seq, record["prev"]
            count, last, head = count + 1, seq, record["mac"]
            if marks is not None and seq in marks:
                marks[seq] = head
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
