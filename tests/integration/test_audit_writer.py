"""The audit writer on a real file system: ordering, durability, the hash chain,
torn tails, write failures and recovery, and what never reaches the disk."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import re
import stat
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import audit_format, audit_segment
from gateway.audit import (
    GENESIS,
    AuditUnavailable,
    AuditWriter,
    record_mac,
    sealed_aad,
    segment_paths,
    verify_chain,
    verify_segment,
)
from gateway.clock import FakeClock
from gateway.crypto import DecryptionError, FieldCipher

SEAL_KEY = bytes(range(32))
CHAIN_KEY = bytes(range(100, 132))
INSTANCE = "gw-1"
NUMBER = "+8613812345678"
BODY = "【安心消费金融】尊敬的客户，您的借款已逾期3天，请尽快还款。"
BODY_EN = "Your loan 4417 is 3 days overdue"


def entry(i: int) -> dict[str, Any]:
    return {
        "event": "accepted",
        "message_id": f"msg_{i}",
        "clear": {"client": "c1", "purpose": "overdue_notice", "segments": 1, "ref": None},
        "sealed": {"to": NUMBER, "text": BODY, "body": BODY_EN, "findings": [{"rule": "r1"}]},
    }


def make_writer(directory: Path, **options: Any) -> AuditWriter:
    options.setdefault("instance_id", INSTANCE)
    return AuditWriter(directory, seal_key=SEAL_KEY, chain_key=CHAIN_KEY, **options)


async def started(directory: Path, **options: Any) -> AuditWriter:
    writer = make_writer(directory, **options)
    await writer.start()
    return writer


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[AuditWriter]:
    w = await started(tmp_path / "audit")
    yield w
    await w.close()


async def fill(writer: AuditWriter, count: int, first: int = 0) -> list[int]:
    return [await writer.append(**entry(first + i)) for i in range(count)]


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def segment_of(writer: AuditWriter) -> Path:
    assert writer.segment is not None
    return writer.segment


def make_fd_read_only(writer: AuditWriter) -> None:
    """Swap the writer's descriptor for a read-only one, as if the file had gone
    bad underneath it: every write fails with EBADF until the writer reopens."""
    read_only = os.open(segment_of(writer), os.O_RDONLY)
    os.dup2(read_only, writer._fd)  # type: ignore[arg-type]
    os.close(read_only)


# -- ordering and the chain ------------------------------------------------------


async def test_concurrent_appends_are_numbered_in_file_order(writer: AuditWriter) -> None:
    seqs = await asyncio.gather(*(writer.append(**entry(i)) for i in range(1000)))
    assert sorted(seqs) == list(range(1, 1001))
    path = segment_of(writer)
    assert [r["seq"] for r in records(path)] == list(range(1, 1001))
    assert writer.durable_seq == 1000
    result = verify_segment(path, CHAIN_KEY)
    assert result.ok and result.records == 1000
    assert (result.first_seq, result.last_seq, result.first_prev) == (1, 1000, GENESIS)
    assert result.head == records(path)[-1]["mac"]


async def test_files_are_private(tmp_path: Path) -> None:
    writer = await started(tmp_path / "new" / "audit")
    await fill(writer, 1)
    await writer.close()
    assert stat.S_IMODE((tmp_path / "new" / "audit").stat().st_mode) == 0o700
    assert stat.S_IMODE(segment_of(writer).stat().st_mode) == 0o600
    assert segment_of(writer).name == "audit-gw-1-000000000001.jsonl"


async def test_record_layout(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC))
    writer = await started(tmp_path, clock=clock)
    await writer.append(**entry(1))
    await writer.append("key_created", message_id=None, clear={"key_id": "k9"})
    await writer.close()
    raw = segment_of(writer).read_bytes()
    assert raw.isascii() and raw.count(b"\n") == 2
    first, second = records(segment_of(writer))
    assert list(first) == [
        *("seq", "ts", "instance", "event", "message_id", "clear", "sealed", "prev", "mac")
    ]
    assert first["ts"] == "2026-01-02T03:04:05.678000Z"
    assert first["clear"] == {
        "client": "c1",
        "purpose": "overdue_notice",
        "ref": None,
        "segments": 1,
    }
    assert first["prev"] == GENESIS and second["prev"] == first["mac"]
    assert re.fullmatch(r"[0-9a-f]{64}", first["mac"])
    assert first["mac"] == record_mac(CHAIN_KEY, first)
    assert second["sealed"] is None and second["message_id"] is None
    aad = sealed_aad(1, INSTANCE, "accepted", "msg_1")
    assert FieldCipher(SEAL_KEY).open_json(first["sealed"], aad=aad) == entry(1)["sealed"]


async def test_a_sealed_blob_cannot_be_moved_to_another_record(writer: AuditWriter) -> None:
    await fill(writer, 2)
    first, second = records(segment_of(writer))
    cipher = FieldCipher(SEAL_KEY)
    for aad in (
        sealed_aad(2, INSTANCE, "accepted", "msg_1"),  # other seq
        sealed_aad(1, "gw-2", "accepted", "msg_0"),  # other instance
        sealed_aad(1, INSTANCE, "rejected", "msg_0"),  # other event
        sealed_aad(1, INSTANCE, "accepted", "msg_1"),  # other message
    ):
        with pytest.raises(DecryptionError):
            cipher.open_json(first["sealed"], aad=aad)
    assert cipher.open_json(second["sealed"], aad=sealed_aad(2, INSTANCE, "accepted", "msg_1"))


async def test_personal_data_is_only_sealed(writer: AuditWriter) -> None:
    await fill(writer, 5)
    raw = segment_of(writer).read_bytes()
    for secret in (NUMBER, NUMBER[1:], "13812345678", BODY, BODY_EN, "逾期", "Your loan"):
        assert secret.encode() not in raw
        assert json.dumps(secret).strip('"').encode() not in raw  # nor \u-escaped


async def test_group_commit_shares_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_fsyncs(monkeypatch)
    writer = await started(tmp_path)
    await asyncio.gather(*(writer.append(**entry(i)) for i in range(500)))
    await writer.close()
    assert 1 <= calls[0] < 50


async def test_always_fsyncs_every_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_fsyncs(monkeypatch)
    writer = await started(tmp_path, fsync="always")
    seqs = await asyncio.gather(*(writer.append(**entry(i)) for i in range(40)))
    await writer.close()
    assert sorted(seqs) == list(range(1, 41)) and calls[0] == 40
    assert verify_segment(segment_of(writer), CHAIN_KEY).ok


def count_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = audit_segment.sync

    def counting(fd: int) -> None:
        calls[0] += 1
        real(fd)

    monkeypatch.setattr(audit_segment, "sync", counting)
    return calls


# -- restarts and torn tails -------------------------------------------------------


async def test_restart_continues_the_chain_in_a_new_segment(tmp_path: Path) -> None:
    first = await started(tmp_path)
    await fill(first, 3)
    await first.close()
    other = await started(tmp_path, instance_id="gw-1-b")  # another chain, same folder
    await fill(other, 2)
    await other.close()

    second = await started(tmp_path)
    assert segment_of(second).name == "audit-gw-1-000000000004.jsonl"
    assert await second.append(**entry(3)) == 4
    await second.close()

    head = verify_segment(segment_of(first), CHAIN_KEY).head
    tail = verify_segment(segment_of(second), CHAIN_KEY)
    assert tail.ok and tail.first_seq == 4 and tail.first_prev == head
    assert verify_segment(segment_of(second), CHAIN_KEY, prev=head).ok
    assert not verify_segment(segment_of(second), CHAIN_KEY, prev=GENESIS).ok
    chain = verify_chain(tmp_path, INSTANCE, CHAIN_KEY)
    assert chain.ok and chain.records == 4 and chain.last_seq == 4
    assert segment_paths(tmp_path, INSTANCE) == [segment_of(first), segment_of(second)]
    assert verify_chain(tmp_path, "gw-1-b", CHAIN_KEY).records == 2


async def test_start_on_an_open_writer_rolls_to_a_new_segment(writer: AuditWriter) -> None:
    await fill(writer, 2)
    await writer.start()
    assert await writer.append(**entry(2)) == 3
    assert len(segment_paths(segment_of(writer).parent, INSTANCE)) == 2
    assert verify_chain(segment_of(writer).parent, INSTANCE, CHAIN_KEY).ok


TORN_TAILS = {
    "half a record": b'{"seq":4,"ts":"2026-01-0',
    "a whole record without its newline": None,  # filled in below
    "garbage ending in a newline": b"\x00\x00\x00\x00\n",
    "half a record and a newline": b'{"seq":4,"ts"\n',
}


@pytest.mark.parametrize("kind", list(TORN_TAILS))
async def test_a_torn_last_line_is_cut_on_start(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = await started(tmp_path)
    await fill(first, 3)
    await first.close()
    path = segment_of(first)
    good = path.read_bytes()
    tail = TORN_TAILS[kind] or good.splitlines(keepends=True)[-1].rstrip(b"\n")
    path.write_bytes(good + tail)

    with caplog.at_level(logging.WARNING, logger="gateway.audit"):
        second = await started(tmp_path)
    assert "cutting" in caplog.text
    assert path.read_bytes() == good
    assert await second.append(**entry(3)) == 4
    await second.close()
    assert verify_chain(tmp_path, INSTANCE, CHAIN_KEY).records == 4


async def test_start_refuses_to_continue_a_tampered_last_record(tmp_path: Path) -> None:
    first = await started(tmp_path)
    await fill(first, 3)
    await first.close()
    path = segment_of(first)
    path.write_bytes(path.read_bytes().replace(b'"segments":1}', b'"segments":2}'))

    second = make_writer(tmp_path)
    with pytest.raises(AuditUnavailable, match="does not verify"):
        await second.start()
    assert not second.healthy and not await second.probe()
    with pytest.raises(AuditUnavailable):
        await second.append(**entry(9))


async def test_empty_segments_are_removed_on_start(tmp_path: Path) -> None:
    first = await started(tmp_path)
    await fill(first, 2)
    await first.close()
    idle = await started(tmp_path)  # started and stopped without a record
    await idle.close()
    assert len(segment_paths(tmp_path, INSTANCE)) == 2
    assert verify_chain(tmp_path, INSTANCE, CHAIN_KEY).records == 2

    third = await started(tmp_path)
    assert await third.append(**entry(2)) == 3
    await third.close()
    assert [p.name[-17:-6] for p in segment_paths(tmp_path, INSTANCE)] == [
        "00000000001",
        "00000000003",
    ]
    assert verify_chain(tmp_path, INSTANCE, CHAIN_KEY).ok


async def test_start_fails_cleanly_when_the_folder_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "audit").write_text("a file, not a folder")
    writer = make_writer(tmp_path / "audit")
    with pytest.raises(AuditUnavailable, match="cannot open"):
        await writer.start()
    assert not writer.healthy and not await writer.probe()


# -- verification ------------------------------------------------------------------

Edit = Callable[[bytes], bytes]
EDITS: dict[str, tuple[Edit, str]] = {
    "event": (lambda line: line.replace(b'"accepted"', b'"acceptee"'), "mac mismatch"),
    "clear": (lambda line: line.replace(b'"c1"', b'"c2"'), "mac mismatch"),
    "sealed": (lambda line: line.replace(b'"v1.k1.', b'"v1.k1.A'), "mac mismatch"),
    "mac": (lambda line: line[:-4] + (b"0" if line[-4:-3] != b"0" else b"1") + line[-3:], "mac"),
    "seq": (lambda line: line.replace(b'"seq":5,', b'"seq":50,'), "mac mismatch"),
    "extra field": (lambda line: line.replace(b'{"seq"', b'{"x":1,"seq"'), "fields"),
    "json": (lambda line: b"#" + line[1:], "not valid JSON"),
}


@pytest.mark.parametrize("field", list(EDITS))
async def test_verify_names_the_altered_record(writer: AuditWriter, field: str) -> None:
    await fill(writer, 10)
    path = segment_of(writer)
    lines = path.read_bytes().splitlines(keepends=True)
    edit, reason = EDITS[field]
    lines[4] = edit(lines[4])
    path.write_bytes(b"".join(lines))
    result = verify_segment(path, CHAIN_KEY)
    assert not result.ok
    assert (result.bad_seq, result.bad_line, result.records, result.last_seq) == (5, 5, 4, 4)
    assert result.reason is not None and reason in result.reason


async def test_verify_catches_a_deleted_record(writer: AuditWriter) -> None:
    await fill(writer, 10)
    path = segment_of(writer)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:4] + lines[5:]))
    result = verify_segment(path, CHAIN_KEY)
    assert not result.ok and result.bad_line == 5 and result.bad_seq == 6
    assert result.reason == "sequence break: expected 5"

    path.write_bytes(b"".join(lines[1:]))  # the first one
    result = verify_segment(path, CHAIN_KEY)
    assert not result.ok and result.bad_line == 1 and result.reason == "sequence break: expected 1"


async def test_verify_catches_reordered_and_foreign_records(
    writer: AuditWriter, tmp_path: Path
) -> None:
    await fill(writer, 6)
    path = segment_of(writer)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*lines[:2], lines[3], lines[2], *lines[4:]]))
    assert verify_segment(path, CHAIN_KEY).bad_seq == 4

    # a record renamed into another chain's file keeps its own instance
    renamed = path.with_name("audit-gw-9-000000000001.jsonl")
    renamed.write_bytes(b"".join(lines))
    assert verify_segment(renamed, CHAIN_KEY).reason == "instance does not match the segment name"
    # the chain key is needed to verify anything
    wrong = verify_segment(renamed, bytes(32))
    assert not wrong.ok and wrong.bad_seq == 1 and wrong.reason is not None
    assert "mac mismatch" in wrong.reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"seq": "5"}, "malformed field"),
        ({"clear": ["c1"]}, "malformed field"),
        ({"mac": None}, "malformed field"),
        ({"clear": {"x": float("nan")}}, "malformed field"),  # JSON allows NaN in, not out
    ],
)
async def test_verify_refuses_malformed_fields_even_with_the_key(
    writer: AuditWriter, change: dict[str, Any], reason: str
) -> None:
    await fill(writer, 3)
    path = segment_of(writer)
    lines = path.read_bytes().splitlines(keepends=True)
    record = json.loads(lines[1]) | change
    lines[1] = json.dumps(record).encode() + b"\n"
    path.write_bytes(b"".join(lines))
    result = verify_segment(path, CHAIN_KEY)
    assert (result.ok, result.bad_seq, result.reason) == (False, 2, reason)


async def test_verify_without_a_segment_name_trusts_the_records(writer: AuditWriter) -> None:
    await fill(writer, 3)
    copy = segment_of(writer).with_name("copy.jsonl")
    lines = segment_of(writer).read_bytes().splitlines(keepends=True)
    copy.write_bytes(b"".join(lines[1:]))
    result = verify_segment(copy, CHAIN_KEY)
    assert result.ok and (result.first_seq, result.last_seq) == (2, 3)
    copy.write_bytes(b"#" + b"".join(lines[1:]))
    assert verify_segment(copy, CHAIN_KEY).bad_seq is None


async def test_verify_reports_an_incomplete_last_line(writer: AuditWriter) -> None:
    await fill(writer, 3)
    path = segment_of(writer)
    path.write_bytes(path.read_bytes()[:-1])
    result = verify_segment(path, CHAIN_KEY)
    assert (result.ok, result.bad_seq, result.reason) == (False, 3, "incomplete last line")


async def test_verify_of_an_empty_segment(writer: AuditWriter) -> None:
    result = verify_segment(segment_of(writer), CHAIN_KEY)
    assert result.ok and result.records == 0 and result.head == GENESIS


# -- failures and recovery ---------------------------------------------------------


async def test_a_failed_write_rejects_every_waiter_then_recovers(writer: AuditWriter) -> None:
    await fill(writer, 3)
    make_fd_read_only(writer)
    results = await asyncio.gather(
        *(writer.append(**entry(i)) for i in range(3, 23)), return_exceptions=True
    )
    assert all(isinstance(r, AuditUnavailable) for r in results)
    assert "EBADF" in str(results[0])
    assert not writer.healthy and writer.durable_seq == 3

    # the next appends reopen the segment (once) and carry on from seq 4
    seqs = await asyncio.gather(*(writer.append(**entry(i)) for i in range(3, 23)))
    assert sorted(seqs) == list(range(4, 24)) and writer.healthy
    assert [r["message_id"] for r in records(segment_of(writer))][2:4] == ["msg_2", "msg_3"]
    assert verify_segment(segment_of(writer), CHAIN_KEY).records == 23


async def test_a_failed_fsync_leaves_no_record_behind(
    writer: AuditWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fill(writer, 3)
    before = segment_of(writer).read_bytes()
    real = audit_segment.sync

    def disk_full_once(fd: int) -> None:
        monkeypatch.setattr(audit_segment, "sync", real)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audit_segment, "sync", disk_full_once)
    with pytest.raises(AuditUnavailable, match="ENOSPC"):
        await writer.append("lost", message_id="msg_lost")
    assert segment_of(writer).read_bytes() == before
    assert await writer.probe() and writer.healthy
    assert await writer.append(**entry(3)) == 4  # the failed seq is reused
    assert b"msg_lost" not in segment_of(writer).read_bytes()
    assert verify_segment(segment_of(writer), CHAIN_KEY).ok


async def test_a_half_written_record_is_cut_on_recovery(
    writer: AuditWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fill(writer, 3)
    before = segment_of(writer).read_bytes()

    def half_then_disk_full(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    real_truncate = os.ftruncate

    def truncate_fails_once(fd: int, length: int) -> None:
        monkeypatch.setattr(os, "ftruncate", real_truncate)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(audit_segment, "write_all", half_then_disk_full)
    monkeypatch.setattr(os, "ftruncate", truncate_fails_once)
    with pytest.raises(AuditUnavailable):
        await writer.append(**entry(3))
    assert len(segment_of(writer).read_bytes()) > len(before)  # the half record is there

    monkeypatch.undo()
    assert await writer.append(**entry(3)) == 4
    assert segment_of(writer).read_bytes().startswith(before)
    assert verify_segment(segment_of(writer), CHAIN_KEY).records == 4


async def test_recovery_waits_until_the_cause_is_gone(writer: AuditWriter) -> None:
    await fill(writer, 3)
    path = segment_of(writer)
    make_fd_read_only(writer)
    path.rename(path.with_suffix(".moved"))
    path.mkdir()  # the segment's name now names a folder: it cannot be reopened

    with pytest.raises(AuditUnavailable):
        await writer.append(**entry(3))
    with pytest.raises(AuditUnavailable, match="failed"):
        await writer.append(**entry(3))
    assert not await writer.probe() and not writer.healthy

    path.rmdir()
    path.with_suffix(".moved").rename(path)
    assert await writer.probe() and writer.healthy
    assert await writer.append(**entry(3)) == 4
    assert verify_segment(path, CHAIN_KEY).records == 4


async def test_a_shortened_segment_is_continued_in_a_new_one(writer: AuditWriter) -> None:
    await fill(writer, 3)
    path = segment_of(writer)
    head = records(path)[-1]["mac"]
    make_fd_read_only(writer)
    with pytest.raises(AuditUnavailable):
        await writer.append(**entry(3))
    os.truncate(path, path.stat().st_size // 2)
    assert await writer.append(**entry(3)) == 4
    assert segment_of(writer).name == "audit-gw-1-000000000004.jsonl"
    assert verify_segment(segment_of(writer), CHAIN_KEY).first_prev == head
    assert not verify_chain(path.parent, INSTANCE, CHAIN_KEY).ok  # the cut is visible


async def test_start_after_a_failure_rescans_the_disk(writer: AuditWriter) -> None:
    await fill(writer, 3)
    make_fd_read_only(writer)
    with pytest.raises(AuditUnavailable):
        await writer.append(**entry(3))
    await writer.start()
    assert writer.healthy and await writer.append(**entry(3)) == 4
    assert verify_chain(segment_of(writer).parent, INSTANCE, CHAIN_KEY).records == 4


async def test_closing_during_a_failed_write_or_a_reopen(writer: AuditWriter) -> None:
    await fill(writer, 3)
    make_fd_read_only(writer)
    tasks = [asyncio.create_task(writer.append(**entry(i))) for i in range(3, 8)]
    await asyncio.sleep(0)
    await writer.close()  # the batch in flight fails; the writer stays closed
    assert all(isinstance(t.exception(), AuditUnavailable) for t in tasks)
    assert not writer.healthy and not await writer.probe()

    reopened = await started(segment_of(writer).parent)
    make_fd_read_only(reopened)
    with pytest.raises(AuditUnavailable):
        await reopened.append(**entry(3))
    probing = asyncio.create_task(reopened.probe())
    await asyncio.sleep(0)  # the reopen is in its thread now
    await reopened.close()
    assert await probing is False and not reopened.healthy
    assert reopened._fd is None  # the reopened file was closed again


async def test_large_records_survive_a_restart(tmp_path: Path) -> None:
    writer = await started(tmp_path)
    big = {"text": "长" * 70_000}
    await writer.append("accepted", message_id="m", sealed=big)
    await writer.append("accepted", message_id="m2", sealed=big)
    await writer.close()
    again = await started(tmp_path)
    assert await again.append(**entry(0)) == 3
    await again.close()
    assert verify_chain(tmp_path, INSTANCE, CHAIN_KEY).records == 3


async def test_a_vanished_segment_is_continued_in_a_new_one(
    writer: AuditWriter, caplog: pytest.LogCaptureFixture
) -> None:
    await fill(writer, 3)
    lost = segment_of(writer)
    make_fd_read_only(writer)
    lost.unlink()
    with pytest.raises(AuditUnavailable):
        await writer.append(**entry(3))
    with caplog.at_level(logging.ERROR, logger="gateway.audit"):
        assert await writer.append(**entry(3)) == 4
    assert segment_of(writer).name == "audit-gw-1-000000000004.jsonl"
    assert "continuing in audit-gw-1-000000000004.jsonl" in caplog.text
    # the chain now visibly misses records 1-3
    chain = verify_chain(lost.parent, INSTANCE, CHAIN_KEY)
    assert not chain.ok and chain.bad_seq == 4


async def test_no_personal_data_in_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    first = await started(tmp_path)
    await fill(first, 2)
    await first.close()
    path = segment_of(first)
    path.write_bytes(path.read_bytes() + b'{"seq":3,"sealed":"' + NUMBER.encode())
    second = await started(tmp_path)
    make_fd_read_only(second)
    with pytest.raises(AuditUnavailable):
        await second.append(**entry(2))
    await second.append(**entry(2))
    await second.close()
    assert caplog.records  # the cut, the failure and the recovery were logged
    for secret in (NUMBER, "13812345678", BODY, BODY_EN, "逾期"):
        assert secret not in caplog.text


# -- life cycle --------------------------------------------------------------------


async def test_close_writes_what_is_pending_and_is_idempotent(tmp_path: Path) -> None:
    writer = await started(tmp_path)
    tasks = [asyncio.create_task(writer.append(**entry(i))) for i in range(50)]
    await asyncio.sleep(0)  # let them all queue
    await writer.close()
    assert sorted([t.result() for t in tasks]) == list(range(1, 51))
    await writer.close()
    assert not writer.healthy and not await writer.probe()
    with pytest.raises(AuditUnavailable, match="closed"):
        await writer.append(**entry(0))
    assert verify_segment(segment_of(writer), CHAIN_KEY).records == 50


async def test_a_cancelled_append_is_still_written(writer: AuditWriter) -> None:
    task = asyncio.create_task(writer.append(**entry(0)))
    await asyncio.sleep(0)
    task.cancel()
    assert await writer.append(**entry(1)) == 2
    assert [r["seq"] for r in records(segment_of(writer))] == [1, 2]
    assert verify_segment(segment_of(writer), CHAIN_KEY).ok


async def test_append_before_start_is_refused(tmp_path: Path) -> None:
    writer = make_writer(tmp_path)
    assert not writer.healthy and writer.segment is None
    await writer.close()  # closing what never opened is fine
    writer = make_writer(tmp_path)
    with pytest.raises(AuditUnavailable, match="idle"):
        await writer.append(**entry(0))


async def test_bad_appends_are_refused_without_using_a_seq(writer: AuditWriter) -> None:
    bad: list[dict[str, Any]] = [
        {"event": "", "message_id": "m"},
        {"event": "x", "message_id": 7},
        {"event": "x", "message_id": "m", "clear": {"amount": 1.5}},
        {"event": "x", "message_id": "m", "clear": {"nested": {"a": 1}}},
        {"event": "x", "message_id": "m", "sealed": {"x": object()}},
        {"event": "x", "message_id": "m", "sealed": {"x": float("inf")}},
    ]
    for kwargs in bad:
        with pytest.raises((TypeError, ValueError)):
            await writer.append(**kwargs)
    assert await writer.append(**entry(0)) == 1
    assert writer.healthy


@pytest.mark.parametrize(
    "options",
    [
        {"instance_id": "gw/1"},
        {"instance_id": ""},
        {"instance_id": "x" * 65},
        {"fsync": "sometimes"},
        {"chain_key": bytes(16)},
        {"seal_key": b"short"},
        {"key_id": "a.b"},
    ],
)
def test_bad_options_are_refused(tmp_path: Path, options: dict[str, Any]) -> None:
    settings: dict[str, Any] = {
        "instance_id": INSTANCE,
        "seal_key": SEAL_KEY,
        "chain_key": CHAIN_KEY,
        **options,
    }
    with pytest.raises(ValueError):
        AuditWriter(tmp_path, **settings)


# -- the fast record encoder -------------------------------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text())


@settings(max_examples=300, deadline=None)
@given(
    seq=st.integers(min_value=0),
    texts=st.lists(st.text(), min_size=3, max_size=3),
    message_id=st.one_of(st.none(), st.text()),
    clear=st.dictionaries(st.text(), _scalars, max_size=6),
    sealed=st.one_of(st.none(), st.text()),
)
def test_record_body_is_canonical_json(
    seq: int,
    texts: list[str],
    message_id: str | None,
    clear: dict[str, Any],
    sealed: str | None,
) -> None:
    ts, instance, event = texts
    ordered = dict(sorted(clear.items()))
    body = {
        **{"seq": seq, "ts": ts, "instance": instance, "event": event},
        **{"message_id": message_id, "clear": ordered, "sealed": sealed, "prev": GENESIS},
    }
    fast = audit_format.record_body(seq, ts, instance, event, message_id, ordered, sealed, GENESIS)
    assert fast == audit_format.canonical(body)
    aad = sealed_aad(seq, instance, event, message_id)
    assert aad == json.dumps([seq, instance, event, message_id], separators=(",", ":")).encode()
