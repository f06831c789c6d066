"""The process model of ``lendsms serve``.

``serve`` (one process, the default) builds the app and serves it. ``serve
--workers N`` (N > 1) runs a supervisor instead: it binds nothing itself and
starts N children, each ``lendsms serve --child`` with the same options, which
build their own app and bind the same host:port with ``SO_REUSEPORT``, so the
kernel spreads connections over all of them and every core serves. The
supervisor forwards SIGTERM / SIGINT for a graceful shutdown, restarts a child
that dies unexpectedly (with a growing delay), and gives up with exit status 1
when children keep failing during start-up.

Every child is a whole gateway process: its own store connection, audit chain
(its own instance id, so its own segment files), providers and, unless
``--no-dispatch``, its own dispatcher (the queue's leases make several safe).
With more than one process, Prometheus metrics use prometheus_client's
multiprocess mode: the supervisor gives its children a fresh folder in
``PROMETHEUS_MULTIPROC_DIR`` (set before they import prometheus_client) and
drops the live gauges of each child that ends. Redis is the store meant for
scale-out; a shared SQLite file works too (WAL, ``BEGIN IMMEDIATE``, leases),
with every write still serialised by SQLite's single writer.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from config.settings import Settings, load_settings
from gateway.metrics import MULTIPROC_ENV, mark_process_dead

log = logging.getLogger("lendsms.supervisor")

READY_FD_ENV = "LENDSMS_READY_FD"  # a child writes one byte there once it listens
MAX_START_FAILURES = 5  # children in a row, for one slot, that died before listening: give up
BACKOFF_BASE, BACKOFF_MAX = 0.25, 10.0
TICK = 0.1


def worker_count(value: str) -> int:
    """``--workers``: a number, or ``auto`` / ``0`` for one per CPU."""
    if value == "auto":
        return os.cpu_count() or 1
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("takes a number or auto") from None
    if n < 0 or n > 256:
        raise argparse.ArgumentTypeError("must be between 0 (auto) and 256")
    return n or os.cpu_count() or 1


@dataclass
class _Child:
    slot: int
    proc: subprocess.Popen[bytes]
    ready_fd: int  # the read end of the pipe the child reports readiness on
    failures: int = 0  # start-up failures in a row before this one
    ready: bool = False

    def poll_ready(self) -> bool:
        if not self.ready:
            with contextlib.suppress(BlockingIOError):
                self.ready = os.read(self.ready_fd, 1) == b"1"
        return self.ready


@dataclass
class Supervisor:
    """Runs ``command`` ``count`` times and keeps them running; see the module."""

    command: Sequence[str]
    count: int
    env: dict[str, str]
    shutdown_timeout: float = 10.0
    children: dict[int, _Child] = field(default_factory=dict)
    _stopping: bool = False
    _restart_at: dict[int, tuple[float, int]] = field(default_factory=dict)

    def _spawn(self, slot: int, failures: int = 0) -> None:
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        env = {**self.env, READY_FD_ENV: str(write_end)}
        try:
            proc = subprocess.Popen(  # noqa: S603 - our own argv
                list(self.command), env=env, pass_fds=(write_end,)
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self.children[slot] = _Child(slot, proc, read_end, failures)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping = True

    def run(self) -> int:
        """Until SIGTERM / SIGINT (0) or children keep failing at start (1)."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        for slot in range(self.count):
            self._spawn(slot)
        status = 0
        while not self._stopping:
            time.sleep(TICK)
            if not self._reap():
                status = 1
                break
            self._restart_due()
        self._stop_all()
        return status

    def _reap(self) -> bool:
        """Note children that ended; False when one keeps failing at start."""
        now = time.monotonic()
        for slot, child in list(self.children.items()):
            code = child.proc.poll()
            ready = child.poll_ready()
            if code is None:
                continue
            del self.children[slot]
            os.close(child.ready_fd)
            mark_process_dead(child.proc.pid)
            failures = 0 if ready else child.failures + 1
            if failures >= MAX_START_FAILURES:
                log.error("a serve process keeps failing at start; giving up",
                          extra={"code": code, "count": failures})  # fmt: skip
                return False
            delay = min(BACKOFF_MAX, BACKOFF_BASE * 2**failures)
            log.warning("a serve process ended unexpectedly; restarting it",
                        extra={"code": code, "count": failures})  # fmt: skip
            self._restart_at[slot] = (now + delay, failures)
        return True

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot, (when, failures) in list(self._restart_at.items()):
            if when <= now:
                del self._restart_at[slot]
                self._spawn(slot, failures)

    def _stop_all(self) -> None:
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.shutdown_timeout + 5
        for child in self.children.values():
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
            os.close(child.ready_fd)
            mark_process_dead(child.proc.pid)
        self.children.clear()


