"""``lendsms audit …`` and ``lendsms keys rotate-audit`` as real subprocesses on
a deployment written by ``lendsms init``."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CN_MOBILE
from tests.e2e.cli_helpers import TEXT, Served, client_deployment, serving
from tests.e2e.test_cli import Deployment, clean_env, lendsms, outbox_line, request


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    return client_deployment(tmp_path)


def audit_dir(d: Deployment) -> Path:
    return d.dir / "var" / "audit"


def segments(d: Deployment) -> list[Path]:
    return sorted(audit_dir(d).glob("audit-*.jsonl"))


def verify(d: Deployment) -> subprocess.CompletedProcess[str]:
    return d.run("audit", "verify")


@pytest.fixture
def served(deployment: Deployment) -> Iterator[Served]:
    with serving(deployment) as server:
        yield server


# -------------------------------------------------------------------- verify


def test_verify_after_cli_writes(deployment: Deployment) -> None:
    deployment.create_key("send")
    assert deployment.ok("audit", "verify") == ["ok: 1 records, 1 checkpoints"]


def test_verify_after_a_gateway_ran_and_stopped(deployment: Deployment, served: Served) -> None:
    token = deployment.create_key("send")
    ids = [served.send(token, reference=f"r{i}")["id"] for i in range(3)]
    for message_id in ids:
        served.wait_sent(message_id)
    served.stop()
    assert served.proc.returncode == 0
    # the key's chain: 1 record; the gateway's: 3 x (accepted, sending, sent)
    assert deployment.ok("audit", "verify") == ["ok: 10 records, 2 checkpoints"]


def test_verify_after_a_crash_notes_the_open_chain(deployment: Deployment, served: Served) -> None:
    token = deployment.create_key("send")
    served.wait_sent(served.send(token)["id"])
    served.stop(signal.SIGKILL)
    lines = deployment.ok("audit", "verify")
    assert lines[0] == "ok: 4 records, 1 checkpoints", lines


def test_verify_names_the_first_bad_record(deployment: Deployment) -> None:
    deployment.create_key("send")
    deployment.create_key("review")
    [_, second] = segments(deployment)
    data = bytearray(second.read_bytes())
    data[data.index(b'"event":"key_created"') + 10] ^= 0x01
    second.write_bytes(bytes(data))
    result = verify(deployment)
    assert result.returncode == 1, result
    instance = second.name.removeprefix("audit-").rsplit("-", 1)[0]
    assert result.stdout.splitlines()[0] == (
        f"FAILED: first bad record: {instance} record 1 ({second.name} line 1): "
        "mac mismatch (record altered or wrong key)"
    )


def test_verify_reports_a_missing_chain(deployment: Deployment) -> None:
    deployment.create_key("send")
    [segment] = segments(deployment)
    segment.unlink()
    result = verify(deployment)
    assert result.returncode == 1
    assert "registered, but its segments are missing" in result.stdout
    assert json.dumps(result.stdout)  # plain text, nothing binary


# -------------------------------------------------------------- show and find


def test_show_decrypts_and_is_itself_audited(deployment: Deployment, served: Served) -> None:
    token = deployment.create_key("send")
    accepted = served.send(token, reference="loan-77812/notice-3")
    served.wait_sent(accepted["id"])
    served.stop()

    lines = deployment.ok("audit", "show", accepted["id"], "--reason", "complaint 4411")
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == ["accepted", "sending", "sent"]
    first = records[0]
    assert first["message_id"] == accepted["id"]
    assert first["data"]["to"] == CN_MOBILE and first["data"]["text"] == TEXT
    assert first["data"]["reference"] == "loan-77812/notice-3"
    assert first["clear"]["status"] == "queued" and first["clear"]["client"] == "acme"

    # the access left its own record, which the next show lists too
    again = [json.loads(line) for line in deployment.ok("audit", "show", accepted["id"])]
    reveal = again[-1]
    assert reveal["event"] == "audit_revealed" and reveal["clear"]["command"] == "show"
    assert reveal["clear"]["records"] == 3 and reveal["data"] == {"reason": "complaint 4411"}
    assert deployment.ok("audit", "verify")[0] == "ok: 6 records, 4 checkpoints"
    for segment in segments(deployment):
        raw = segment.read_bytes()
        assert CN_MOBILE[1:].encode() not in raw and b"complaint" not in raw


def test_show_unknown_message(deployment: Deployment) -> None:
    result = deployment.run("audit", "show", "msg_nope")
    assert result.returncode == 1 and "no audit records for message msg_nope" in result.stderr
    result = deployment.run("audit", "show", "../etc/passwd")
    assert result.returncode == 1 and "MESSAGE_ID" in result.stderr


def test_find_by_number_and_borrower(deployment: Deployment, served: Served) -> None:
    token = deployment.create_key("send")
    mine = [served.send(token, borrower_id="B-7")["id"] for _ in range(2)]
    other = served.send(token, to="+8613912345678", borrower_id="B-8")["id"]
    served.stop()

    def found(*args: str) -> list[str]:
        return [line.split("\t")[0] for line in deployment.ok("audit", "find", *args)]

    assert sorted(found("--to", CN_MOBILE)) == sorted(mine)
    assert found("--to", "13912345678", "--region", "CN") == [other]
    assert sorted(found("--borrower", "B-7")) == sorted(mine)
    assert found("--borrower", "B-8", "--client", "acme") == [other]
    assert found("--borrower", "B-8", "--client", "someone-else") == []
    bad = deployment.run("audit", "find", "--to", "12345")
    assert bad.returncode == 1 and "12345" not in bad.stderr
    # each search is recorded, with the hash it looked for and never the number
    searched = [
        json.loads(line)
        for segment in segments(deployment)
        for line in segment.read_text().splitlines()
        if '"audit_searched"' in line
    ]
    assert len(searched) == 5
    assert {r["clear"]["by"] for r in searched} == {"to_hash", "borrower_hash"}


# ------------------------------------------------------------------ rotation


def sealed_key_id(d: Deployment, message_id: str) -> str:
    for segment in segments(d):
        for line in segment.read_text().splitlines():
            record = json.loads(line)
            if record["message_id"] == message_id and record["event"] == "accepted":
                return str(record["sealed"]).split(".")[1]
    raise AssertionError("no accepted record")


def test_rotation_keeps_old_records_readable(deployment: Deployment) -> None:
    """Acceptance point 5."""
    token = deployment.create_key("send")
    server = Served(deployment)
    before = server.send(token)["id"]
    server.wait_sent(before)
    server.stop()

    assert deployment.ok("keys", "rotate-audit") == [
        "audit key a2 is now current; running gateways use it from their next start"
    ]
    server = Served(deployment)
    after = server.send(token)["id"]
    server.wait_sent(after)
    server.stop()

    old_key, new_key = sealed_key_id(deployment, before), sealed_key_id(deployment, after)
    assert old_key.startswith("a1-") and new_key.startswith("a2-")
    for message_id in (before, after):
        first = json.loads(deployment.ok("audit", "show", message_id)[0])
        assert first["data"]["to"] == CN_MOBILE and first["data"]["text"] == TEXT
    assert deployment.ok("audit", "verify")[0].startswith("ok: ")

    # a lost key: the error names it, and nothing is shown
    db = deployment.dir / "var" / "lendsms.db"
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM audit_keys WHERE key_id=?", (old_key,))
    conn.close()
    result = deployment.run("audit", "show", before)
    assert result.returncode == 1 and result.stdout == ""
    assert f"audit key {old_key} is not in the key ring" in result.stderr
    assert json.loads(deployment.ok("audit", "show", after)[0])["data"]["to"] == CN_MOBILE


def test_the_kek_can_come_from_the_environment(deployment: Deployment) -> None:
    key_file = deployment.dir / "secrets" / "audit.key"
    env = clean_env(
        LENDSMS_KEYS__AUDIT="env:LENDSMS_TEST_KEK", LENDSMS_TEST_KEK=key_file.read_text().strip()
    )
    key_file.unlink()
    config = ["--config", str(deployment.config)]
    result = lendsms("keys", "rotate-audit", *config, cwd=deployment.cwd, env=env)
    assert result.returncode == 0, result.stderr
    result = lendsms("audit", "verify", *config, cwd=deployment.cwd, env=env)
    assert result.stdout.startswith("ok: 1 records"), result


# ------------------------------------------------ the dev corpus (points 1, 3)

CORPUS = Path(os.environ.get("LENDSMS_CORPUS", "/work/shared/corpus/dev.jsonl"))


def corpus() -> list[dict[str, Any]]:
    if not CORPUS.is_file():
        pytest.skip(f"no corpus at {CORPUS}")
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line]


def recipient(case: dict[str, Any], n: int) -> tuple[str, str]:
    """A distinct (E.164, national) number per case, in the case's country."""
    if case["lang"] == "zh":
        return f"+86138001380{n:02d}", f"138001380{n:02d}"
    return f"+1201555{n:04d}", f"201555{n:04d}"


