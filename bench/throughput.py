"""Acceptance throughput: ``POST /v1/messages`` answered per second, and latency
percentiles, at a fixed concurrency, for the gateway on SQLite with one process,
on Redis with one and with two processes (``serve --workers 2``), and for a bare
one-process aiohttp server that echoes the JSON it gets: the ceiling of this
machine and of this load generator. Then a fixed rate (500 requests/s offered)
against Redis with two processes, for its p99 (after one second at that rate
that is not counted, as the closed loops' first requests are not). The bench
starts loading a ``--workers 2`` gateway only once both processes listen:
connections made while only the first one listened would all stay with it.

The gateways run ``serve --no-dispatch``: the measurement is about acceptance
(authentication, validation, filters, contact policy, the durable audit record
and the store transaction), not about providers. Every server is a subprocess on
a free loopback port; the load generator (raw asyncio connections with
keep-alive, every request prepared as bytes before the clock starts) runs in
this process. The requests are a realistic mix from the dev corpus
(/work/shared/corpus/dev.jsonl, Chinese texts): nine in ten are texts that
should be sent, one in ten one that is held or blocked (a 422 answer is an
expected answer, not an error). Every request has its own borrower id, number
and Idempotency-Key, so no contact cap interferes.

The last columns are the CPU time each request cost, measured from /proc
during the timed part: the server processes (all of a supervisor's children),
the local Redis server (Redis rows only) and this load generator. On a
machine where they all share the cores, their sum bounds the rate.

    .venv/bin/python bench/throughput.py [--requests N] [--concurrency C] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a script, bench/ is first on sys.path and bench/filters.py would shadow
# the filters package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.redis_keys

from aiohttp import web  # noqa: E402

from tests.redis_keys import drop_keys_containing  # noqa: E402

CORPUS = Path(os.environ.get("LENDSMS_CORPUS", "/work/shared/corpus/dev.jsonl"))
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
LENDSMS = [sys.executable, "-m", "gateway.cli"]
HEADER = [
    "| config | processes | requests | accepted/s | p50 ms | p95 ms | p99 ms | errors "
    "| % of echo | CPU µs/request: server | Redis | load generator |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]


# ------------------------------------------------------------------ the echo server


def echo_server(port: int) -> None:
    """The ceiling: read the JSON, answer it back (one process)."""

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(await request.json(), status=202)

    app = web.Application()
    app.router.add_post("/v1/messages", echo)
    app.router.add_get("/healthz", lambda _: web.json_response({"status": "ok"}))
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=4096)


# ------------------------------------------------------------------ request mix


def corpus_mix(count: int, offset: int) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line]
    rows = [r for r in rows if r["lang"] == "zh"]
    send = [r for r in rows if r["expect"] == "send"]
    stop = [r for r in rows if r["expect"] != "send"]
    out = []
    for i in range(count):
        n = offset + i
        row = stop[n % len(stop)] if n % 10 == 9 else send[n % len(send)]
        out.append({"to": f"+86138{n:08d}", "borrower_id": f"B-{n}", "purpose": row["purpose"],
                    "text": row["text"]})  # fmt: skip
    return out


# ------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ CPU accounting


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (Linux /proc), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _family(pid: int) -> list[int]:
    """``pid`` and its children (a supervisor's workers)."""
    out = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(entry.name))
    return out


