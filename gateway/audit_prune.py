"""Retention: ``lendsms audit prune --older-than DAYS``.

Only whole segments go, only from the start of a chain (a chain keeps one
unbroken run of records), only when every record in them is older than the
cut-off, and never the segment a live writer may still append to (a chain's
last segment goes only once its writer closed it). Nothing is pruned from a
log that does not verify: that would destroy the evidence.

What was removed is recorded twice before any file is deleted: a ``pruned``
checkpoint of the chain (signed, beside the segments and in the store), which
is where ``verify`` lets the chain start from now on, and an ``audit_pruned``
record in the pruning process's own chain (macs, and its closing checkpoint
signs it).
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.audit import AuditWriter
from gateway.audit_checkpoint import append_checkpoint, checkpoint_path, sign_checkpoint
from gateway.audit_format import first_seq, segment_paths, unpruned
from gateway.audit_proof import ChainReport, LogReport
from gateway.audit_read import when
from gateway.audit_segment import last_line
from gateway.clock import rfc3339
from gateway.crypto import SigningKey
from gateway.store.base import AuditStore


@dataclass(frozen=True, slots=True)
class Cut:
    """The segments to remove from the start of one chain."""

    instance: str
    segments: tuple[Path, ...]
    first_seq: int
    last_seq: int
    last_mac: str
    newest: datetime  # the newest record removed

    @property
    def records(self) -> int:
        return self.last_seq - self.first_seq + 1


def _last_record(path: Path) -> dict[str, Any] | None:
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        return json.loads(last_line(fd, size)[1]) if size else None
    finally:
        os.close(fd)


def plan(directory: Path, chain: ChainReport, cutoff: datetime) -> Cut | None:
    """The prefix of a verified ``chain``'s segments (after what was pruned
    before) whose records are all older than ``cutoff``; None when none is."""
    segments = unpruned(segment_paths(directory, chain.instance), chain.base_seq)
    segments = [p for p in segments if p.stat().st_size]
    if not chain.closed and segments:
        segments = segments[:-1]  # a live writer may still append to it
    taken: list[Path] = []
    last: dict[str, Any] | None = None
    for path in segments:
        record = _last_record(path)
        if record is None or when(record) >= cutoff:
            break
        taken.append(path)
        last = record
    if not taken or last is None:
        return None
    return Cut(
        chain.instance,
        tuple(taken),
        max(first_seq(taken[0]), chain.base_seq + 1),
        int(last["seq"]),
        str(last["mac"]),
        when(last),
    )


async def prune(
    directory: Path,
    report: LogReport,
    cutoff: datetime,
    *,
    audit: AuditWriter,
    store: AuditStore,
    signer: SigningKey,
    now: datetime,
    actor: str,
) -> list[Cut]:
    """Remove what :func:`plan` allows from every chain of a verified log. For
    each chain, the ``audit_pruned`` record and the signed ``pruned``
    checkpoint (file and store) are durable before its files are deleted."""
    if not report.ok:
        raise ValueError("prune only a log that verifies")
    cuts = [c for chain in report.chains if (c := plan(directory, chain, cutoff)) is not None]
    for cut in cuts:
        await audit.append(
            "audit_pruned",
            message_id=None,
            clear={
                "actor": actor, "instance": cut.instance, "first_seq": cut.first_seq,
                "last_seq": cut.last_seq, "records": cut.records, "head": cut.last_mac,
                "segments": len(cut.segments), "newest": rfc3339(cut.newest),
                "cutoff": rfc3339(cutoff),
            },
        )  # fmt: skip
        checkpoint = sign_checkpoint(
            signer, cut.instance, cut.last_seq, cut.last_mac, rfc3339(now), "pruned"
        )
        path = checkpoint_path(directory, cut.instance)
        await asyncio.to_thread(append_checkpoint, path, checkpoint)
        await store.add_audit_checkpoint(cut.instance, checkpoint.seq, checkpoint.line())
        await asyncio.to_thread(remove, cut)
    return cuts


def remove(cut: Cut) -> None:
    """Blocking: delete the segments, then make the deletion durable."""
    for path in cut.segments:
        path.unlink()
    if cut.segments:
        fd = os.open(cut.segments[0].parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
