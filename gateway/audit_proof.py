"""``lendsms audit verify``: prove the whole audit log untampered, or name the
first bad record and why.

Every chain found on disk or in the store's registry is checked:

- its segments, record by record (:func:`gateway.audit_verify.verify_segment`):
  mac, link to the previous record, seq, instance, canonical bytes;
- its signed checkpoints, from the file beside the segments and the store's
  copies: each signature, and the record at each checkpointed seq must carry
  the checkpoint's mac; a checkpoint beyond the last record means the tail
  was cut off;
- a ``close`` (or ``recovered``) checkpoint at the last record marks a chain
  whose writer is gone: nothing may follow it. A chain without one is live or crashed,
  so an unfinished last line is only a note;
- a ``pruned`` checkpoint is where a pruned chain now starts;
- a registered chain without segments is missing; a chain with records that
  is not registered is foreign.

The store's checkpoints are read first, then the files, then the segments, so
a writer appending meanwhile never looks like a cut tail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.audit_checkpoint import (
    CLOSING,
    Checkpoint,
    checkpoint_instances,
    checkpoint_path,
    parse_checkpoint,
    read_checkpoint_file,
)
from gateway.audit_format import GENESIS, SEGMENT_NAME, segment_paths, unpruned
from gateway.audit_verify import INCOMPLETE, verify_segment
from gateway.store.base import AuditChain


@dataclass(frozen=True, slots=True)
class Flaw:
    instance: str
    seq: int | None  # the first bad record, when there is one
    reason: str
    where: str | None = None

    def __str__(self) -> str:
        record = f"record {self.seq}" if self.seq is not None else "chain"
        where = f" ({self.where})" if self.where else ""
        return f"{self.instance} {record}{where}: {self.reason}"


@dataclass(slots=True)
class ChainReport:
    instance: str
    records: int = 0
    checkpoints: set[Checkpoint] = field(default_factory=set)
    closed: bool = False
    base_seq: int = 0  # pruned up to here
    flaws: list[Flaw] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LogReport:
    chains: tuple[ChainReport, ...]

    @property
    def ok(self) -> bool:
        return not any(c.flaws for c in self.chains)

    @property
    def records(self) -> int:
        return sum(c.records for c in self.chains)

    @property
    def checkpoints(self) -> int:
        return sum(len(c.checkpoints) for c in self.chains)

    @property
    def flaws(self) -> list[Flaw]:
        return [f for c in self.chains for f in c.flaws]

    @property
    def notes(self) -> list[str]:
        return [f"{c.instance}: {n}" for c in self.chains for n in c.notes]


def verify_log(
    directory: Path,
    chain_key: bytes,
    public: bytes,
    registered: Sequence[AuditChain],
    stored_checkpoints: Iterable[str],
) -> LogReport:
    """Check every chain; ``registered`` and ``stored_checkpoints`` come from the
    store, read before this is called."""
    stored: dict[str, list[str]] = {}
    for line in stored_checkpoints:
        cp = parse_checkpoint(line)
        stored.setdefault(cp.instance if cp else "?", []).append(line)
    names = [c.instance for c in registered]
    on_disk = {
        m["instance"]
        for p in directory.glob("audit-*.jsonl")
        if (m := SEGMENT_NAME.fullmatch(p.name))
    }
    others = sorted((on_disk | set(checkpoint_instances(directory)) | set(stored)) - set(names))
    known = set(names)
    reports = [
        _verify_chain(directory, name, chain_key, public, name in known, stored.get(name, []))
        for name in (*names, *others)
    ]
    return LogReport(tuple(reports))


def _verify_chain(
    directory: Path,
    instance: str,
    chain_key: bytes,
    public: bytes,
    registered: bool,
    stored: list[str],
) -> ChainReport:
    report = ChainReport(instance)
    _collect_checkpoints(report, directory, public, stored)
    if report.flaws:
        return report
    cps = sorted(report.checkpoints, key=lambda c: (c.seq, c.reason != "close"))
    pruned = max((c for c in cps if c.reason == "pruned"), key=lambda c: c.seq, default=None)
    base_seq, base_mac = (pruned.seq, pruned.mac) if pruned else (0, GENESIS)
    report.base_seq = base_seq
    segments = unpruned(segment_paths(directory, instance), base_seq)
    if not segments:
        if (registered or cps) and not (pruned and pruned.seq >= cps[-1].seq):
            what = "registered" if registered else "checkpointed"
            report.flaws.append(Flaw(instance, None, f"{what}, but its segments are missing"))
        return report
    marks: dict[int, str | None] = {c.seq: None for c in cps if c.seq > base_seq}
    last, torn = _walk(report, segments, chain_key, base_seq, base_mac, marks)
    if report.flaws:
        return report
    flaws = []
    for cp in cps:
        if cp.seq < base_seq or cp is pruned:
            continue
        if cp.seq > last:
            reason = (f"missing: the log ends at seq {last}, but a signed {cp} covers "
                      f"seq {cp.seq} (tail cut off or deleted)")  # fmt: skip
            flaws.append(Flaw(instance, last + 1, reason))
        elif (marks.get(cp.seq) if cp.seq > base_seq else base_mac) != cp.mac:
            flaws.append(Flaw(instance, cp.seq, f"the record differs from its signed {cp}"))
    report.closed = any(c.reason in CLOSING and c.seq == last for c in cps)
    if torn and report.closed:
        flaws.append(Flaw(instance, last + 1, "an unfinished line follows the closing checkpoint"))
    elif torn:
        report.notes.append("unfinished last line (a writer is live, or crashed mid-write)")
    if not registered and report.records:
        flaws.append(Flaw(instance, None, "has records but is not registered in the store"))
    report.flaws.extend(sorted(flaws, key=lambda f: -1 if f.seq is None else f.seq)[:1])
    return report


def _collect_checkpoints(
    report: ChainReport, directory: Path, public: bytes, stored: list[str]
) -> None:
    instance = report.instance
    found: list[tuple[Checkpoint | None, str]] = [
        (parse_checkpoint(line), "a checkpoint copy in the store") for line in stored
    ]
    path = checkpoint_path(directory, instance)
    lines = list(read_checkpoint_file(path))
    for entry in lines:
        where = f"{path.name} line {entry.number}"
        if not entry.complete and entry is lines[-1]:
            report.notes.append(f"unfinished last line in {path.name}")
            continue
        found.append((entry.checkpoint, where))
    for cp, where in found:
        if cp is None:
            report.flaws.append(Flaw(instance, None, "not a checkpoint", where))
        elif cp.instance != instance:
            report.flaws.append(Flaw(instance, None, "a checkpoint of another chain", where))
        elif not cp.valid(public):
            report.flaws.append(Flaw(instance, None, f"bad signature on {cp}", where))
        else:
            report.checkpoints.add(cp)
    del report.flaws[1:]


def _walk(
    report: ChainReport,
    segments: list[Path],
    chain_key: bytes,
    base_seq: int,
    base_mac: str,
    marks: dict[int, str | None],
) -> tuple[int, bool]:
    """Verify the segments in order; (last seq, whether the last line is unfinished)."""
    last, head = base_seq, base_mac
    for i, path in enumerate(segments):
        match = SEGMENT_NAME.fullmatch(path.name)
        named = int(match["first"]) if match else last + 1
        if named != last + 1 and path.stat().st_size:
            gap = (f"records {last + 1}-{named - 1} are missing" if named > last + 1
                   else f"{path.name} repeats records from seq {named}")  # fmt: skip
            report.flaws.append(Flaw(report.instance, last + 1, gap, path.name))
            return last, False
        result = verify_segment(path, chain_key, prev=head, marks=marks)
        report.records += result.records
        if result.records:
            last, head = result.last_seq or last, result.head
        if not result.ok:
            if result.reason == INCOMPLETE and i == len(segments) - 1:
                return last, True
            where = f"{path.name} line {result.bad_line}"
            report.flaws.append(
                Flaw(report.instance, result.bad_seq, result.reason or "bad record", where)
            )
            return last, False
    return last, False
