"""Issue 8, acceptance 2: the /review page in real headless Chromium (Debian's
``chromium``, driven by Playwright for Python; no browser download). A real
``lendsms serve`` process with the outbox provider and dispatch on; a reviewer
made with ``lendsms reviewers add``; held messages submitted over HTTP. In the
browser: sign in, filter, open a held message, approve it with a comment (it
reaches the outbox), reject another (it ends ``rejected``). A screenshot of the
queue is saved to ``var/test-artifacts/review-queue.png``. No console error and
no Content-Security-Policy violation may occur.

Without Chromium or Playwright the test skips on a developer machine and fails
in CI (``CI=true``, set by ``.ci/run``, which installs ``chromium``)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from providers.outbox import read_outbox
from tests.subprocess_env import gateway_env

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "var" / "test-artifacts"
CHROMIUM = os.environ.get("LENDSMS_CHROMIUM", "/usr/bin/chromium")
LENDSMS = [sys.executable, "-m", "gateway.cli"]
PASSWORD = "browser-test-password-1"
HELD = "【安心消费金融】如持续逾期，我司将依法提起诉讼。"
HELD_OTHER = "【安心消费金融】您的账单已逾期，我司将依法起诉并申请强制执行。"
PHONE = "+8613812345678"

pytestmark = pytest.mark.slow


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{what} is missing in CI: .ci/run installs the Debian package chromium")
    pytest.skip(f"{what} is not installed (apt-get install chromium; pip install playwright)")


def _env() -> dict[str, str]:
    env = gateway_env()
    env.update(LENDSMS_DISPATCH__POLL_INTERVAL="0.05")
    return env


def _cli(home: Path, *args: str) -> str:
    done = subprocess.run(
        [*LENDSMS, *args, "--config", str(home / "lendsms.toml")],
        capture_output=True, text=True, env=_env(), check=True, timeout=60,
    )  # fmt: skip
    return done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    home: Path
    url: str
    key_acme: str
    key_beta: str

    def api(self, method: str, path: str, key: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - http on loopback
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback
            return json.loads(resp.read())

    def submit(self, key: str, text: str, borrower: str) -> str:
        body = {"to": PHONE, "borrower_id": borrower, "purpose": "service", "text": text}
        answer = self.api("POST", "/v1/messages", key, body)
        assert answer["status"] == "held", answer
        return str(answer["id"])

    def outbox_ids(self) -> set[str]:
        return {line["id"] for line in read_outbox(self.home / "var" / "outbox.jsonl")}


def _wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "lendsms serve exited during start-up"
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("lendsms serve did not come up")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    subprocess.run([*LENDSMS, "init", "--dir", str(tmp_path)], check=True, env=_env(),
                   capture_output=True, timeout=60)  # fmt: skip
    for client in ("acme", "beta"):
        _cli(tmp_path, "clients", "add", client)
    keys = [
        _cli(tmp_path, "keys", "create", "--client", c, "--scope", "send").splitlines()[-1]
        for c in ("acme", "beta")
    ]
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    _cli(tmp_path, "reviewers", "add", "alice", "--password-file", str(secret))
    port = _free_port()
    proc = subprocess.Popen(
        [*LENDSMS, "serve", "--config", str(tmp_path / "lendsms.toml"), "--port", str(port)],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_up(url, proc)
        yield Live(tmp_path, url, keys[0], keys[1])
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        _missing(CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright (Python)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def _wait(predicate: Any, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_review_in_a_real_browser(live: Live, browser: Any, tmp_path: Path) -> None:
    first = live.submit(live.key_acme, HELD, "B-1")
    second = live.submit(live.key_acme, HELD_OTHER, "B-2")
    other = live.submit(live.key_beta, HELD, "B-3")

    context = browser.new_context(locale="en-US", viewport={"width": 1360, "height": 900})
    problems: list[str] = []
    context.add_init_script(
        "document.addEventListener('securitypolicyviolation',"
        " e => console.error('CSP violation: ' + e.violatedDirective));"
    )
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("dialog", lambda dialog: dialog.accept())  # the confirm() before a decision

    # sign in
    page.goto(live.url + "/review")
    assert page.url.endswith("/review/login")
    page.fill("#name", "alice")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live.url + "/review")
    for message_id in (first, second, other):
        assert page.locator(f"tr[data-id='{message_id}']").count() == 1
    assert page.locator("mark.f-hold").count() >= 3

    # the screenshot of the queue
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "review-queue.png"
    page.screenshot(path=str(shot), full_page=True)
    shutil.copy(shot, tmp_path / "review-queue.png")
    print(f"\nreview queue screenshot: {shot}")

    # filter by client
    page.select_option("select[name=client]", "acme")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/review?*client=acme*")
    assert page.locator(f"tr[data-id='{other}']").count() == 0
    assert page.locator(f"tr[data-id='{first}']").count() == 1

    # open a held message and approve it with a comment
    page.click(f"a.row-link:text-is('{first}')")
    page.wait_for_url(f"**/review/messages/{first}")
    page.screenshot(path=str(ARTIFACTS / "review-message.png"), full_page=True)
    approve = page.locator("button.approve")
    assert approve.is_disabled()  # review.js ran: no comment yet
    page.fill("#comment", "Lawful notice of legal action; approved.")
    assert approve.is_enabled()
    approve.click()
    page.wait_for_url("**/review?done=approved")
    assert page.locator(".notice.ok").count() == 1
    _wait(lambda: first in live.outbox_ids(), "the approved message in the outbox")

    # reject another
    page.goto(f"{live.url}/review/messages/{second}")
    page.fill("#comment", "Threatens enforcement; rejected.")
    page.click("button.reject")
    page.wait_for_url("**/review?done=rejected")
    assert live.api("GET", f"/v1/messages/{second}", live.key_acme)["status"] == "rejected"
    assert second not in live.outbox_ids()

    page.goto(f"{live.url}/review/summary")
    assert page.locator("svg.chart rect.bar-held").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "review-summary.png"), full_page=True)
    context.close()
    assert problems == [], problems

    # both decisions are in the audit log under the reviewer's name
    for message_id, event in ((first, "review_approved"), (second, "review_rejected")):
        shown = _cli(live.home, "audit", "show", message_id).splitlines()
        [record] = [r for r in map(json.loads, shown) if r["event"] == event]
        assert record["clear"]["reviewer"] == "alice", record
