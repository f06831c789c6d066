"""The application factory. Nothing does I/O at import time; every resource is
opened and closed in a ``cleanup_ctx`` generator, in dependency order."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Sequence

from aiohttp import web

from config.content_cache import use_default_dir
from config.settings import Settings, key_bytes
from gateway.accept import Acceptor
from gateway.appkeys import (
    ACCEPTOR,
    AUDIT,
    AUTH_FAILURES,
    CLOCK,
    CONTACT,
    DISPATCHER,
    INSTANCE_ID,
    METRICS,
    PROVIDERS,
    SETTINGS,
    STAGES,
    STORE,
    WEBHOOKS,
)
from gateway.audit import AuditWriter
from gateway.audit_setup import open_audit_writer, recover_crashed_chains
from gateway.backpressure import backpressure_ctx
from gateway.callbacks import register_inbound_handler, setup_callbacks
from gateway.clock import Clock, SystemClock
from gateway.crypto import BlindIndex, FieldCipher
from gateway.dispatch import Dispatcher
from gateway.handlers import routes
from gateway.metrics import Metrics
from gateway.middlewares import problems, request_context
from gateway.optouts_http import routes as contact_routes
from gateway.pipeline import Pipeline, Stage, default_stages
from gateway.policy.wiring import contact_ctx, new_contact_policy
from gateway.ratelimit import AuthFailureLimiter
from gateway.review.api import setup_review_api
from gateway.review.web import setup_review_web
from gateway.store.base import AuditStore, Store
from gateway.store.factory import make_store
from providers.base import Provider
from providers.limits import ProviderGuard
from providers.registry import build_provider, provider_limits
from providers.routing import Router

log = logging.getLogger("lendsms.app")


def new_instance_id() -> str:
    host = "".join(c for c in socket.gethostname() if c.isalnum())[:16] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


def open_store(settings: Settings) -> Store:
    """The store backend the settings name (sqlite or redis)."""
    cipher = FieldCipher(key_bytes(settings.keys.data))
    index = BlindIndex(key_bytes(settings.keys.index))
    return make_store(settings.store, cipher, index)


def open_audit(
    settings: Settings,
    instance_id: str,
    store: AuditStore,
    *,
    kind: str = "gateway",
    clock: Clock | None = None,
) -> AuditWriter:
    """The audit writer of one chain (registered in ``store`` when it starts)."""
    return open_audit_writer(settings, store, instance_id, kind=kind, clock=clock)


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
    dispatch: bool | None = None,
    stages: Sequence[Stage] | None = None,
    contact_policy: bool = True,
) -> web.Application:
    """Build the service. ``dispatch`` overrides ``settings.dispatch.enabled``;
    ``stages`` replaces the pipeline's default stages (extensions, tests);
    ``contact_policy=False`` leaves out quiet hours, caps and opt-outs (their
    stages and hand-off checks), for tests of other parts."""
    # the compiled packs' cache beside the deployment's other data, wherever
    # the process was started from (LENDSMS_CONTENT_CACHE still decides first)
    use_default_dir(settings.base_dir / "var" / "cache" / "content")
    app = web.Application(
        middlewares=[request_context, problems],
        client_max_size=settings.server.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[METRICS] = metrics or Metrics()
    app[INSTANCE_ID] = new_instance_id()
    app[DISPATCHER] = None
    app[AUTH_FAILURES] = AuthFailureLimiter(settings.server.auth_failures_per_minute)
    app[CONTACT] = contact = new_contact_policy(settings, app) if contact_policy else None
    policy_stages = contact.stages() if contact is not None else []
    app[STAGES] = tuple(stages) if stages is not None else tuple(default_stages(policy_stages))
    app.add_routes(routes)
    app.add_routes(contact_routes)
    setup_review_api(app)  # /v1/review/...: the compliance-review API
    setup_review_web(app)  # /review: the reviewers' web page
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(contact_ctx)
    app.cleanup_ctx.append(_audit_ctx)
    app.cleanup_ctx.append(_providers_ctx)
    setup_callbacks(app)  # /callbacks/{name}/...; client webhooks (before dispatch)
    if contact is not None:  # inbound STOP / 退订 replies record opt-outs
        register_inbound_handler(app, contact.on_inbound)
    app.cleanup_ctx.append(_acceptor_ctx)
    app.cleanup_ctx.append(backpressure_ctx)  # 503 while the queue is over a limit
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
    audit = open_audit(app[SETTINGS], app[INSTANCE_ID], app[STORE], clock=app[CLOCK])
    audit.on_append = app[METRICS].observe_audit
    await audit.start()
    await recover_crashed_chains(app[SETTINGS], app[STORE], app[INSTANCE_ID], app[CLOCK])
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
        checks=contact.checks() if (contact := app[CONTACT]) is not None else (),
        guards={
            n: ProviderGuard(provider_limits(n, c.options)) for n, c in settings.providers.items()
        },
        templates=settings.templates,
        on_status=app[WEBHOOKS].notify,
    )
    dispatcher.start()
    app[DISPATCHER] = dispatcher
    yield
    await dispatcher.stop(settings.server.shutdown_timeout)