def test_dev_corpus_is_audited_and_nothing_personal_is_stored_in_clear(
    deployment: Deployment, served: Served
) -> None:
    """Acceptance points 1 and 3: every message of the dev corpus has its
    decision record and ``verify`` says ok; no number, borrower id, PII value
    or text of the corpus is in the audit files, the SQLite files or the logs
    (the store is SQLite here: there is no Redis to search)."""
    token = deployment.create_key("send")
    cases = corpus()
    decided: dict[str, str] = {}
    forbidden: set[str] = set()
    for n, case in enumerate(cases):
        e164, national = recipient(case, n)
        borrower = f"borrower-{case['id']}-7781"
        body = {"to": e164, "borrower_id": borrower, "purpose": case["purpose"],
                "text": case["text"]}  # fmt: skip
        status, answer = request(f"http://127.0.0.1:{served.port}/v1/messages", body, token)
        assert status in (202, 422), (case["id"], status, answer)
        answer = json.loads(answer) if isinstance(answer, str) else answer  # a problem body
        decided[answer["id"]] = answer["status"]
        forbidden |= {e164, national, borrower, case["text"], *case["pii"]}
        forbidden |= {value.replace(" ", "") for value in case["pii"]}
    for message_id, status in decided.items():
        if status == "queued":
            served.wait_sent(message_id)
    served.stop()
    assert served.proc.returncode == 0

    lines = deployment.ok("audit", "verify")
    assert lines[0].startswith("ok: ") and lines[0].endswith(" checkpoints"), lines
    accepted = {
        record["message_id"]: record["clear"]["status"]
        for segment in segments(deployment)
        for record in map(json.loads, segment.read_text().splitlines())
        if record["event"] == "accepted"
    }
    assert accepted == decided  # each message: one decision record, the same decision

    stored = [p for p in (deployment.dir / "var").rglob("*") if p.is_file()]
    searched = [p for p in stored if p.name != "outbox.jsonl"]  # the outbox is the carrier
    names = {p.name for p in searched}
    assert "lendsms.db" in names and any(n.startswith("checkpoints-") for n in names)
    # the search works: the carrier's copy does hold the numbers it was sent
    outbox = (deployment.dir / "var" / "outbox.jsonl").read_bytes()
    assert any(recipient(c, n)[0].encode() in outbox for n, c in enumerate(cases))
    searched += [deployment.cwd / "serve.err"]
    assert (deployment.cwd / "serve.err").stat().st_size > 0  # the logs were written
    for path in searched:
        raw = path.read_bytes()
        for value in forbidden:
            for form in {value.encode(), json.dumps(value).strip('"').encode()}:
                assert form not in raw, f"{path.name} holds a corpus value in clear"