def report_ready() -> None:
    """In a child: tell the supervisor that this process listens."""
    fd = os.environ.pop(READY_FD_ENV, None)
    if fd is not None and fd.isdigit():
        with contextlib.suppress(OSError):
            os.write(int(fd), b"1")
            os.close(int(fd))


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port with ``SO_REUSEPORT``, so every child of
    the supervisor binds the same port (the kernel spreads connections)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def child_command(args_config: str | None, forwarded: Sequence[str]) -> list[str]:
    """The argv of one child: this interpreter, ``lendsms serve --child``."""
    command = [sys.executable, "-m", "gateway.cli", "serve", "--child", *forwarded]
    if args_config is not None:
        command += ["--config", str(Path(args_config).resolve())]
    return command


def _metrics_dir(settings: Settings, env: dict[str, str]) -> tuple[str, bool]:
    """The multiprocess folder: the operator's (kept as it is), or a fresh one
    under the setup's ``var/`` (or the system's temp folder) that we remove."""
    if env.get(MULTIPROC_ENV):
        return env[MULTIPROC_ENV], False
    var = settings.base_dir / "var"
    parent = var if var.is_dir() else None
    return tempfile.mkdtemp(prefix="metrics-", dir=parent), True


def supervise(settings: Settings, count: int, config: str | None, forwarded: Sequence[str]) -> int:
    """``serve --workers N`` with N > 1."""
    env = dict(os.environ)
    folder, ours = _metrics_dir(settings, env)
    env[MULTIPROC_ENV] = folder
    host, port = settings.server.host, settings.server.port
    print(f"lendsms supervising {count} serve processes on http://{host}:{port}", flush=True)
    supervisor = Supervisor(
        child_command(config, forwarded), count, env, settings.server.shutdown_timeout
    )
    try:
        return supervisor.run()
    finally:
        if ours:
            shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------ the command


def serve_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment with the command line's overrides of the settings."""
    env = dict(os.environ)
    if args.host:
        env["LENDSMS_SERVER__HOST"] = f'"{args.host}"'
    if args.port is not None:
        env["LENDSMS_SERVER__PORT"] = str(args.port)
    if args.log_level:
        env["LENDSMS_LOG__LEVEL"] = args.log_level
    return env


def forwarded_args(args: argparse.Namespace) -> list[str]:
    out = []
    if args.host:
        out += ["--host", args.host]
    if args.port is not None:
        out += ["--port", str(args.port)]
    if args.log_level:
        out += ["--log-level", args.log_level]
    if args.no_dispatch:
        out.append("--no-dispatch")
    return out


def _usage_error(message: str) -> int:
    print(f"lendsms: {message}", file=sys.stderr)
    return 1


def run_serve(args: argparse.Namespace) -> int:
    """``lendsms serve``: one process, or a supervisor of ``--workers`` children."""
    from aiohttp import web

    from gateway import __version__
    from gateway.app import create_app
    from gateway.heap import settle
    from gateway.logs import setup_logging
    from gateway.warmup import warm_up

    settings = load_settings(args.config, serve_env(args))
    setup_logging(settings.log.level)
    count = int(args.workers)
    if count > 1 and not args.child:
        if settings.server.port == 0:
            return _usage_error("--workers needs a fixed port (every process binds the same one)")
        return supervise(settings, count, args.config, forwarded_args(args))
    host, port = settings.server.host, settings.server.port
    # a child binds first: one that cannot fails before it opens a store or an audit chain
    sock = None
    if args.child:
        try:
            sock = reuse_port_socket(host, port)
        except OSError as exc:
            return _usage_error(f"cannot listen on {host}:{port} ({exc.strerror})")
    app = create_app(settings, dispatch=False if args.no_dispatch else None)
    warm_up()  # before it listens: its first requests would pay for it
    banner = f"lendsms {__version__} serving on http://{host}:{port}"

    def listening(_: str) -> None:  # run_app calls it once the site listens
        settle()  # the app is built: keep the collector off its heap (gateway/heap.py)
        print(banner, flush=True)
        report_ready()

    try:
        web.run_app(
            app,
            host=None if sock is not None else host,
            port=None if sock is not None else port,
            sock=sock,
            access_log=None,
            print=listening,
            shutdown_timeout=settings.server.shutdown_timeout,
            handle_signals=True,
        )
    finally:
        mark_process_dead(os.getpid())
    return 0
