"""HTTP handlers for the v1 API and operations endpoints."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.accept import accepted_body
from gateway.appkeys import (
    ACCEPTOR,
    AUDIT,
    AUTH_FAILURES,
    CLOCK,
    CONTACT,
    DISPATCHER,
    METRICS,
    PROVIDERS,
    SETTINGS,
    STORE,
)
from gateway.auth import authenticate, require_scope
from gateway.backpressure import check_backpressure
from gateway.bodies import read_body
from gateway.carriage import check_callback, check_carriable
from gateway.clock import rfc3339
from gateway.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    StoreUnavailable,
    TransitionError,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from gateway.logs import message_id as message_id_var
from gateway.models import CANCELLABLE, ApiKey, Message, Status
from gateway.openapi import openapi_document
from gateway.policy.caps import PolicyUnavailable
from gateway.schemas import parse_json, parse_send_request, request_hash
from providers.base import Provider
from providers.circuit import CircuitState

routes = web.RouteTableDef()
JSON = "application/json"


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type=JSON,
        charset="utf-8",
        headers=headers,
    )


async def _key(request: web.Request, scope: str) -> ApiKey:
    throttle = request.app[AUTH_FAILURES]
    source = request.remote or "unknown"
    throttle.check(source)  # 429 once this address has failed too often
    try:
        key = await authenticate(request.app[STORE], request.headers.get("Authorization"))
    except StoreUnavailable:
        raise Unavailable("the key store is unavailable", headers={"Retry-After": "5"}) from None
    except Unauthorized:
        throttle.failed(source)
        raise
    require_scope(key, scope)
    return key


async def _json_body(request: web.Request) -> Any:
    if request.content_type != JSON:
        raise UnsupportedMediaType(f"send the body as {JSON}")
    return parse_json(await read_body(request))


def _idempotency_key(request: web.Request) -> str | None:
    value = request.headers.get("Idempotency-Key")
    if value is None:
        return None
    # printable ASCII is exactly U+0020-U+007E
    if not 1 <= len(value) <= 255 or not (value.isascii() and value.isprintable()):
        raise Invalid(
            errors=[{"field": "Idempotency-Key", "message": "must be 1-255 printable ASCII"}]
        )
    return value


@routes.post("/v1/messages")
async def send_message(request: web.Request) -> web.Response:
    key = await _key(request, "send")
    check_backpressure(request.app)  # 503 + Retry-After while the queue is over a limit
    idem_key = _idempotency_key(request)
    data = await _json_body(request)
    settings = request.app[SETTINGS]
    send = parse_send_request(
        data,
        now=request.app[CLOCK].now(),
        templates=settings.templates,
        max_text_chars=settings.messages.max_text_chars,
    )
    providers: dict[str, Provider] = request.app[PROVIDERS]
    check_carriable(settings, providers, send, key.client_id)  # else 422 /unroutable
    check_callback(settings, send)
    store = request.app[STORE]
    try:
        client = await store.get_client(key.client_id)
    except StoreUnavailable:
        raise Unavailable("the store is unavailable", headers={"Retry-After": "5"}) from None
    if client is None:
        raise Forbidden("this key's client no longer exists")
    idem = None if idem_key is None else (idem_key, request_hash(data))
    try:
        answer = await request.app[ACCEPTOR].submit(key, client, send, idem)
    except StoreUnavailable:
        raise Unavailable("the store is unavailable", headers={"Retry-After": "5"}) from None
    if answer.message_id:
        message_id_var.set(answer.message_id)
    dispatcher = request.app[DISPATCHER]
    if dispatcher is not None and answer.status == 202 and not answer.replayed:
        dispatcher.notify()
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    content_type = "application/problem+json" if answer.status >= 400 else JSON
    return web.Response(
        status=answer.status,
        text=json.dumps(answer.body, ensure_ascii=False),
        content_type=content_type,
        charset="utf-8",
        headers=headers,
    )


def message_view(m: Message) -> dict[str, Any]:
    """The full view of GET /v1/messages/{id}: the 202 answer plus history."""
    return {
        **accepted_body(m),
        "purpose": m.purpose,
        "provider": m.provider,
        "attempts": m.attempts,
        "reference": m.reference,
        "created_at": rfc3339(m.created_at),
        "updated_at": rfc3339(m.updated_at),
        "events": [
            {"at": rfc3339(e.at), "status": str(e.status), "detail": e.detail} for e in m.events
        ],
    }


async def _own_message(request: web.Request, key: ApiKey) -> Message:
    mid = request.match_info["id"]
    if len(mid) > 64:
        raise NotFound("no such message")
    try:
        message = await request.app[STORE].get_message(mid)
    except StoreUnavailable:
        raise Unavailable("the store is unavailable", headers={"Retry-After": "5"}) from None
    if message is None or message.client_id != key.client_id:
        raise NotFound("no such message")
    message_id_var.set(message.id)
    return message


@routes.get("/v1/messages/{id}")
async def get_message(request: web.Request) -> web.Response:
    key = await _key(request, "send")
    return json_response(message_view(await _own_message(request, key)))


@routes.post("/v1/messages/{id}/cancel")
async def cancel_message(request: web.Request) -> web.Response:
    key = await _key(request, "send")
    message = await _own_message(request, key)
    if message.status not in CANCELLABLE:
        raise Conflict(f"a {message.status} message cannot be cancelled")
    now = request.app[CLOCK].now()
    await request.app[AUDIT].append(
        "cancelled", message_id=message.id, clear={"client": key.client_id, "key_id": key.id}
    )
    try:
        updated = await request.app[STORE].transition(
            message.id, Status.CANCELLED, now, detail="cancelled by the client", expect=CANCELLABLE
        )
    except TransitionError:
        raise Conflict("the message moved on and can no longer be cancelled") from None
    if (contact := request.app[CONTACT]) is not None:
        await contact.release(updated)  # a cancelled message gives its caps back
    return json_response(message_view(updated))


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _unready_reasons(app: web.Application) -> list[str]:
    """Why the gateway cannot take messages (empty: ready). Providers are not
    asked: the durable queue absorbs their outages."""
    reasons = []
    try:
        await app[STORE].ping()
    except StoreUnavailable:
        reasons.append("store unavailable")
    if not await app[AUDIT].probe():
        reasons.append("audit log unwritable")
    if await _policy_state(app) == "unavailable":  # acceptance would fail closed (503)
        reasons.append("policy store unavailable")
    return reasons


async def _policy_state(app: web.Application) -> str:
    """The contact-policy store (caps, opt-outs, consents): ``ok``,
    ``unavailable`` or ``disabled`` (an app built without the contact policy)."""
    if (contact := app.get(CONTACT)) is None:
        return "disabled"
    try:
        await contact.backend.ping()
    except PolicyUnavailable:
        return "unavailable"
    return "ok"


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    reasons = await _unready_reasons(request.app)
    providers = {name: {"type": type(p).__name__} for name, p in request.app[PROVIDERS].items()}
    if (dispatcher := request.app[DISPATCHER]) is not None:  # circuit breakers, by provider
        for name, guard in dispatcher.guards.items():
            providers.get(name, {})["circuit"] = str(guard.circuit.state)
    body = {"status": "ready" if not reasons else "unavailable", "reasons": reasons,
            "policy": "unavailable" if "policy store unavailable" in reasons
            else "disabled" if request.app.get(CONTACT) is None else "ok",
            "providers": providers}  # fmt: skip
    return json_response(body, status=503 if reasons else 200)


async def _scrape_time_gauges(app: web.Application) -> None:
    """The gauges read at scrape time: readiness (as /readyz), queue depth and
    age from the store (two queries over the queue table), the webhook backlog
    (one more), circuit states."""
    m = app[METRICS]
    if (dispatcher := app[DISPATCHER]) is not None:
        m.set_circuits(
            {n: g.circuit.state is CircuitState.OPEN for n, g in dispatcher.guards.items()}
        )
    store = app.get(STORE)
    if store is None or AUDIT not in app:
        return
    m.ready.set(0 if await _unready_reasons(app) else 1)
    now = app[CLOCK].now()
    try:
        depth = await store.queue_depth()
        oldest = await store.oldest_due(now)
        webhooks = await store.webhook_backlog(now)
    except StoreUnavailable:
        return  # /readyz reports it; the gauges keep their last values
    m.set_queue(depth, oldest, now)
    m.set_webhooks(webhooks, now)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    await _scrape_time_gauges(request.app)
    payload = request.app[METRICS].exposition()  # every process's, in multiprocess mode
    response = web.Response(body=payload)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document(request.app[SETTINGS]))
