"""Issue 9, the process model: ``serve --workers 2`` (two processes on one port,
SO_REUSEPORT) with a dispatcher each, on the embedded SQLite file: each
process keeps its own audit chain, ``/metrics`` sums the counters of both
(prometheus_client multiprocess mode), a child that dies is replaced, SIGTERM
stops everything cleanly and ``lendsms audit verify`` passes afterwards. And
``lendsms worker``: it dispatches, answers only /metrics, /healthz and /readyz
on its ``--metrics-port``, and exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from providers.outbox import read_outbox
from tests.e2e.procs import (
    DEADLINE,
    LENDSMS,
    Deployment,
    free_port,
    post,
    send_body,
    wait_http,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def dep(tmp_path: Path) -> Iterator[Deployment]:
    made = Deployment(tmp_path / "d", "sqlite")
    try:
        yield made.init()
    finally:
        made.stop_all()


def children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii")
    return {int(p) for p in text.split()}


def counter_total(text: str, name: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    )


def gateway_segments(dep: Deployment) -> list[Path]:
    """Audit segments of the serve processes (not of the CLI's chains)."""
    return sorted(p for p in (dep.root / "var" / "audit").glob("audit-*.jsonl")
                  if not p.name.startswith("audit-cli-"))  # fmt: skip


async def scrape(port: int) -> str:
    # a fresh connection each time: the kernel spreads them over the processes
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as r,
    ):
        assert r.status == 200
        return await r.text()


async def test_two_processes_one_port_own_audit_chains_and_summed_metrics(
    dep: Deployment,
) -> None:
    port = free_port()
    sup = dep.serve(port, "--workers", "2")
    url = f"http://127.0.0.1:{port}"
    connector = aiohttp.TCPConnector(force_close=True)  # new connections: both serve
    async with aiohttp.ClientSession(connector=connector) as http:
        await wait_http(http, url + "/healthz", sup)
        deadline = time.monotonic() + DEADLINE
        while len(children(sup.pid)) < 2 or len(gateway_segments(dep)) < 2:
            assert time.monotonic() < deadline, "two serve processes did not start"
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # the slower child binds the port too
        answers = await asyncio.gather(
            *(post(http, url, dep.token, send_body(n), f"pm-{n}") for n in range(60))
        )
        assert [s for s, _ in answers] == [202] * 60
        ids = {b["id"] for _, b in answers}
        while {line["id"] for line in read_outbox(dep.outbox)} != ids:  # both dispatch
            assert time.monotonic() < deadline + DEADLINE, "not every message was sent"
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)  # past the lease: a second send would show now
    sent = [line["id"] for line in read_outbox(dep.outbox)]
    assert sorted(sent) == sorted(ids)
    # two chains, one per process, each with records of the messages it took
    segments = gateway_segments(dep)
    assert len({p.name.rsplit("-", 1)[0] for p in segments}) == 2
    assert all(p.read_bytes().count(b"\n") > 0 for p in segments), "one process served nothing"
    # every scrape, whichever process answers, counts the messages of both
    for _ in range(6):
        text = await scrape(port)
        assert counter_total(text, "lendsms_messages_total") == 60
        assert 'lendsms_build_info{version="' in text and "pid=" not in text
    if promtool := shutil.which("promtool"):  # the aggregate is valid exposition text too
        lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip
        assert lint.returncode == 0, lint.stdout + lint.stderr
    sup.send_signal(signal.SIGTERM)
    assert sup.wait(timeout=DEADLINE) == 0
    dep.procs.remove(sup)
    verify = subprocess.run(
        [*LENDSMS, "audit", "verify", "--config", dep.config],
        capture_output=True, text=True, env=dep.env(), timeout=60, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert not list((dep.root / "var").glob("metrics-*")), "the metrics folder was left behind"


async def test_a_child_that_dies_is_replaced_and_the_port_keeps_answering(
    dep: Deployment,
) -> None:
    port = free_port()
    sup = dep.serve(port, "--workers", "2", "--no-dispatch")
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        await wait_http(http, url + "/healthz", sup)
        deadline = time.monotonic() + DEADLINE
        while len(children(sup.pid)) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        first = children(sup.pid)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        while not (len(children(sup.pid)) == 2 and victim not in children(sup.pid)):
            assert time.monotonic() < deadline + DEADLINE, "the dead child was not replaced"
            await asyncio.sleep(0.05)
        status, _ = await post(http, url, dep.token, send_body(1), None)
        assert status == 202
    assert sup.poll() is None


async def test_children_that_cannot_start_make_the_supervisor_give_up(dep: Deployment) -> None:
    with socket.socket() as taken:  # a plain listener (no SO_REUSEPORT) holds the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sup = dep.serve(port, "--workers", "2", "--no-dispatch")
        assert sup.wait(timeout=120) == 1
        dep.procs.remove(sup)


async def test_a_worker_dispatches_serves_only_operations_and_stops_on_sigterm(
    dep: Deployment,
) -> None:
    port, ops = free_port(), free_port()
    serve = dep.serve(port, "--no-dispatch")
    worker = dep.worker("--metrics-port", str(ops), "--concurrency", "8")
    url, ops_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{ops}"
    async with aiohttp.ClientSession() as http:
        await wait_http(http, url + "/healthz", serve)
        await wait_http(http, ops_url + "/readyz", worker)
        status, body = await post(http, url, dep.token, send_body(7), None)
        assert status == 202
        deadline = time.monotonic() + DEADLINE
        while [line["id"] for line in read_outbox(dep.outbox)] != [body["id"]]:
            assert time.monotonic() < deadline, "the worker did not send it"
            await asyncio.sleep(0.05)
        async with http.get(ops_url + "/metrics") as r:
            text = await r.text()
        assert counter_total(text, "lendsms_dispatch_outcomes_total") == 1
        async with http.post(ops_url + "/v1/messages", json=send_body(8)) as r:
            assert r.status in (404, 405), "the worker must not expose the API"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=DEADLINE) == 0
    dep.procs.remove(worker)
