"""``lendsms worker``: dispatch only, for scale-out.

A worker runs what the dispatcher needs — the store, the contact policy's
hand-off re-checks, its own audit chain (its own instance id), the providers,
client status webhooks — and never binds the API port: the application is set
up and cleaned up without a listening site. With ``--metrics-port`` a small
operations server answers ``/metrics``, ``/healthz`` and ``/readyz`` for it.

SIGTERM or SIGINT stops it gracefully: it stops claiming, lets the attempts in
flight finish (up to ``server.shutdown_timeout``) and closes the audit chain.
An attempt still running after that is cancelled; its lease runs out and
whichever dispatcher claims the message next asks the provider's status query
before anything is sent again (DESIGN.md invariant 9).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web

from config.settings import Settings, load_settings
from gateway.appkeys import (
    AUDIT,
    CLOCK,
    CONTACT,
    DISPATCHER,
    METRICS,
    PROVIDERS,
    SETTINGS,
    STORE,
)
from gateway.metrics import mark_process_dead

_SHARED_KEYS: tuple[web.AppKey[Any], ...] = (
    SETTINGS,
    CLOCK,
    METRICS,
    STORE,
    AUDIT,
    DISPATCHER,
    PROVIDERS,
    CONTACT,  # the dispatcher's hand-off checks read the policy store: /readyz reports it
)


def operations_app(main: web.Application) -> web.Application:
    """``/metrics``, ``/healthz`` and ``/readyz`` of ``main`` (already started),
    on an application of their own: nothing else of the gateway is exposed."""
    from gateway import handlers

    ops = web.Application()
    for key in _SHARED_KEYS:
        ops[key] = main[key]
    ops.router.add_get("/metrics", handlers.metrics)
    ops.router.add_get("/healthz", handlers.healthz)
    ops.router.add_get("/readyz", handlers.readyz)
    return ops


def worker_settings(settings: Settings) -> Settings:
    """A worker accepts nothing: no backpressure snapshot to keep fresh."""
    quiet = dataclasses.replace(settings.backpressure, max_queue_depth=0, max_queue_age_seconds=0)
    return dataclasses.replace(settings, backpressure=quiet)


async def run_worker(settings: Settings, metrics_host: str, metrics_port: int | None) -> int:
    from gateway import __version__
    from gateway.app import create_app
    from gateway.heap import settle

    # no pipeline stages: a worker accepts nothing (and starts in a second, not three)
    app = create_app(worker_settings(settings), dispatch=True, stages=())
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()  # runs the cleanup contexts up to their yield: store ... dispatcher
    ops_runner: web.AppRunner | None = None
    try:
        if metrics_port is not None:
            ops_runner = web.AppRunner(operations_app(app), access_log=None)
            await ops_runner.setup()
            await web.TCPSite(ops_runner, metrics_host, metrics_port).start()
        settle()  # built: keep the collector off this heap (gateway/heap.py)
        where = "" if metrics_port is None else f"; metrics on {metrics_host}:{metrics_port}"
        print(f"lendsms {__version__} worker dispatching{where}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        if ops_runner is not None:
            await ops_runner.cleanup()
        await runner.cleanup()  # the dispatcher finishes what is in flight, then the rest
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from gateway.logs import setup_logging

    env = dict(os.environ)
    if args.concurrency is not None:
        env["LENDSMS_DISPATCH__WORKERS"] = str(args.concurrency)
    if args.log_level:
        env["LENDSMS_LOG__LEVEL"] = args.log_level
    settings = load_settings(args.config, env)
    setup_logging(settings.log.level)
    try:
        return asyncio.run(run_worker(settings, args.metrics_host, args.metrics_port))
    finally:
        mark_process_dead(os.getpid())


def add_worker_command(
    sub: Any, with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
) -> None:
    sp = with_config(
        sub.add_parser(
            "worker",
            help="dispatch only (scale-out); never binds the API port",
            description="Run the dispatcher alone: claim due messages from the store and "
            "hand them to providers. Graceful on SIGTERM.",
        )
    )
    sp.add_argument("--concurrency", type=int, metavar="K",
                    help="sends in flight at once (overrides dispatch.workers)")  # fmt: skip
    sp.add_argument("--metrics-port", type=int, metavar="P",
                    help="serve /metrics, /healthz and /readyz on this port")  # fmt: skip
    sp.add_argument("--metrics-host", default="127.0.0.1", metavar="H",
                    help="address for --metrics-port (default 127.0.0.1)")  # fmt: skip
    sp.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sp.set_defaults(func=cmd_worker)