def _local_redis_pid() -> int | None:
    """The Redis server's pid when it runs on this machine (its CPU is part of
    the cost of an acceptance)."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            pid = int(client.info("server")["process_id"])
        finally:
            client.close()
    except Exception:  # no Redis here: no column
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


@dataclass
class CpuMeter:
    """CPU seconds used by the servers, Redis and this process during a run."""

    servers: list[int]
    redis_pid: int | None
    start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    used: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def _now(self) -> tuple[float, float, float]:
        me = os.times()
        return (sum(_cpu_seconds(p) for p in self.servers),
                _cpu_seconds(self.redis_pid) if self.redis_pid else 0.0,
                me.user + me.system)  # fmt: skip

    def __enter__(self) -> CpuMeter:
        self.start = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._now()
        self.used = (end[0] - self.start[0], end[1] - self.start[1], end[2] - self.start[2])


def redis_missing(tmp: Path) -> str | None:
    from config.settings import SettingsError, load_settings

    (tmp / "probe.toml").write_text(
        "[keys]\n" + "".join(f'{k} = "{"A" * 43}="\n' for k in ("data", "index", "audit")),
        encoding="utf-8",
    )
    try:
        settings = load_settings(tmp / "probe.toml", {"LENDSMS_STORE__BACKEND": "redis"})
    except SettingsError as exc:
        return f"redis store not available: {exc}"
    try:
        from gateway.app import open_store
        from gateway.store.sqlite import SqliteStore

        if isinstance(open_store(settings), SqliteStore):
            return "redis store not available"
    except ImportError as exc:
        return f"redis store not available: {exc}"
    return None


@dataclass
class Gateway:
    backend: str
    workers: int
    profile: Path | None = None
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lendsms-tp-")))
    prefix: str = field(default_factory=lambda: "bench" + secrets.token_hex(4))
    port: int = field(default_factory=free_port)
    token: str = ""
    pids: list[int] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LENDSMS_")}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env["LENDSMS_LOG__LEVEL"] = "WARNING"
        if self.backend == "redis":
            env.update(
                LENDSMS_STORE__BACKEND="redis",
                LENDSMS_STORE__REDIS_URL=REDIS_URL,
                LENDSMS_STORE__REDIS_PREFIX=self.prefix,
                LENDSMS_POLICY__BACKEND="redis",
                LENDSMS_POLICY__REDIS_URL=REDIS_URL,
                LENDSMS_POLICY__REDIS_PREFIX=self.prefix + "p:",
            )
        return env

    def cli(self, *args: str) -> str:
        config = str(self.root / "lendsms.toml")
        done = subprocess.run([*LENDSMS, *args, "--config", config], env=self.env(),
                              capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
        return done.stdout

    def command(self) -> list[str]:
        serve = ["serve", "--config", str(self.root / "lendsms.toml"), "--port", str(self.port),
                 "--no-dispatch", "--workers", str(self.workers)]  # fmt: skip
        if self.profile is not None:
            return [sys.executable, "-m", "cProfile", "-o", str(self.profile), "-m",
                    "gateway.cli", *serve]  # fmt: skip
        return [*LENDSMS, *serve]

    @contextmanager
    def running(self) -> Iterator[str]:
        subprocess.run([*LENDSMS, "init", "--dir", str(self.root)], env=self.env(), check=True,
                       capture_output=True, timeout=120)  # fmt: skip
        self.cli("clients", "add", "bench")
        self.token = self.cli("keys", "create", "--client", "bench", "--scope", "send")
        self.token = self.token.splitlines()[-1]
        proc = subprocess.Popen(self.command(), env=self.env(), stdout=subprocess.DEVNULL)
        try:
            wait_up(self.port, proc, listeners=self.workers)
            self.pids = _family(proc.pid)
            yield f"http://127.0.0.1:{self.port}"
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self.drop_redis_keys()

    def drop_redis_keys(self) -> None:
        if self.backend != "redis":
            return
        drop_keys_containing(REDIS_URL, self.prefix)


def _listeners(port: int) -> int:
    """Listening IPv4 sockets on ``port``: one per ``serve`` worker (SO_REUSEPORT)."""
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return 0
    suffix = f":{port:04X}"
    return sum(1 for line in lines if (f := line.split())[1].endswith(suffix) and f[3] == "0A")


def wait_up(port: int, proc: subprocess.Popen[bytes], listeners: int = 1) -> None:
    """Until ``/healthz`` answers and every worker listens: connections made
    while only the first one listens would all stay with it."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200") and _listeners(port) >= listeners:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not come up with {listeners} listening workers")


ECHO_PIDS: list[int] = []


@contextmanager
def echo_running() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--echo", str(port)])
    try:
        wait_up(port, proc)
        ECHO_PIDS[:] = [proc.pid]
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


# ------------------------------------------------------------------ the load generator


