"""Issue 7, acceptance point 4 and DESIGN.md invariant 1: when the audit log
cannot be written, the gateway answers 503 and no SMS reaches the provider,
neither a new one nor one that was already queued; when the log can be
written again, it carries on and ``verify`` passes.

The failures are real ones from the kernel, not mocks: as root a chmod does
not stop writes, so the segment's descriptor is pointed at ``/dev/full``
(every write fails with ENOSPC) while the audit folder is replaced by a file
(nothing can be reopened or created there), or, where the file system allows
it, the folder and the segment are made immutable with ``chattr +i``
(EPERM)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.app import open_store
from gateway.appkeys import AUDIT
from gateway.audit_proof import verify_log
from gateway.audit_setup import audit_secrets
from gateway.pipeline import NormalizeStage, ScheduleStage, SegmentStage
from tests.conftest import CN_MOBILE, Gateway, auth, wait_for

TEXT = "【安心消费金融】您本期应还1,086.40元，最后还款日12月8日。"
STAGES = [NormalizeStage(), ScheduleStage(), SegmentStage()]  # the decision is not the point


async def send(gw: Gateway, token: str, **extra: Any) -> Any:
    body = {"to": CN_MOBILE, "borrower_id": "B-1", "purpose": "service", "text": TEXT, **extra}
    return await gw.http.post("/v1/messages", json=body, headers=auth(token))


def stored_messages(gw: Gateway) -> int:
    with sqlite3.connect(gw.settings.store.path) as db:
        count = int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
    db.close()
    return count


async def verify(gw: Gateway) -> None:
    store = open_store(gw.settings)
    await store.open()
    secrets = audit_secrets(gw.settings)
    report = verify_log(
        gw.settings.audit.dir,
        secrets.chain_key,
        secrets.signer.public,
        await store.list_audit_chains(),
        await store.list_audit_checkpoints(),
    )
    await store.close()
    assert report.ok, report.flaws


Breakage = Callable[[Gateway], Callable[[], None]]  # breaks the log; returns the repair


def disk_full(gw: Gateway) -> Callable[[], None]:
    writer = gw.app[AUDIT]
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, writer._fd)
    os.close(full)
    folder = gw.settings.audit.dir
    moved = folder.with_name("audit.moved")
    folder.rename(moved)
    folder.write_text("not a folder any more")

    def repair() -> None:
        folder.unlink()
        moved.rename(folder)

    return repair


def chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


def immutable(gw: Gateway) -> Callable[[], None]:
    folder = gw.settings.audit.dir
    paths = [folder, *folder.iterdir()]
    chattr("+i", *paths)
    return lambda: chattr("-i", *paths)


def immutable_supported(tmp_path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    probe = tmp_path / "probe"
    probe.write_text("x")
    try:
        chattr("+i", probe)
    except (subprocess.CalledProcessError, OSError):
        return False
    chattr("-i", probe)
    probe.unlink()
    return True


@pytest.mark.parametrize("breakage", [disk_full, immutable], ids=["full", "immutable"])
async def test_an_unwritable_audit_log_fails_closed(
    start_gateway: Callable[..., Awaitable[Gateway]], tmp_path: Path, breakage: Breakage
) -> None:
    if breakage is immutable and not immutable_supported(tmp_path):
        pytest.skip("chattr +i is not available here")
    gw = await start_gateway(stages=STAGES)
    token = await gw.key()
    first = await send(gw, token)
    assert first.status == 202
    await wait_for(lambda: len(gw.outbox()) == 1, what="the first SMS")
    # queued while the log works, due while it does not
    due = datetime.now(UTC) + timedelta(seconds=1)
    later = await send(gw, token, scheduled_at=due.isoformat())
    assert later.status == 202 and (await later.json())["status"] == "scheduled"

    repair = breakage(gw)
    try:
        for _ in range(5):
            refused = await send(gw, token)
            assert refused.status == 503
            problem = await refused.json()
            assert problem["type"].endswith("/unavailable") and "Retry-After" in refused.headers
            assert CN_MOBILE not in await refused.text()
        ready = await gw.http.get("/readyz")
        assert ready.status == 503 and "audit log unwritable" in (await ready.json())["reasons"]
        # the scheduled one falls due: its dispatch cannot be audited, so it waits
        await wait_for(lambda: datetime.now(UTC) > due + timedelta(seconds=1.5), what="due")
        assert len(gw.outbox()) == 1 and stored_messages(gw) == 2
    finally:
        repair()

    assert (await send(gw, token)).status == 202
    await wait_for(lambda: len(gw.outbox()) == 3, timeout=15, what="the SMS after the repair")
    assert (await gw.http.get("/readyz")).status == 200
    await gw.http.close()  # shuts the gateway down: closing checkpoint
    await verify(gw)
