"""Typed keys for the objects the application shares (``app[KEY]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from config.settings import Settings
from gateway.clock import Clock
from gateway.metrics import Metrics
from gateway.ratelimit import AuthFailureLimiter

if TYPE_CHECKING:
    from gateway.accept import Acceptor
    from gateway.audit import AuditWriter
    from gateway.callbacks import InboundHandler
    from gateway.dispatch import Dispatcher
    from gateway.pipeline import Stage
    from gateway.policy.service import ContactPolicy
    from gateway.store.base import Store
    from gateway.webhooks import WebhookNotifier
    from providers.base import Provider

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", Metrics)
STORE: web.AppKey[Store] = web.AppKey("store")
AUDIT: web.AppKey[AuditWriter] = web.AppKey("audit")
ACCEPTOR: web.AppKey[Acceptor] = web.AppKey("acceptor")
DISPATCHER: web.AppKey[Dispatcher | None] = web.AppKey("dispatcher")
PROVIDERS: web.AppKey[dict[str, Provider]] = web.AppKey("providers")
INSTANCE_ID = web.AppKey("instance_id", str)
STAGES: web.AppKey[tuple[Stage, ...]] = web.AppKey("stages")
CONTACT: web.AppKey[ContactPolicy | None] = web.AppKey("contact")  # None: built without it
# provider callbacks (gateway.callbacks): inbound-reply hooks, client status webhooks
INBOUND_HANDLERS: web.AppKey[list[InboundHandler]] = web.AppKey("inbound_handlers")
WEBHOOKS: web.AppKey[WebhookNotifier] = web.AppKey("webhooks")
AUTH_FAILURES = web.AppKey("auth_failures", AuthFailureLimiter)  # per source address
