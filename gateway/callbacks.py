"""Provider callbacks (API.md "Provider callbacks"):

* ``POST /callbacks/{name}/status`` — delivery receipts move a ``sent`` message to
  ``delivered`` or ``undelivered``. Receipts are idempotent: a duplicate, a late one
  for a message already in a terminal state, and one for an unknown id are recorded
  (receipts table and audit log) and change nothing.
* ``POST /callbacks/{name}/inbound`` — replies from handsets, handed to every
  registered :data:`InboundHandler` (the contact policy records opt-out keywords
  through one; this module records nothing about their content).

``name`` is the provider's name in the settings; its adapter checks the provider's
signature, or the ``callback_token`` that the URL carries as ``?token=`` for
unsigned pushes. A bad signature or token is 403 and changes nothing. Query strings
are never logged (the access log records the route template only).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.appkeys import (
    AUDIT,
    CLOCK,
    INBOUND_HANDLERS,
    INSTANCE_ID,
    METRICS,
    PROVIDERS,
    SETTINGS,
    STORE,
    WEBHOOKS,
)
from gateway.audit import AuditUnavailable
from gateway.bodies import read_body
from gateway.errors import (
    Forbidden,
    Invalid,
    NotFound,
    StoreUnavailable,
    TransitionError,
    Unavailable,
)
from gateway.models import Message, Status
from gateway.webhooks import WebhookNotifier
from providers.base import (
    CallbackMalformed,
    CallbackProvider,
    CallbackRejected,
    CallbackReply,
    CallbackRequest,
    DeliveryState,
    InboundSms,
    Receipt,
)

log = logging.getLogger("lendsms.callbacks")
routes = web.RouteTableDef()

# (provider name, reply) -> None. Registered with register_inbound_handler().
InboundHandler = Callable[[str, InboundSms], Awaitable[None]]
FINAL = {DeliveryState.DELIVERED: Status.DELIVERED, DeliveryState.UNDELIVERED: Status.UNDELIVERED}
RECEIVABLE = frozenset({Status.SENT, Status.SENDING})


def setup_callbacks(app: web.Application) -> None:
    """Add the callback routes and the client-webhook notifier (opened and closed in
    a ``cleanup_ctx``; call this before the dispatcher's context is added)."""
    app.add_routes(routes)
    if INBOUND_HANDLERS not in app:
        app[INBOUND_HANDLERS] = []
    app.cleanup_ctx.append(_webhooks_ctx)


def register_inbound_handler(app: web.Application, handler: InboundHandler) -> None:
    """Call ``handler(provider_name, reply)`` for every verified inbound reply."""
    if INBOUND_HANDLERS not in app:
        app[INBOUND_HANDLERS] = []
    app[INBOUND_HANDLERS].append(handler)


async def _webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    notifier = WebhookNotifier(
        app[SETTINGS].webhooks, app[STORE], app[CLOCK], owner=f"webhooks-{app[INSTANCE_ID]}"
    )
    await notifier.start()
    app[WEBHOOKS] = notifier
    try:
        yield
    finally:
        await notifier.close(app[SETTINGS].server.shutdown_timeout)


def _provider(request: web.Request) -> tuple[str, CallbackProvider]:
    name = request.match_info["name"]
    provider = request.app[PROVIDERS].get(name)
    if provider is None or not isinstance(provider, CallbackProvider):
        raise NotFound("no provider by that name takes callbacks")
    return name, provider


async def _as_callback(request: web.Request) -> CallbackRequest:
    body = await read_body(request)
    headers = {key.lower(): value for key, value in request.headers.items()}
    return CallbackRequest(
        str(request.url), request.method, headers, list(request.query.items()), body,
        request.remote,
    )  # fmt: skip


def _reply(reply: CallbackReply) -> web.Response:
    return web.Response(body=reply.body, status=reply.status, content_type=reply.content_type)


async def _parse(request: web.Request, kind: str) -> tuple[str, list[Any], CallbackReply]:
    name, provider = _provider(request)
    incoming = await _as_callback(request)
    items: list[Any]
    try:
        if kind == "status":
            receipts, reply = provider.parse_receipts(incoming)
            items = list(receipts)
        else:
            replies, reply = provider.parse_inbound(incoming)
            items = list(replies)
    except CallbackRejected:
        log.warning("callback rejected", extra={"provider": name, "event": kind})
        raise Forbidden("the callback's signature or token is not valid") from None
    except CallbackMalformed:
        raise Invalid("the callback is not in the provider's format") from None
    return name, items, reply


@routes.post("/callbacks/{name}/status")
async def status_callback(request: web.Request) -> web.Response:
    name, receipts, reply = await _parse(request, "status")
    try:
        for receipt in receipts:
            await apply_receipt(request.app, name, receipt)
    except (StoreUnavailable, AuditUnavailable):
        # not recorded: the provider pushes it again later
        raise Unavailable("cannot record the receipt now", headers={"Retry-After": "60"}) from None
    return _reply(reply)


@routes.post("/callbacks/{name}/inbound")
async def inbound_callback(request: web.Request) -> web.Response:
    name, replies, reply = await _parse(request, "inbound")
    for sms in replies:
        for handler in request.app.get(INBOUND_HANDLERS, []):
            try:
                await handler(name, sms)
            except Exception as exc:
                log.exception("inbound handler failed", extra={"provider": name})
                retry = {"Retry-After": "60"}  # the provider pushes it again
                raise Unavailable("cannot handle the reply now", headers=retry) from exc
    log.info("inbound replies", extra={"provider": name, "count": len(replies)})
    return _reply(reply)


async def _find(app: web.Application, provider: str, receipt: Receipt) -> Message | None:
    store = app[STORE]
    if receipt.provider_message_id:
        found = await store.find_message_by_provider_id(provider, receipt.provider_message_id)
        if found is not None:
            return found
    if receipt.message_id:  # echoed lendsms id (Alibaba's OutId): only its own messages
        found = await store.get_message(receipt.message_id[:64])
        if found is not None and found.provider == provider:
            return found
    return None


async def apply_receipt(app: web.Application, provider: str, receipt: Receipt) -> Message | None:
    """Record one receipt; move the message when it is still waiting for one.
    Returns the message as it is afterwards (None when no message matches)."""
    now = app[CLOCK].now()
    message = await _find(app, provider, receipt)
    state, code = str(receipt.state), receipt.code
    first = await app[STORE].record_receipt(
        provider, receipt.provider_message_id, message.id if message else None, state, code, now
    )
    if message is None:
        log.info("receipt for an unknown message", extra={"provider": provider, "code": code})
        return None
    new = FINAL.get(receipt.state)
    applies = new is not None and message.status in RECEIVABLE
    await app[AUDIT].append(
        "receipt",
        message_id=message.id,
        clear={"client": message.client_id, "provider": provider, "state": state,
               "code": code, "applied": applies, "duplicate": not first},
    )  # fmt: skip
    if not applies or new is None:
        return message  # intermediate, duplicate or late: recorded, nothing changes
    try:
        updated = await app[STORE].transition(
            message.id, new, now, detail=f"receipt from {provider}: {code}", expect=RECEIVABLE,
            provider_message_id=receipt.provider_message_id,
        )  # fmt: skip
    except TransitionError:
        return await app[STORE].get_message(message.id)
    app[METRICS].deliveries.labels(provider, str(new)).inc()
    if WEBHOOKS in app:
        await app[WEBHOOKS].notify(updated)
    return updated


CALLBACK_PATHS: dict[str, Any] = {
    f"/callbacks/{{name}}/{kind}": {
        "post": {
            "operationId": f"{kind}Callback",
            "summary": summary,
            "security": [],
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                {
                    "name": "token",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "callback_token, for providers whose pushes are unsigned",
                },
            ],
            "responses": {
                "200": {"description": "accepted; the body is what the provider expects"},
                "400": {"description": "not in the provider's format"},
                "403": {"description": "bad signature or token; nothing changed"},
                "404": {"description": "no provider by that name takes callbacks"},
                "408": {"description": "the body arrived too slowly"},
                "413": {"description": "the body is larger than the limit"},
                "503": {"description": "cannot record it now; the provider retries"},
            },
        }
    }
    for kind, summary in (
        ("status", "Delivery receipts from a provider"),
        ("inbound", "Replies from handsets, through a provider"),
    )
}
