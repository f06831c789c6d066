"""Retention on real files and a real store: what ``prune`` may remove, the
signed record of what it removed, and a log that still verifies after it;
reading a time range back (export) across chains."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from config.settings import Settings
from gateway.app import open_store
from gateway.audit import AuditWriter
from gateway.audit_checkpoint import checkpoint_path, parse_checkpoint
from gateway.audit_format import segment_paths
from gateway.audit_prune import Cut, prune
from gateway.audit_read import between, scan, when
from gateway.audit_setup import audit_secrets, open_audit_writer, verify_audit_log
from gateway.clock import FakeClock
from gateway.store.base import Store

OLD = datetime(2019, 3, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 28, tzinfo=UTC)


@dataclass
class Log:
    settings: Settings
    store: Store

    async def chain(
        self, instance: str, *runs: tuple[datetime, int], close: bool = True
    ) -> AuditWriter:
        """One segment per run: ``count`` records written at ``at``."""
        writer: AuditWriter | None = None
        for at, count in runs:
            writer = open_audit_writer(self.settings, self.store, instance, clock=FakeClock(at))
            await writer.start()
            for i in range(count):
                await writer.append("accepted", message_id=f"{instance}-{at:%Y}-{i}",
                                    sealed={"to": "+8613812345678"})  # fmt: skip
            if close or (at, count) != runs[-1]:
                await writer.close()
        assert writer is not None
        return writer

    async def prune(self, older_than: timedelta) -> list[Cut]:
        report = await verify_audit_log(self.settings, self.store)
        assert report.ok, report.flaws
        pruner = open_audit_writer(self.settings, self.store, "cli-pruner", kind="cli")
        await pruner.start()
        cuts = await prune(
            self.settings.audit.dir, report, NOW - older_than, audit=pruner, store=self.store,
            signer=audit_secrets(self.settings).signer, now=NOW, actor="tester",
        )  # fmt: skip
        await pruner.close()
        return cuts


@pytest.fixture
async def log(make_settings: Callable[..., Settings]) -> AsyncIterator[Log]:
    settings = make_settings(audit={"checkpoint_records": 4})
    store = open_store(settings)
    await store.open()
    yield Log(settings, store)
    await store.close()


def names(log: Log, instance: str) -> list[str]:
    return [p.name[-17:-6] for p in segment_paths(log.settings.audit.dir, instance)]


async def test_prune_removes_old_closed_segments_and_signs_what_went(log: Log) -> None:
    await log.chain("gw-a", (OLD, 5), (OLD + timedelta(days=30), 3), (NOW, 2))
    await log.chain("gw-b", (OLD, 4))  # closed: all of it may go
    live = await log.chain("gw-c", (OLD, 3), (OLD, 2), close=False)  # its last segment stays

    cuts = await log.prune(timedelta(days=1825))
    got = {c.instance: (c.first_seq, c.last_seq, len(c.segments)) for c in cuts}
    assert got == {"gw-a": (1, 8, 2), "gw-b": (1, 4, 1), "gw-c": (1, 3, 1)}
    assert names(log, "gw-a") == ["00000000009"] and names(log, "gw-b") == []
    assert names(log, "gw-c") == ["00000000004"]

    report = await verify_audit_log(log.settings, log.store)
    assert report.ok, report.flaws
    by_chain = {c.instance: c for c in report.chains}
    assert by_chain["gw-a"].records == 2 and by_chain["gw-a"].base_seq == 8
    assert by_chain["gw-b"].records == 0
    # the signed record of what was removed, in the pruner's own chain
    [pruner_segment] = segment_paths(log.settings.audit.dir, "cli-pruner")
    pruned = [json.loads(line) for line in pruner_segment.read_text().splitlines()]
    assert [r["event"] for r in pruned] == ["audit_pruned"] * 3
    first = next(r["clear"] for r in pruned if r["clear"]["instance"] == "gw-a")
    assert (first["first_seq"], first["last_seq"], first["records"]) == (1, 8, 8)
    assert first["actor"] == "tester" and first["newest"].startswith("2019-03-31")
    lines = checkpoint_path(log.settings.audit.dir, "gw-a").read_text().splitlines()
    cp = parse_checkpoint(lines[-1])
    assert cp is not None and (cp.reason, cp.seq, cp.mac) == ("pruned", 8, first["head"])
    assert cp.line() in await log.store.list_audit_checkpoints()
    await live.close()
    assert (await verify_audit_log(log.settings, log.store)).ok


async def test_nothing_younger_than_the_cutoff_goes(log: Log) -> None:
    await log.chain("gw-a", (NOW - timedelta(days=10), 3), (NOW, 2))
    assert await log.prune(timedelta(days=30)) == []
    assert len(names(log, "gw-a")) == 2


async def test_a_tampered_pruned_region_or_a_forged_base_still_fails(log: Log) -> None:
    await log.chain("gw-a", (OLD, 5), (NOW, 2))
    await log.prune(timedelta(days=1825))
    # the kept segment's first record must link to the signed base
    [segment] = segment_paths(log.settings.audit.dir, "gw-a")
    kept = segment.read_bytes()
    segment.write_bytes(kept.replace(b'"seq":6,', b'"seq":7,', 1))
    report = await verify_audit_log(log.settings, log.store)
    assert not report.ok and report.flaws[0].instance == "gw-a"
    segment.write_bytes(kept)
    # without its pruned checkpoints (file and store) the chain shows the gap
    checkpoint_path(log.settings.audit.dir, "gw-a").unlink()
    with sqlite3.connect(log.settings.store.path) as db:
        db.execute("DELETE FROM audit_checkpoints WHERE instance='gw-a'")
    db.close()
    report = await verify_audit_log(log.settings, log.store)
    assert not report.ok and report.flaws[0].reason == "records 1-5 are missing"


async def test_a_prune_interrupted_before_deleting_leaves_a_valid_log(log: Log) -> None:
    await log.chain("gw-a", (OLD, 5), (NOW, 2))
    first = segment_paths(log.settings.audit.dir, "gw-a")[0]
    saved = first.read_bytes()
    await log.prune(timedelta(days=1825))
    first.write_bytes(saved)  # as if the unlink had not happened
    report = await verify_audit_log(log.settings, log.store)
    assert report.ok and {c.instance: c.records for c in report.chains}["gw-a"] == 2


async def test_export_range_spans_chains(log: Log) -> None:
    await log.chain("gw-a", (OLD, 2), (NOW, 2))
    await log.chain("gw-b", (OLD + timedelta(days=1), 1))
    found = scan(log.settings.audit.dir, between(OLD, OLD + timedelta(days=2)))
    assert [r["message_id"] for r in found.records] == ["gw-a-2019-0", "gw-a-2019-1", "gw-b-2019-0"]
    assert len(scan(log.settings.audit.dir, between(NOW, None)).records) == 2
    assert len(scan(log.settings.audit.dir, between(None, None)).records) == 5


def test_when_orders_whole_seconds_correctly() -> None:
    earlier = {"ts": "2026-01-01T00:00:05Z"}
    later = {"ts": "2026-01-01T00:00:05.000001Z"}
    assert when(earlier) < when(later) and earlier["ts"] > later["ts"]  # text order is wrong
    assert when({"ts": "nonsense"}) < when(earlier)