@dataclass
class Result:
    label: str
    processes: int
    latencies: list[float] = field(default_factory=list)
    accepted: int = 0
    errors: int = 0
    elapsed: float = 0.0
    error_statuses: Counter[int] = field(default_factory=Counter)  # 0: no answer
    cpu: tuple[float, float, float] | None = None  # servers, Redis, load generator (s)

    @property
    def rate(self) -> float:
        return self.accepted / self.elapsed if self.elapsed else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0

    def row(self, ceiling: float | None) -> str:
        share = f"{100 * self.rate / ceiling:.0f}%" if ceiling else "-"
        cpu = " | | |"
        if self.cpu is not None and self.latencies:
            n = len(self.latencies) / 1e6
            server, redis_s, load = (f"{c / n:,.0f}" if c else "-" for c in self.cpu)
            cpu = f" {server} | {redis_s} | {load} |"
        return (f"| {self.label} | {self.processes} | {len(self.latencies)} | {self.rate:,.0f} | "
                f"{self.pct(0.5):.1f} | {self.pct(0.95):.1f} | {self.pct(0.99):.1f} | "
                f"{self.errors} | {share} |{cpu}")  # fmt: skip


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection that sends prepared request bytes and
    reads answers by their Content-Length: the load generator's per-request
    cost is a write and a read, so most of the machine is left to the server."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(0)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(self.buf[:head_end]).lower() + b"\r\n"
        at = head.find(b"\r\ncontent-length:")
        if at < 0:  # the servers measured here always send a length
            if self.transport is not None:
                self.transport.close()
            return
        length = int(head[at + 17 : head.index(b"\r\n", at + 2)])
        if len(self.buf) < head_end + 4 + length:
            return
        status = int(self.buf[9:12])
        del self.buf[: head_end + 4 + length]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    async def request(self, data: bytes) -> int:
        """The answer's status; 0 when the connection is lost."""
        if self.lost or self.transport is None:
            return 0
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


def prepare(url: str, token: str, bodies: list[dict[str, Any]]) -> list[bytes]:
    """Every request as bytes, made before the clock starts."""
    host = url.removeprefix("http://")
    out = []
    for body in bodies:
        payload = json.dumps(body, ensure_ascii=False).encode()
        head = (f"POST /v1/messages HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {token}\r\n"
                f"Idempotency-Key: {secrets.token_hex(12)}\r\n"
                f"Content-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n")  # fmt: skip
        out.append(head.encode() + payload)
    return out


async def _connect(url: str) -> _Conn:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    _, conn = await asyncio.get_running_loop().create_connection(_Conn, host, int(port))
    return conn


async def _one(conn: _Conn, data: bytes, result: Result, started: float | None = None) -> None:
    started = time.perf_counter() if started is None else started
    status = await conn.request(data)
    result.latencies.append(time.perf_counter() - started)
    if status == 202:
        result.accepted += 1
    elif status != 422:  # blocked or unroutable by policy: expected for the stop share
        result.errors += 1
        result.error_statuses[status] += 1


async def closed_loop(url: str, token: str, bodies: list[dict[str, Any]], conc: int,
                      result: Result, servers: list[int] | None = None,
                      with_redis: bool = False) -> None:  # fmt: skip
    """``conc`` requests in flight at all times until ``bodies`` are sent;
    ``servers``: the pids whose CPU is counted, with this process's and, when
    ``with_redis``, the local Redis server's."""
    requests = prepare(url, token, bodies)
    conns = [await _connect(url) for _ in range(conc)]
    try:
        warm = Result("warm", 0)
        await asyncio.gather(*(_one(c, requests[i], warm) for i, c in enumerate(conns)))
        await asyncio.gather(*(_one(c, requests[conc + i], warm) for i, c in enumerate(conns)))
        work = iter(requests[conc * 2 :])

        async def lane(conn: _Conn) -> None:
            for data in work:
                await _one(conn, data, result)
                if conn.lost:  # the server closed it (counted as an error): a new one
                    conns.append(conn := await _connect(url))

        with CpuMeter(servers or [], _local_redis_pid() if with_redis else None) as meter:
            started = time.perf_counter()
            await asyncio.gather(*(lane(c) for c in conns))
            result.elapsed = time.perf_counter() - started
        result.cpu = meter.used
    finally:
        for c in conns:
            if c.transport is not None:
                c.transport.close()


