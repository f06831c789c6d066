"""The application factory. Nothing does I/O at import time; every resource is
opened and closed in a ``cleanup_ctx`` generator, in dependency order."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Sequence

from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from config.settings import Settings, key_bytes
from gateway.accept import Acceptor
from gateway.appkeys import (
    ACCEPTOR,
    AUDIT,
    CLOCK,
    DISPATCHER,
    INSTANCE_ID,
    METRICS,
    PROVIDERS,
    SETTINGS,
    STAGES,
    STORE,
)
from gateway.audit import AuditWriter
from gateway.clock import Clock, SystemClock
from gateway.crypto import BlindIndex, FieldCipher
from gateway.dispatch import Dispatcher
from gateway.handlers import routes
from gateway.metrics import Metrics
from gateway.middlewares import problems, request_context
from gateway.pipeline import Pipeline, Stage, default_stages
from gateway.store.base import Store
from gateway.store.sqlite import SqliteStore
from providers.base import Provider
from providers.registry import build_provider
from providers.routing import Router

log = logging.getLogger("lendsms.app")


def derive_key(master: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        master
    )


def new_instance_id() -> str:
    host = "".join(c for c in socket.gethostname() if c.isalnum())[:16] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


def open_store(settings: Settings) -> Store:
    """The store backend the settings name (only sqlite in this release)."""
    cipher = FieldCipher(key_bytes(settings.keys.data))
    index = BlindIndex(key_bytes(settings.keys.index))
    return SqliteStore(settings.store.path, cipher, index)


def open_audit(settings: Settings, instance_id: str) -> AuditWriter:
    master = key_bytes(settings.keys.audit)
    return AuditWriter(
        settings.audit.dir,
        instance_id=instance_id,
        seal_key=derive_key(master, "lendsms audit seal v1"),
        chain_key=derive_key(master, "lendsms audit chain v1"),
        fsync=settings.audit.fsync,
    )


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
    dispatch: bool | None = None,
    stages: Sequence[Stage] | None = None,
) -> web.Application:
    """Build the service. ``dispatch`` overrides ``settings.dispatch.enabled``;
    ``stages`` replaces the pipeline's default stages (extensions, tests)."""
    app = web.Application(
        middlewares=[request_context, problems],
        client_max_size=settings.server.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[METRICS] = metrics or Metrics()
    app[INSTANCE_ID] = new_instance_id()
    app[DISPATCHER] = None
    app[STAGES] = tuple(stages) if stages is not None else tuple(default_stages())
    app.add_routes(routes)
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_audit_ctx)
    app.cleanup_ctx.append(_providers_ctx)
    app.cleanup_ctx.append(_acceptor_ctx)
    if settings.dispatch.enabled if dispatch is None else dispatch:
        app.cleanup_ctx.append(_dispatch_ctx)
    app.on_response_prepare.append(_hide_server_banner)
    return app


async def _hide_server_banner(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = "lendsms"


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = open_store(app[SETTINGS])
    await store.open()
    app[STORE] = store
    yield
    await store.close()


async def _audit_ctx(app: web.Application) -> AsyncIterator[None]:
    audit = open_audit(app[SETTINGS], app[INSTANCE_ID])
    await audit.start()
    app[AUDIT] = audit
    yield
    await audit.close()


async def _providers_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    providers: dict[str, Provider] = {}
    try:
        for name, conf in settings.providers.items():
            provider = build_provider(name, conf.type, conf.options, base_dir=settings.base_dir)
            await provider.start()
            providers[name] = provider
        app[PROVIDERS] = providers
        yield
    finally:
        for provider in providers.values():
            await provider.close()


async def _acceptor_ctx(app: web.Application) -> AsyncIterator[None]:
    stages: tuple[Stage, ...] = app[STAGES]
    app[ACCEPTOR] = Acceptor(
        app[SETTINGS],
        app[STORE],
        app[AUDIT],
        Pipeline(stages),
        app[CLOCK],
        app[METRICS],
    )
    yield


async def _dispatch_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    providers: dict[str, Provider] = app[PROVIDERS]
    dispatcher = Dispatcher(
        settings.dispatch,
        app[STORE],
        app[AUDIT],
        providers,
        Router(settings.routes),
        app[CLOCK],
        app[METRICS],
        owner=app[INSTANCE_ID],
    )
    dispatcher.start()
    app[DISPATCHER] = dispatcher
    yield
    await dispatcher.stop(settings.server.shutdown_timeout)
