"""``lendsms reviewers …`` as real subprocesses on a deployment written by
``lendsms init``, reviewer actions showing in ``lendsms audit show``, and
``reviewers signout``, a new password and ``disable`` ending a web session
that a running ``lendsms serve`` had accepted."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import load_settings
from gateway.app import open_store
from gateway.review.passwords import verify_password
from gateway.review.sessions import COOKIE
from tests.e2e.cli_helpers import Served, client_deployment, serving
from tests.e2e.test_cli import DEADLINE, Deployment, audit_events, clean_env, request

HELD = "【安心消费金融】如持续逾期，我司将依法提起诉讼。"  # cn.legal_action.statement: hold
PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    return client_deployment(tmp_path)


@pytest.fixture
def served(deployment: Deployment) -> Iterator[Served]:
    with serving(deployment) as server:
        yield server


def reviewers(d: Deployment, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "reviewers", *args, "--config", str(d.config)],
        cwd=d.cwd, env=clean_env(), input=stdin, capture_output=True, text=True,
        timeout=DEADLINE, check=False,
    )  # fmt: skip


def stored_hash(d: Deployment, name: str) -> str:
    async def read() -> str:
        store = open_store(load_settings(str(d.config)))
        await store.open()
        try:
            stored = await store.get_reviewer(name)
        finally:
            await store.close()
        assert stored is not None
        return stored.password_hash

    return asyncio.run(read())


def test_add_list_update_disable(deployment: Deployment, tmp_path: Path) -> None:
    d = deployment
    added = reviewers(d, "add", "Ana Li", "--can-reveal", "--client", "acme", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert "added reviewer: Ana Li\tclients=acme\tcan_reveal=yes" in added.stdout
    hashed = stored_hash(d, "Ana Li")
    assert hashed.startswith("scrypt$32768$8$1$") and PASSWORD not in hashed
    assert verify_password(PASSWORD, hashed) and not verify_password(PASSWORD + "x", hashed)

    secret = tmp_path / "bob.pw"
    secret.write_text("another long password\n", encoding="utf-8")
    by_file = reviewers(d, "add", "Bob", "--password-file", str(secret))
    assert by_file.returncode == 0, by_file.stderr
    assert verify_password("another long password", stored_hash(d, "Bob"))

    again = reviewers(d, "add", "Bob", stdin=PASSWORD + "\n")
    assert again.returncode == 1 and "already exists (use reviewers update)" in again.stderr
    short = reviewers(d, "add", "Cy", stdin="short\n")
    assert short.returncode == 1 and "at least 12 characters" in short.stderr
    unknown = reviewers(d, "add", "Cy", "--client", "nope", stdin=PASSWORD + "\n")
    assert unknown.returncode == 1 and "no client nope" in unknown.stderr
    missing = reviewers(d, "add", "Cy", "--password-file", str(tmp_path / "none"))
    assert missing.returncode == 1 and "cannot read the password file" in missing.stderr

    updated = reviewers(d, "update", "Bob", "--can-reveal")
    assert updated.returncode == 0, updated.stderr
    assert verify_password("another long password", stored_hash(d, "Bob"))  # kept
    assert reviewers(d, "update", "Nobody").returncode == 1
    assert reviewers(d, "disable", "Bob").returncode == 0
    assert reviewers(d, "disable", "Bob").returncode == 1  # no active reviewer Bob
    listed = reviewers(d, "list").stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == ["Ana Li", "Bob"]
    assert "can_reveal=yes" in listed[1] and "disabled" in listed[1]
    assert PASSWORD not in reviewers(d, "list").stdout

    events = [(e, c) for e, c in audit_events(d) if e.startswith("reviewer_")]
    assert [(e, c["reviewer"]) for e, c in events] == [
        ("reviewer_added", "Ana Li"), ("reviewer_added", "Bob"),
        ("reviewer_updated", "Bob"), ("reviewer_disabled", "Bob"),
    ]  # fmt: skip
    assert events[0][1]["clients"] == "acme" and events[0][1]["can_reveal"] == 1
    for segment in (d.dir / "var" / "audit").glob("*.jsonl"):
        assert PASSWORD.encode() not in segment.read_bytes()


def test_review_actions_appear_in_audit_show(deployment: Deployment, served: Served) -> None:
    d = deployment
    send = d.create_key("send")
    review = d.create_key("review", "audit")
    key_id = review.split("_")[1]
    first = served.send(send, purpose="overdue_notice", text=HELD)
    second = served.send(send, purpose="overdue_notice", text=HELD)
    assert first["status"] == second["status"] == "held"
    base = f"http://127.0.0.1:{served.port}/v1/review/messages"
    status, approved = request(f"{base}/{first['id']}/approve", {"comment": "ok"}, review)
    assert status == 200 and approved["status"] in ("queued", "scheduled"), approved
    status, rejected = request(f"{base}/{second['id']}/reject", {"comment": "tone"}, review)
    assert status == 200 and rejected["status"] == "rejected"
    status, shown = request(f"{base}/{second['id']}/reveal", {"reason": "dispute 12"}, review)
    assert status == 200 and shown["text"] == HELD
    served.stop()

    def show(message_id: str) -> list[dict[str, object]]:
        return [json.loads(line) for line in d.ok("audit", "show", message_id)]

    records = show(first["id"])
    [approval] = [r for r in records if r["event"] == "review_approved"]
    assert approval["clear"]["reviewer"] == f"key:{key_id}"  # type: ignore[index]
    assert approval["data"] == {"comment": "ok"}
    events = [r["event"] for r in show(second["id"])]
    assert events[:3] == ["accepted", "review_rejected", "review_revealed"]
    revealed = next(r for r in show(second["id"]) if r["event"] == "review_revealed")
    assert revealed["data"] == {"reason": "dispute 12"}
    assert revealed["clear"]["reviewer"] == f"key:{key_id}"  # type: ignore[index]


# ---------------------------------------------------------------- web sessions


def web(port: int, method: str, path: str, cookie: str = "",
        form: dict[str, str] | None = None) -> tuple[int, str, str, str]:  # fmt: skip
    """(status, Location, the session cookie set or "", body) without following."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode()
        cookies = [c for c in resp.headers.get_all("Set-Cookie") or [] if c.startswith(COOKIE)]
        value = cookies[-1].split(";", 1)[0].split("=", 1)[1] if cookies else ""
        return resp.status, resp.headers.get("Location", ""), value, text
    finally:
        conn.close()


