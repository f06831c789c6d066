"""The outbox provider: file format, status queries, multi-process appends."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from providers.base import (
    DeliveryState,
    OutboundSms,
    Outcome,
    Provider,
    ProviderConfigError,
    ProviderError,
)
from providers.outbox import OutboxProvider, read_outbox

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
NUMBER = "+8613812345678"
BODY = "【安心消费金融】尊敬的客户，您的借款已逾期3天，请尽快还款。"


def sms(message_id: str, body: str = BODY, to: str = NUMBER) -> OutboundSms:
    return OutboundSms(
        message_id=message_id, to=to, body=body, purpose="overdue_notice", client_id="c1"
    )


async def started(path: Path, name: str = "outbox") -> OutboxProvider:
    provider = OutboxProvider(name, {"path": str(path)}, base_dir=path.parent)
    await provider.start()
    return provider


async def test_send_writes_exactly_the_documented_fields(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    provider = await started(path, name="dev")
    result = await provider.send(sms("msg_1"))
    assert result.outcome is Outcome.SENT
    assert result.provider_message_id == "outbox-msg_1"

    raw = path.read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    assert "逾期".encode() in raw  # UTF-8, not \u escapes
    (record,) = read_outbox(path)
    assert set(record) == {"id", "to", "body", "provider", "sent_at"}
    assert record["id"] == "msg_1"
    assert record["to"] == NUMBER
    assert record["body"] == BODY
    assert record["provider"] == "dev"
    assert RFC3339_UTC.match(record["sent_at"])
    await provider.close()


async def test_one_sms_is_one_line_even_with_unicode_line_breaks(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    provider = await started(path)
    body = "第一行\n第二行\u2028第三行\u2029第四行\x85完"
    await provider.send(sms("m1", body=body))
    await provider.send(sms("m2"))
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
    assert [r["body"] for r in read_outbox(path)] == [body, BODY]


async def test_query_status_found_not_found_and_after_more_appends(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    provider = await started(path)
    missing = await provider.query_status("m1", None)
    assert missing is not None and missing.state is DeliveryState.NOT_FOUND  # no file yet

    await provider.send(sms("m1"))
    found = await provider.query_status("m1", "outbox-m1")
    assert found is not None and found.state is DeliveryState.ACCEPTED
    assert found.provider_message_id == "outbox-m1"
    not_found = await provider.query_status("m2", None)
    assert not_found is not None and not_found.state is DeliveryState.NOT_FOUND

    # Another writer (a second process's provider) appends after our last read.
    other = await started(path, name="other")
    for i in range(2, 6):
        await other.send(sms(f"m{i}"))
    for i in range(1, 6):
        status = await provider.query_status(f"m{i}", None)
        assert status is not None and status.state is DeliveryState.ACCEPTED
    gone = await provider.query_status("m6", None)
    assert gone is not None and gone.state is DeliveryState.NOT_FOUND


async def test_torn_last_line_is_not_read_until_complete(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    good = json.dumps({"id": "a", "to": NUMBER, "body": "x", "provider": "p", "sent_at": "t"})
    torn = '{"id": "b", "to": "+15555550100", "body": "半'
    path.write_text(good + "\n" + "not json at all\n" + torn, encoding="utf-8")
    provider = await started(path)

    a = await provider.query_status("a", None)
    b = await provider.query_status("b", None)
    assert a is not None and a.state is DeliveryState.ACCEPTED
    assert b is not None and b.state is DeliveryState.NOT_FOUND
    assert [r["id"] for r in read_outbox(path)] == ["a"]

    # The rest of the line arrives: the reader must not have skipped past its start.
    with path.open("a", encoding="utf-8") as stream:
        stream.write('", "provider": "p", "sent_at": "t"}\n')
    b = await provider.query_status("b", None)
    assert b is not None and b.state is DeliveryState.ACCEPTED


async def test_send_after_a_torn_tail_keeps_its_own_line_whole(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    path.write_bytes(b'{"id": "dead", "body": "\xe5\x8d')  # a writer died mid-line
    provider = await started(path)
    await provider.send(sms("m1"))
    assert [r["id"] for r in read_outbox(path)] == ["m1"]
    status = await provider.query_status("m1", None)
    assert status is not None and status.state is DeliveryState.ACCEPTED


async def test_truncated_file_is_read_again_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    provider = await started(path)
    for i in range(3):
        await provider.send(sms(f"old{i}"))
    await provider.query_status("old0", None)
    path.write_bytes(b"")
    await provider.send(sms("new"))
    status = await provider.query_status("new", None)
    assert status is not None and status.state is DeliveryState.ACCEPTED


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from providers.base import OutboundSms
    from providers.outbox import OutboxProvider

    async def main(path: str, worker: str, count: int) -> None:
        provider = OutboxProvider("w" + worker, {"path": path}, base_dir=Path(path).parent)
        await provider.start()
        for seq in range(count):
            body = f"{worker}:{seq}:" + "尊敬的客户您的借款已逾期请尽快还款" * 120
            await provider.send(OutboundSms(f"{worker}-{seq}", "+8613812345678", body,
                                            "overdue_notice", "c1"))
        await provider.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


def test_four_processes_append_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "outbox.jsonl"
    path.parent.mkdir()
    workers, per_worker = 4, 200
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(w), str(per_worker)])
        for w in range(workers)
    ]
    for child in children:
        assert child.wait(timeout=300) == 0

    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""  # the file ends with a newline
    lines = lines[:-1]
    assert len(lines) == workers * per_worker
    ids = set()
    for line in lines:
        record = json.loads(line)  # every line is a whole JSON object
        worker, seq = record["id"].split("-")
        assert record["body"] == f"{worker}:{seq}:" + "尊敬的客户您的借款已逾期请尽快还款" * 120
        assert len(record["body"].encode()) >= 5000
        assert record["provider"] == f"w{worker}"
        ids.add(record["id"])
    assert len(ids) == workers * per_worker


def test_unknown_option_is_rejected_by_name(tmp_path: Path) -> None:
    with pytest.raises(ProviderConfigError, match="fail_every"):
        OutboxProvider("dev", {"path": "o.jsonl", "fail_every": 3}, base_dir=tmp_path)


def test_path_is_required(tmp_path: Path) -> None:
    with pytest.raises(ProviderConfigError, match="'path'"):
        OutboxProvider("dev", {}, base_dir=tmp_path)
    with pytest.raises(ProviderConfigError, match="'path'"):
        OutboxProvider("dev", {"path": ""}, base_dir=tmp_path)


async def test_relative_path_resolves_against_base_dir(tmp_path: Path) -> None:
    provider = OutboxProvider("dev", {"path": "var/outbox.jsonl"}, base_dir=tmp_path)
    assert provider.path == tmp_path / "var" / "outbox.jsonl"
    await provider.start()
    await provider.start()  # idempotent
    assert (tmp_path / "var").is_dir()
    await provider.send(sms("m1"))
    assert [r["id"] for r in read_outbox(tmp_path / "var" / "outbox.jsonl")] == ["m1"]
    await provider.close()
    await provider.close()  # idempotent


async def test_absolute_path_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "abs" / "o.jsonl"
    provider = OutboxProvider("dev", {"path": str(target)}, base_dir=tmp_path / "elsewhere")
    assert provider.path == target


async def test_write_failure_is_an_unknown_outcome(tmp_path: Path) -> None:
    (tmp_path / "dir.jsonl").mkdir()  # a folder where the file should be
    provider = await started(tmp_path / "dir.jsonl")
    with pytest.raises(ProviderError):
        await provider.send(sms("m1"))


def test_satisfies_the_provider_protocol(tmp_path: Path) -> None:
    provider = OutboxProvider("dev", {"path": "o.jsonl"}, base_dir=tmp_path)
    assert isinstance(provider, Provider)
    assert provider.capabilities.free_text is True
    assert provider.capabilities.status_query is True
    assert provider.capabilities.max_segments == 10


def test_reprs_do_not_show_number_or_body() -> None:
    text = repr(sms("m1"))
    assert "m1" in text
    assert NUMBER not in text and "13812345678" not in text
    assert BODY not in text and "逾期" not in text


def test_read_outbox_of_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_outbox(tmp_path / "nope.jsonl") == []
