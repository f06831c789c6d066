"""Shared by the e2e tests that drive ``lendsms`` subcommands next to a
running gateway (tests/e2e/test_audit_cli.py, tests/e2e/test_reviewers_cli.py):
a deployment written by ``lendsms init`` with one client, and ``lendsms serve``
on it."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import CN_MOBILE
from tests.e2e.test_cli import (
    DEADLINE,
    SERVE,
    Deployment,
    clean_env,
    free_port,
    lendsms,
    outbox_line,
    request,
    wait_until_up,
)

TEXT = "【安心消费金融】您本期应还1,086.40元，最后还款日12月8日。"


def client_deployment(tmp_path: Path) -> Deployment:
    """``lendsms init --dir D`` in ``tmp_path``, with the client ``acme`` added."""
    result = lendsms("init", "--dir", "D", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    d = Deployment(cwd=tmp_path, dir=tmp_path / "D")
    d.add_client()
    return d


class Served:
    """``lendsms serve`` on a free port, killed at the end if still running."""

    def __init__(self, d: Deployment) -> None:
        self.d, self.port = d, free_port()
        self.err = d.cwd / "serve.err"
        with self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [*SERVE, "--config", str(d.config), "--port", str(self.port)],
                cwd=d.cwd, env=clean_env(), stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        try:
            wait_until_up(self.proc, self.port, self.err)
        except BaseException:  # no caller holds it yet: do not leave it running
            self.proc.kill()
            self.proc.wait(timeout=DEADLINE)
            raise

    def send(self, token: str, **fields: Any) -> dict[str, Any]:
        body = {"to": CN_MOBILE, "borrower_id": "B-1", "purpose": "service",
                "text": TEXT, **fields}  # fmt: skip
        status, answer = request(f"http://127.0.0.1:{self.port}/v1/messages", body, token)
        assert status == 202, answer
        return dict(answer)

    def wait_sent(self, message_id: str) -> None:
        outbox = self.d.dir / "var" / "outbox.jsonl"
        deadline = time.monotonic() + DEADLINE
        while outbox_line(outbox, message_id) is None:
            assert time.monotonic() < deadline, "not sent"
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)
        self.proc.wait(timeout=DEADLINE)


@contextmanager
def serving(d: Deployment) -> Iterator[Served]:
    """``Served`` on ``d``, killed on the way out unless it was stopped."""
    server = Served(d)
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=DEADLINE)