def web_sign_in(port: int, name: str, password: str = PASSWORD) -> str:
    """The session cookie of a fresh sign-in."""
    _, _, anonymous, page = web(port, "GET", "/review/login")
    found = _CSRF.search(page)
    assert found is not None and anonymous
    form = {"csrf": found.group(1), "name": name, "password": password}
    status, location, cookie, _ = web(port, "POST", "/review/login", anonymous, form)
    assert (status, location) == (303, "/review") and cookie, status
    return cookie


def signed_in(port: int, cookie: str) -> bool:
    status, location, _, _ = web(port, "GET", "/review", cookie)
    assert status == 200 or location == "/review/login?done=session_ended", (status, location)
    return status == 200


def test_signout_ends_an_existing_session(deployment: Deployment, served: Served) -> None:
    d = deployment
    assert reviewers(d, "add", "Ana Li", stdin=PASSWORD + "\n").returncode == 0
    assert reviewers(d, "add", "Bob", stdin=PASSWORD + "\n").returncode == 0
    ana, bob = web_sign_in(served.port, "Ana Li"), web_sign_in(served.port, "Bob")
    assert signed_in(served.port, ana) and signed_in(served.port, bob)

    out = reviewers(d, "signout", "Ana Li")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("signed out reviewer Ana Li: every session started before ")
    assert "has ended, on every replica" in out.stdout
    assert not signed_in(served.port, ana)
    assert signed_in(served.port, bob)  # only NAME's sessions
    assert signed_in(served.port, web_sign_in(served.port, "Ana Li"))  # may sign in again

    unknown = reviewers(d, "signout", "Nobody")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert "no reviewer Nobody (lendsms reviewers list)" in unknown.stderr
    events = [(e, c["reviewer"]) for e, c in audit_events(d) if e == "reviewer_signed_out"]
    assert events == [("reviewer_signed_out", "Ana Li")]


def test_new_password_and_disable_end_sessions(deployment: Deployment, served: Served) -> None:
    d = deployment
    assert reviewers(d, "add", "Ana Li", stdin=PASSWORD + "\n").returncode == 0
    before = web_sign_in(served.port, "Ana Li")
    kept = reviewers(d, "update", "Ana Li", "--can-reveal")  # no new password
    assert kept.returncode == 0 and "every session" not in kept.stdout
    assert signed_in(served.port, before)

    new_password = "a brand new long password"
    reset = reviewers(d, "update", "Ana Li", "--password-stdin", stdin=new_password + "\n")
    assert reset.returncode == 0, reset.stderr
    assert "new password: every session of Ana Li has ended" in reset.stdout
    assert not signed_in(served.port, before)
    after = web_sign_in(served.port, "Ana Li", new_password)
    assert signed_in(served.port, after)

    off = reviewers(d, "disable", "Ana Li")
    assert off.returncode == 0 and "every session of theirs has ended" in off.stdout
    assert not signed_in(served.port, after)
    assert reviewers(d, "update", "Ana Li", "--enable").returncode == 0
    assert not signed_in(served.port, after)  # enabling again does not bring it back
    assert signed_in(served.port, web_sign_in(served.port, "Ana Li", new_password))
