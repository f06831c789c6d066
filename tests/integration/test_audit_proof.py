"""Checkpoints, the chain registry and whole-log verification on real files and
a real SQLite store; the mutation tests of issue 7, acceptance point 2: flip a
byte anywhere, delete a record, reorder two, truncate the tail, swap segments,
replay a record from another instance -> ``verify`` fails and names the first
bad record."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import random
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config.settings import Settings
from gateway.app import open_store
from gateway.audit import AuditUnavailable, AuditWriter
from gateway.audit_checkpoint import checkpoint_path, parse_checkpoint, sign_checkpoint
from gateway.audit_format import GENESIS, segment_paths
from gateway.audit_proof import LogReport, verify_log
from gateway.audit_setup import audit_secrets, open_audit_writer, recover_crashed_chains
from gateway.clock import SystemClock
from gateway.crypto import SigningKey
from gateway.errors import StoreUnavailable
from gateway.store.base import AuditChain, Store
from tests.conftest import wait_for

EVERY = 10  # a checkpoint every 10 records


@dataclass
class Log:
    settings: Settings
    store: Store

    @property
    def dir(self) -> Path:
        return self.settings.audit.dir

    def writer(self, instance: str, kind: str = "gateway") -> AuditWriter:
        return open_audit_writer(self.settings, self.store, instance, kind=kind)

    async def chain(self, instance: str, count: int, *, close: bool = True) -> AuditWriter:
        writer = self.writer(instance)
        await writer.start()
        await fill(writer, count)
        if close:
            await writer.close()
        return writer

    async def verify(self) -> LogReport:
        secrets = audit_secrets(self.settings)
        chains = await self.store.list_audit_chains()
        stored = await self.store.list_audit_checkpoints()
        return verify_log(self.dir, secrets.chain_key, secrets.signer.public, chains, stored)

    async def first_flaw(self) -> tuple[str, int | None, str]:
        report = await self.verify()
        assert not report.ok, "verify passed a tampered log"
        flaw = report.flaws[0]
        return flaw.instance, flaw.seq, flaw.reason

    def segments(self, instance: str) -> list[Path]:
        return segment_paths(self.dir, instance)


async def fill(writer: AuditWriter, count: int) -> None:
    for i in range(count):
        await writer.append(
            "accepted",
            message_id=f"msg_{i}",
            clear={"client": "acme", "segments": 1},
            sealed={"to": "+8613812345678", "text": f"您的借款已逾期{i}天"},
        )


@pytest.fixture
async def log(make_settings: Callable[..., Settings]) -> AsyncIterator[Log]:
    settings = make_settings(audit={"checkpoint_records": EVERY, "checkpoint_seconds": 3600.0})
    store = open_store(settings)
    await store.open()
    yield Log(settings, store)
    await store.close()


@pytest.fixture
async def two_chains(log: Log) -> Log:
    """gw-a: 25 records in two segments (a restart in between); gw-b: 12 records."""
    first = await log.chain("gw-a", 15)
    again = log.writer("gw-a")
    await again.start()
    await fill(again, 10)
    await again.close()
    assert first.segment != again.segment
    await log.chain("gw-b", 12)
    return log


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def seq_of(line: bytes) -> int:
    return int(json.loads(line)["seq"])


# -- checkpoints and the registry ----------------------------------------------


async def test_a_clean_log_verifies(two_chains: Log) -> None:
    report = await two_chains.verify()
    assert report.ok, report.flaws
    assert report.records == 37
    seqs = {c.instance: {(cp.seq, cp.reason) for cp in c.checkpoints} for c in report.chains}
    # every 10 records, and at each close (the count one at 25 may race the close)
    assert seqs["gw-a"] - {(25, "count")} == {(10, "count"), (15, "close"), (25, "close")}
    assert seqs["gw-b"] == {(10, "count"), (12, "close")}
    assert report.checkpoints == len(seqs["gw-a"]) + 2
    assert all(c.closed for c in report.chains) and not report.notes


async def test_chains_are_registered_and_checkpoints_copied(two_chains: Log) -> None:
    chains = {c.instance: c for c in await two_chains.store.list_audit_chains()}
    assert set(chains) == {"gw-a", "gw-b"}
    assert chains["gw-a"].kind == "gateway" and chains["gw-a"].closed_at is not None
    stored = sorted(await two_chains.store.list_audit_checkpoints())
    on_disk = sorted(
        line.decode().rstrip("\n")
        for name in ("gw-a", "gw-b")
        for line in lines(checkpoint_path(two_chains.dir, name))
    )
    assert stored == on_disk
    cp = parse_checkpoint(stored[0])
    assert cp is not None and cp.valid(audit_secrets(two_chains.settings).signer.public)
    assert not cp.valid(SigningKey(bytes(32)).public)


async def test_a_checkpoint_every_n_seconds(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(audit={"checkpoint_records": 1000, "checkpoint_seconds": 0.05})
    store = open_store(settings)
    await store.open()
    writer = open_audit_writer(settings, store, "gw-t")
    await writer.start()
    await fill(writer, 3)
    path = checkpoint_path(settings.audit.dir, "gw-t")
    await wait_for(lambda: path.exists() and path.read_bytes().count(b"\n") >= 1, what="timer")
    cp = parse_checkpoint(lines(path)[0])
    assert cp is not None and (cp.seq, cp.reason) == (3, "time")
    await writer.close()
    await store.close()


async def test_registration_failure_stops_the_start(log: Log) -> None:
    await log.store.close()
    writer = log.writer("gw-x")
    with pytest.raises(AuditUnavailable, match="store"):
        await writer.start()
    assert not writer.healthy
    store = open_store(log.settings)  # the empty segment left behind is no flaw
    await store.open()
    log.store = store
    assert (await log.verify()).ok


async def test_a_live_chain_with_an_unfinished_line_is_a_note(log: Log) -> None:
    writer = await log.chain("gw-live", 4, close=False)
    path = log.segments("gw-live")[0]
    path.write_bytes(path.read_bytes() + b'{"seq":5,"ts":"20')
    report = await log.verify()
    assert report.ok and report.records == 4
    assert any("unfinished last line" in n for n in report.notes)
    path.write_bytes(path.read_bytes()[: -len(b'{"seq":5,"ts":"20')])
    await writer.close()


async def test_checkpoint_reasons_and_shapes_are_checked() -> None:
    key = SigningKey(bytes(range(32)))
    with pytest.raises(ValueError):
        sign_checkpoint(key, "gw", 1, GENESIS, "2026-01-01T00:00:00Z", "whenever")
    good = sign_checkpoint(key, "gw", 1, GENESIS, "2026-01-01T00:00:00Z", "close")
    assert parse_checkpoint(good.line()) == good
    for bad in ("{", "[]", good.line().replace('"seq":1', '"seq":-1'), '{"instance":"gw"}'):
        assert parse_checkpoint(bad) is None


# -- mutations (acceptance point 2) ---------------------------------------------


def flip(path: Path, offset: int, mask: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


def record_at(data: bytes, offset: int) -> int:
    """The seq of the record whose line holds byte ``offset``."""
    start = 0
    for line in data.splitlines(keepends=True):
        if offset < start + len(line):
            return seq_of(line)
        start += len(line)
    raise AssertionError("offset past the end")


def instance_of(segment: Path) -> str:
    return segment.name.removeprefix("audit-").rsplit("-", 1)[0]


async def test_flip_any_byte_of_any_record(two_chains: Log) -> None:
    """Every byte of one record (one bit flip each) and 150 bytes anywhere
    (fixed seed; three different flips each)."""
    secrets = audit_secrets(two_chains.settings)
    chains = await two_chains.store.list_audit_chains()
    stored = await two_chains.store.list_audit_checkpoints()
    segments = [p for name in ("gw-a", "gw-b") for p in two_chains.segments(name)]
    anywhere = [(p, i) for p in segments for i in range(p.stat().st_size)]
    first = lines(segments[0])
    record_3 = range(len(first[0]) + len(first[1]), sum(map(len, first[:3])))
    chosen = [(segments[0], i, (0x01,)) for i in record_3]
    chosen += [(p, i, (0x01, 0x20, 0x80)) for p, i in random.Random(7).sample(anywhere, 150)]
    for path, offset, masks in chosen:
        original = path.read_bytes()
        for mask in masks:
            flip(path, offset, mask)
            report = verify_log(two_chains.dir, secrets.chain_key, secrets.signer.public,
                                chains, stored)  # fmt: skip
            assert not report.ok, (path.name, offset, mask)
            flaw = report.flaws[0]
            assert (flaw.instance, flaw.seq) == (instance_of(path), record_at(original, offset)), (
                path.name, offset, mask,
            )  # fmt: skip
            path.write_bytes(original)
    assert (await two_chains.verify()).ok


async def test_deleted_record(two_chains: Log) -> None:
    path = two_chains.segments("gw-a")[0]
    body = lines(path)
    path.write_bytes(b"".join(body[:6] + body[7:]))  # record 7
    instance, seq, reason = await two_chains.first_flaw()
    assert (instance, seq, reason) == ("gw-a", 8, "sequence break: expected 7")


async def test_reordered_records(two_chains: Log) -> None:
    path = two_chains.segments("gw-b")[0]
    body = lines(path)
    body[3], body[4] = body[4], body[3]  # records 4 and 5
    path.write_bytes(b"".join(body))
    assert await two_chains.first_flaw() == ("gw-b", 5, "sequence break: expected 4")


@pytest.mark.parametrize("cut", [1, 40, 1000])
async def test_truncated_tail_of_a_closed_chain(two_chains: Log, cut: int) -> None:
    path = two_chains.segments("gw-a")[-1]
    data = path.read_bytes()
    kept = data[:-cut]
    path.write_bytes(kept)
    last = seq_of(kept[: kept.rfind(b"\n") + 1].splitlines()[-1])
    instance, seq, reason = await two_chains.first_flaw()
    assert (instance, seq) == ("gw-a", last + 1) and last < 25
    assert "covers seq 25 (tail cut off or deleted)" in reason


async def test_truncated_tail_of_a_live_chain_is_caught_by_its_checkpoint(log: Log) -> None:
    writer = await log.chain("gw-live", 14, close=False)  # a checkpoint at 10, none since
    await wait_for(lambda: len(lines(checkpoint_path(log.dir, "gw-live"))) == 1, what="cp")
    path = log.segments("gw-live")[0]
    full = path.read_bytes()
    path.write_bytes(b"".join(lines(path)[:12]))  # 13 and 14 are gone: no proof of them
    assert (await log.verify()).ok
    path.write_bytes(b"".join(lines(path)[:9]))  # 10 is gone too: its checkpoint says so
    instance, seq, reason = await log.first_flaw()
    assert (instance, seq) == ("gw-live", 10) and "signed checkpoint count at seq 10" in reason
    path.write_bytes(full)
    await writer.close()


async def test_a_cut_tail_and_checkpoint_file_are_caught_by_the_store_copy(
    two_chains: Log,
) -> None:
    path = two_chains.segments("gw-b")[0]
    path.write_bytes(b"".join(lines(path)[:5]))
    checkpoint_path(two_chains.dir, "gw-b").unlink()
    instance, seq, reason = await two_chains.first_flaw()
    assert (instance, seq) == ("gw-b", 6) and "tail cut off" in reason


async def test_swapped_segments(two_chains: Log) -> None:
    first, second = two_chains.segments("gw-a")
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)
    assert await two_chains.first_flaw() == ("gw-a", 16, "sequence break: expected 1")


async def test_segments_swapped_between_instances(two_chains: Log) -> None:
    mine, theirs = two_chains.segments("gw-a")[0], two_chains.segments("gw-b")[0]
    a, b = mine.read_bytes(), theirs.read_bytes()
    mine.write_bytes(b)
    theirs.write_bytes(a)
    instance, seq, reason = await two_chains.first_flaw()
    assert (instance, seq) == ("gw-a", 1) and "instance does not match" in reason


async def test_a_record_replayed_from_another_instance(two_chains: Log) -> None:
    mine, theirs = two_chains.segments("gw-a")[0], two_chains.segments("gw-b")[0]
    body, foreign = lines(mine), lines(theirs)
    mine.write_bytes(b"".join([*body[:4], foreign[4], *body[5:]]))  # their 5 for my 5
    assert await two_chains.first_flaw() == (
        "gw-a", 5, "instance does not match the segment name",
    )  # fmt: skip
    mine.write_bytes(b"".join([*body[:5], foreign[5], *body[5:]]))  # their 6, inserted
    assert (await two_chains.first_flaw())[:2] == ("gw-a", 6)


async def test_a_record_replayed_within_its_chain(two_chains: Log) -> None:
    path = two_chains.segments("gw-b")[0]
    body = lines(path)
    path.write_bytes(b"".join([*body[:8], body[2], *body[8:]]))
    assert await two_chains.first_flaw() == ("gw-b", 3, "sequence break: expected 9")


async def test_a_missing_registered_chain(two_chains: Log) -> None:
    for path in two_chains.segments("gw-b"):
        path.unlink()
    checkpoint_path(two_chains.dir, "gw-b").unlink()
    assert await two_chains.first_flaw() == (
        "gw-b", None, "registered, but its segments are missing",
    )  # fmt: skip


async def test_a_deleted_first_or_last_segment(two_chains: Log) -> None:
    first, last = two_chains.segments("gw-a")
    saved = first.read_bytes()
    first.unlink()
    assert await two_chains.first_flaw() == ("gw-a", 1, "records 1-15 are missing")
    first.write_bytes(saved)
    last.unlink()
    instance, seq, reason = await two_chains.first_flaw()
    assert (instance, seq) == ("gw-a", 16) and "covers seq 25" in reason


async def test_a_chain_registered_elsewhere_is_flagged(two_chains: Log) -> None:
    """Written with the right keys, but registered in another store."""
    settings = two_chains.settings
    elsewhere = replace(settings, store=replace(settings.store, path=settings.base_dir / "x.db"))
    store = open_store(elsewhere)
    await store.open()
    await Log(elsewhere, store).chain("gw-z", 3)
    await store.close()
    assert await two_chains.first_flaw() == (
        "gw-z", None, "has records but is not registered in the store",
    )  # fmt: skip


@pytest.mark.parametrize("damage", ["flip", "forge", "other chain", "garbage"])
async def test_damaged_checkpoints(two_chains: Log, damage: str) -> None:
    path = checkpoint_path(two_chains.dir, "gw-b")
    first = lines(path)[0]
    cp = parse_checkpoint(first)
    assert cp is not None
    if damage == "flip":
        bad = first.replace(b'"seq":10', b'"seq":11')
    elif damage == "forge":
        forged = sign_checkpoint(SigningKey(bytes(32)), "gw-b", cp.seq, cp.mac, cp.ts, "close")
        bad = forged.line().encode() + b"\n"
    elif damage == "other chain":
        bad = lines(checkpoint_path(two_chains.dir, "gw-a"))[0]
    else:
        bad = b"not a checkpoint\n"
    path.write_bytes(bad + path.read_bytes())
    instance, seq, reason = await two_chains.first_flaw()
    assert (instance, seq) == ("gw-b", None)
    assert any(w in reason for w in ("bad signature", "another chain", "not a checkpoint"))


# -- crashed chains ---------------------------------------------------------------


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


async def crashed_chain(log: Log, instance: str, *, pid: int, host: str | None = None) -> Path:
    """A chain whose writer died mid-write: registered, never closed, torn tail."""
    chain = AuditChain(instance, "gateway", host or socket.gethostname(), pid, datetime.now(UTC))
    await log.store.register_audit_chain(chain)
    secrets = audit_secrets(log.settings)
    writer = AuditWriter(
        log.dir, instance_id=instance, seal_key=bytes(32), chain_key=secrets.chain_key
    )  # no tracker: nothing marks it closed
    await writer.start()
    await fill(writer, 4)
    await writer.close()
    path = log.segments(instance)[-1]
    path.write_bytes(path.read_bytes() + b'{"seq":5,"ts":"2026')
    return path


async def recover(log: Log) -> list[str]:
    return await recover_crashed_chains(log.settings, log.store, "gw-new", SystemClock())


async def test_a_crashed_chain_is_closed_by_the_next_start(
    log: Log, caplog: pytest.LogCaptureFixture
) -> None:
    path = await crashed_chain(log, "gw-dead", pid=dead_pid())
    with caplog.at_level(logging.WARNING, logger="gateway.audit"):
        assert await recover(log) == ["gw-dead"]
    assert "cutting" in caplog.text and "closed chain gw-dead" in caplog.text
    assert path.read_bytes().endswith(b"}\n")
    report = await log.verify()
    assert report.ok and report.chains[0].closed and not report.notes
    [chain] = await log.store.list_audit_chains()
    assert chain.closed_at is not None
    assert await recover(log) == []  # once
    path.write_bytes(b"".join(lines(path)[:3]))  # a later cut shows
    assert (await log.first_flaw())[:2] == ("gw-dead", 4)


async def test_live_or_foreign_chains_are_left_alone(log: Log) -> None:
    await crashed_chain(log, "gw-live-pid", pid=os.getpid())
    await crashed_chain(log, "gw-other-host", pid=dead_pid(), host="elsewhere")
    locked = await crashed_chain(log, "gw-locked", pid=dead_pid())
    holder = os.open(locked, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # as a live writer in another pid namespace would
    try:
        assert await recover(log) == []
    finally:
        os.close(holder)
    assert await recover(log) == ["gw-locked"]
    assert len((await log.verify()).notes) == 2


# -- checkpoint failures never stop the appends -----------------------------------


async def test_an_unwritable_checkpoint_file_is_logged_and_the_store_copy_kept(
    log: Log, caplog: pytest.LogCaptureFixture
) -> None:
    writer = log.writer("gw-cp")
    await writer.start()
    checkpoint_path(log.dir, "gw-cp").mkdir()  # the file's name is taken by a folder
    with caplog.at_level(logging.ERROR, logger="gateway.audit"):
        await fill(writer, EVERY)
        await wait_for(lambda: "cannot write a checkpoint" in caplog.text, what="the error")
        await writer.close()
    assert "EISDIR" in caplog.text and "+86" not in caplog.text
    checkpoint_path(log.dir, "gw-cp").rmdir()
    report = await log.verify()  # the store's copies stand in for the file
    assert report.ok and report.checkpoints == 2 and report.chains[0].closed


async def test_checkpoints_the_store_missed_are_copied_later(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = log.store.add_audit_checkpoint
    calls = 0

    async def down_once(instance: str, seq: int, line: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise StoreUnavailable("sqlite: OperationalError")
        await real(instance, seq, line)

    monkeypatch.setattr(log.store, "add_audit_checkpoint", down_once)
    await log.chain("gw-cp", EVERY + 2)
    stored = [parse_checkpoint(line) for line in await log.store.list_audit_checkpoints()]
    assert sorted((c.seq, c.reason) for c in stored if c) == [(10, "count"), (12, "close")]