# ------------------------------------------------- export, prune and erase


def test_export_is_decrypted_and_audited(deployment: Deployment, served: Served) -> None:
    token = deployment.create_key("send")
    message_id = served.send(token)["id"]
    served.wait_sent(message_id)
    served.stop()
    lines = deployment.ok("audit", "export", "--since", "2000-01-01", "--reason", "regulator")
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == ["key_created", "accepted", "sending", "sent"]
    assert records[1]["data"]["to"] == CN_MOBILE and records[1]["data"]["text"] == TEXT
    assert deployment.ok("audit", "export", "--until", "2000-01-01") == []
    exports = deployment.ok("audit", "export", "--since", "2000-01-01")
    exported = [json.loads(line) for line in exports if '"audit_exported"' in line]
    assert [e["clear"]["records"] for e in exported] == [4, 0]  # earlier exports are listed too
    assert exported[0]["data"] == {"reason": "regulator"}
    bad = deployment.run("audit", "export", "--since", "yesterday")
    assert bad.returncode == 1 and "--since" in bad.stderr


def test_prune_respects_the_minimum_retention(deployment: Deployment, served: Served) -> None:
    token = deployment.create_key("send")
    message_id = served.send(token)["id"]
    served.wait_sent(message_id)
    served.stop()
    refused = deployment.run("audit", "prune", "--older-than", "30")
    assert refused.returncode == 1
    assert "below audit.min_retention_days (1825); nothing pruned" in refused.stderr
    assert deployment.ok("audit", "prune", "--older-than", "1825")[-1] == (
        "pruned 0 records from 0 chains, all older than 1825 days"
    )

    env = clean_env(LENDSMS_AUDIT__MIN_RETENTION_DAYS="0")
    config = ["--config", str(deployment.config)]
    result = lendsms("audit", "prune", "--older-than", "0", *config, cwd=deployment.cwd, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "pruned 4 records from 2 chains, all older than 0 days"
    # the pruned chains verify from their signed base; the prunes' own records remain
    assert deployment.ok("audit", "verify")[0] == "ok: 2 records, 6 checkpoints"
    gone = deployment.run("audit", "show", message_id)
    assert gone.returncode == 1 and "no audit records" in gone.stderr


def test_prune_refuses_a_log_that_does_not_verify(deployment: Deployment) -> None:
    deployment.create_key("send")
    [segment] = segments(deployment)
    segment.write_bytes(segment.read_bytes().replace(b'"key_created"', b'"key_kreated"'))
    env = clean_env(LENDSMS_AUDIT__MIN_RETENTION_DAYS="0")
    config = ["--config", str(deployment.config)]
    result = lendsms("audit", "prune", "--older-than", "0", *config, cwd=deployment.cwd, env=env)
    assert result.returncode == 1 and "does not verify" in result.stderr
    assert segment.exists()


def test_erase_shreds_one_borrower_and_verify_still_passes(
    deployment: Deployment, served: Served
) -> None:
    token = deployment.create_key("send")
    erased = served.send(token, borrower_id="B-erase")["id"]
    kept = served.send(token, borrower_id="B-keep")["id"]
    served.wait_sent(erased)
    served.wait_sent(kept)
    served.stop()

    lines = deployment.ok("audit", "erase", "--client", "acme", "--borrower", "B-erase")
    assert lines == ["erased 1 audit keys of a borrower of client acme; "
                     "their sealed fields now read as erased",
                     "erased 1 stored messages (0 not yet sent now cancelled) and 0 stored "
                     "idempotency answers"]  # fmt: skip
    shown = [json.loads(line) for line in deployment.ok("audit", "show", erased)]
    assert shown[0]["event"] == "accepted" and shown[0]["data"] == "erased"
    assert json.loads(deployment.ok("audit", "show", kept)[0])["data"]["to"] == CN_MOBILE
    assert deployment.ok("audit", "verify")[0].startswith("ok: ")
    again = deployment.ok("audit", "erase", "--client", "acme", "--borrower", "B-erase")
    assert again[0].startswith("erased 0 audit keys")
    records = [
        json.loads(line) for s in segments(deployment) for line in s.read_text().splitlines()
    ]
    erasures = [r["clear"] for r in records if r["event"] == "audit_erased"]
    assert len(erasures) == 2 and erasures[0]["keys"] and erasures[1]["keys"] is None
    assert all("B-erase" not in json.dumps(r) for r in records)


def post_once(port: int, token: str, key: str, body: dict[str, Any]) -> tuple[int, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/messages", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}",
                 "Idempotency-Key": key},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 (http://127.0.0.1)
        return resp.status, json.loads(resp.read())


def stored_ciphertext(d: Deployment) -> dict[str, str]:
    """The sealed column of each message and each stored idempotency answer."""
    uri = f"file:{d.dir / 'var' / 'lendsms.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        out = {str(r[0]): str(r[1]) for r in db.execute("SELECT id, sealed FROM messages")}
        for key, response in db.execute("SELECT key, response FROM idempotency"):
            out[f"idem:{key}"] = str(response)
    return out


def cap_members(d: Deployment) -> set[str]:
    uri = f"file:{d.dir / 'var' / 'policy.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        return {str(r[0]) for r in db.execute("SELECT member FROM cap_entries")}


def test_erase_scrubs_the_store_and_cancels_what_is_not_sent(
    deployment: Deployment, served: Served
) -> None:
    """Erasing a borrower while the gateway runs: their stored messages and
    idempotency answers read [erased], the old ciphertext leaves the database
    files, a message not yet due is cancelled and never sent; the other
    borrower is untouched, and the audit log still verifies."""
    token = deployment.create_key("send")
    sent_id = served.send(token, borrower_id="B-erase", reference="loan-77812")["id"]
    kept = served.send(token, borrower_id="B-keep", reference="loan-1")["id"]
    due = datetime.now(UTC) + timedelta(seconds=8)
    later_body = {"to": CN_MOBILE, "borrower_id": "B-erase", "purpose": "repayment_reminder",
                  "text": TEXT,
                  "scheduled_at": due.isoformat(timespec="seconds")}  # fmt: skip
    status, answer = post_once(served.port, token, "later-1", later_body)
    assert status == 202 and answer["status"] == "scheduled", answer
    later = answer["id"]
    served.wait_sent(sent_id)
    served.wait_sent(kept)
    before = stored_ciphertext(deployment)
    gone = {k: v for k, v in before.items() if k in (sent_id, later, "idem:later-1")}
    assert len(gone) == 3
    assert later in cap_members(deployment)  # a repayment reminder holds a cap reservation

    lines = deployment.ok("audit", "erase", "--client", "acme", "--borrower", "B-erase")
    assert datetime.now(UTC) < due, "the erase took too long for this test"
    assert lines[1] == ("erased 2 stored messages (1 not yet sent now cancelled) and 1 stored "
                        "idempotency answers")  # fmt: skip

    assert later not in cap_members(deployment)  # given back, as a client's cancel does
    after = stored_ciphertext(deployment)
    assert all(after[k] != v for k, v in gone.items())
    assert after[kept] == before[kept]
    var = deployment.dir / "var"
    raw = b"".join(p.read_bytes() for p in (var / "lendsms.db", var / "lendsms.db-wal")
                   if p.exists())  # fmt: skip
    for token_text in gone.values():
        assert token_text.encode() not in raw, "old ciphertext is still in the database files"

    url = f"http://127.0.0.1:{served.port}/v1/messages"
    for message_id in (sent_id, later):
        status, view = request(f"{url}/{message_id}", token=token)
        assert status == 200
        assert (view["to_masked"], view["body"]) == ("[erased]", "[erased]")
    view = request(f"{url}/{sent_id}", token=token)[1]
    assert view["status"] == "sent" and view["reference"] == "[erased]"
    assert request(f"{url}/{later}", token=token)[1]["reference"] is None  # it had none
    status, view = request(f"{url}/{kept}", token=token)
    assert view["body"] == TEXT and view["reference"] == "loan-1" and "*" in view["to_masked"]
    replayed = post_once(served.port, token, "later-1", later_body)[1]
    assert replayed["id"] == later and replayed["body"] == "[erased]"

    # past its due time: the dispatcher has had it and never sent it
    while datetime.now(UTC) < due + timedelta(seconds=3):
        time.sleep(0.2)
    view = request(f"{url}/{later}", token=token)[1]
    assert view["status"] == "cancelled" and view["events"][-1]["detail"] == "erased"
    assert outbox_line(deployment.dir / "var" / "outbox.jsonl", later) is None
    served.stop()

    assert deployment.ok("audit", "verify")[0].startswith("ok: ")
    shown = [json.loads(line) for line in deployment.ok("audit", "show", later)]
    assert shown[0]["event"] == "accepted" and shown[0]["data"] == "erased"
    assert shown[-1]["event"] == "cancelled" and shown[-1]["clear"]["detail"] == "erased"
    assert json.loads(deployment.ok("audit", "show", kept)[0])["data"]["to"] == CN_MOBILE


def test_the_next_gateway_closes_the_chain_of_a_crashed_one(deployment: Deployment) -> None:
    token = deployment.create_key("send")
    crashed = Served(deployment)
    crashed.wait_sent(crashed.send(token)["id"])
    crashed.stop(signal.SIGKILL)
    [segment] = [s for s in segments(deployment) if f"-{crashed.proc.pid}-" in s.name]
    whole = segment.read_bytes()
    segment.write_bytes(whole + b'{"seq":4,"ts":"2026-')  # killed in the middle of a write
    assert "unfinished last line" in "\n".join(deployment.ok("audit", "verify"))

    Served(deployment).stop()  # starts, recovers the crashed chain, stops
    assert segment.read_bytes() == whole
    assert deployment.ok("audit", "verify") == ["ok: 4 records, 3 checkpoints"]
    checkpoints = (audit_dir(deployment) / segment.name.replace("audit-", "checkpoints-")
                   .replace("-000000000001.jsonl", ".ckpt")).read_text()  # fmt: skip
    assert '"reason":"recovered"' in checkpoints and '"seq":3' in checkpoints
    segment.write_bytes(whole[: whole.rindex(b"{")])  # from now on a cut tail is caught
    assert deployment.run("audit", "verify").returncode == 1