async def fixed_rate(url: str, token: str, bodies: list[dict[str, Any]], rate: float,
                     result: Result, warm: int = 0) -> None:  # fmt: skip
    """Open loop: one request every 1/rate s whatever the answers (latency from
    the intended start, so a stall is not hidden); a request finds an idle
    connection or opens one. The first ``warm`` requests are sent on the same
    schedule but not counted (a fresh process's first answers, as in the
    closed loop's warm-up)."""
    requests = prepare(url, token, bodies)
    idle = [await _connect(url) for _ in range(8)]
    every: list[_Conn] = list(idle)
    warming = Result("warm", 0)

    async def send(i: int, data: bytes, due: float) -> None:
        conn = idle.pop() if idle else await _connect(url)
        if conn not in every:
            every.append(conn)
        await _one(conn, data, warming if i < warm else result, started=due)
        if not conn.lost:
            idle.append(conn)

    tasks = []
    started = time.perf_counter()
    try:
        for i, data in enumerate(requests):
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(i, data, due)))
        await asyncio.gather(*tasks)
        result.elapsed = time.perf_counter() - started - warm / rate
    finally:
        for c in every:
            if c.transport is not None:
                c.transport.close()


# ------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="measured, per config")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=500.0, help="offered, for the p99 run")
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="cProfile the one-process gateways into DIR")  # fmt: skip
    parser.add_argument("--echo", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo is not None:
        echo_server(args.echo)
        return 0
    n, conc = args.requests, args.concurrency
    total = n + conc * 2
    with tempfile.TemporaryDirectory() as tmp:
        missing = redis_missing(Path(tmp))
    print(f"throughput: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, concurrency "
          f"{conc}, gateways with --no-dispatch; load generator in this process\n")  # fmt: skip
    results: list[Result | str] = []
    with echo_running() as url:
        echo = Result("echo (bare aiohttp)", 1)
        asyncio.run(closed_loop(url, "-", corpus_mix(total, 0), conc, echo, ECHO_PIDS))
    configs = [("sqlite", 1), ("redis", 1), ("redis", 2)]
    for backend, workers in configs:
        label = f"{backend}"
        if backend == "redis" and missing is not None:
            results.append(f"| {label} | {workers} | n/a ({missing}) | | | | | | |")
            continue
        profile = None
        if args.profile is not None and workers == 1:
            profile = args.profile / f"{backend}-1.prof"
        if profile is not None:
            profile.parent.mkdir(parents=True, exist_ok=True)
        gateway = Gateway(backend, workers, profile)
        with gateway.running() as url:
            result = Result(label, workers)
            asyncio.run(closed_loop(url, gateway.token, corpus_mix(total, 0), conc, result,
                                    gateway.pids, with_redis=backend == "redis"))  # fmt: skip
            results.append(result)
    fixed: Result | None = None
    if missing is None:
        gateway = Gateway("redis", 2)
        with gateway.running() as url:
            fixed = Result(f"redis, {args.rate:.0f}/s offered", 2)
            warm = int(args.rate)  # one second, not counted
            bodies = corpus_mix(warm + int(args.rate * args.rate_seconds), 0)
            asyncio.run(fixed_rate(url, gateway.token, bodies, args.rate, fixed, warm))
    print(*HEADER, sep="\n")
    print(echo.row(None))
    for r in results:
        print(r if isinstance(r, str) else r.row(echo.rate))
    if fixed is not None:
        print(fixed.row(None))
    for r in [echo, *results, fixed]:
        if isinstance(r, Result) and r.error_statuses:
            why = ", ".join(f"{n} x {s or 'no answer'}" for s, n in r.error_statuses.items())
            print(f"errors of {r.label} ({r.processes}): {why}")
    two = next((r for r in results if isinstance(r, Result) and r.processes == 2), None)
    if two is not None and fixed is not None:
        print(f"\ntargets: redis x2 >= 2,000 accepted/s: {two.rate:,.0f}; p99 <= 50 ms at "
              f"{args.rate:.0f}/s: {fixed.pct(0.99):.1f} ms; >= 35% of echo: "
              f"{100 * two.rate / echo.rate:.0f}%")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.1f} (other work on this machine skews the numbers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
