"""The opt-out and consent endpoints of API.md ("Opt-outs and consent"). No
number goes into a URL; bodies carry it. Everything belongs to the key's
client. Deleting an opt-out is scope ``admin`` and audited first (fail
closed: no audit record, no deletion). Adding one is recorded first and
audited after (``opt_out_added``): an opt-out takes effect even while the
audit log is down; the client then gets 503 and retries (adding is
idempotent), which writes the record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from config.contact import OPT_OUT_SCOPES
from gateway.appkeys import AUDIT, CONTACT
from gateway.audit import AuditUnavailable
from gateway.errors import Invalid, StoreUnavailable, Unavailable
from gateway.handlers import _json_body, _key, json_response
from gateway.policy.service import ContactPolicy
from gateway.schemas import parse_phone

routes = web.RouteTableDef()
_CONSENT_PURPOSES = ("marketing",)
_MAX_TEXT = 1000


def _policy(request: web.Request) -> ContactPolicy:
    policy = request.app[CONTACT]
    if policy is None:  # an app built without the contact policy (tests, extensions)
        raise Unavailable("the contact policy is not configured")
    return policy


def _fields(data: Any, required: Mapping[str, bool]) -> dict[str, str]:
    """The string fields of a JSON object; ``required`` maps name -> must be present."""
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object")
    allowed = {*required, "region"}
    errors = [{"field": k, "message": "unknown field"} for k in sorted(set(data) - allowed)]
    out: dict[str, str] = {}
    for name in (*required, "region"):
        value = data.get(name)
        if value is None:
            if required.get(name):
                errors.append({"field": name, "message": "is required"})
            continue
        if not isinstance(value, str) or not 0 < len(value) <= _MAX_TEXT:
            errors.append({"field": name, "message": f"must be a string of 1-{_MAX_TEXT}"})
            continue
        out[name] = value
    if errors:
        raise Invalid(errors=errors)
    out["to"] = parse_phone(out["to"], out.get("region"))[0]
    return out


def _choice(value: str | None, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise Invalid(errors=[{"field": field, "message": f"must be one of {', '.join(allowed)}"}])
    return value


def _view(scopes: frozenset[str]) -> dict[str, Any]:
    return {"opted_out": bool(scopes), "scopes": sorted(scopes)}


def _down() -> Unavailable:
    return Unavailable("the contact-policy store is unavailable", headers={"Retry-After": "5"})


@routes.post("/v1/opt-outs")
async def add_opt_out(request: web.Request) -> web.Response:
    key = await _key(request, "send")
    body = _fields(await _json_body(request), {"to": True, "scope": True})
    scope = _choice(body.get("scope"), OPT_OUT_SCOPES, "scope")
    policy = _policy(request)
    try:
        state = await policy.opt_out(key.client_id, body["to"], scope, "api")
    except StoreUnavailable:
        raise _down() from None
    try:  # after the store: honouring the opt-out comes before its record
        await request.app[AUDIT].append(
            "opt_out_added",
            message_id=None,
            clear={
                "client": key.client_id,
                "key_id": key.id,
                "scope": scope,
                "to_hash": policy.phone(body["to"]),
            },
            sealed={"to": body["to"]},  # never the number in clear
        )
    except AuditUnavailable:
        raise Unavailable(
            "the opt-out is recorded but the audit log is unavailable; retry",
            headers={"Retry-After": "5"},
        ) from None
    return json_response(_view(state.opt_outs), status=201)


@routes.post("/v1/opt-outs/query")
async def query_opt_out(request: web.Request) -> web.Response:
    key = await _key(request, "send")
    body = _fields(await _json_body(request), {"to": True})
    try:
        state = await _policy(request).state(key.client_id, body["to"])
    except StoreUnavailable:
        raise _down() from None
    return json_response(_view(state.opt_outs))


@routes.post("/v1/opt-outs/delete")
async def delete_opt_out(request: web.Request) -> web.Response:
    key = await _key(request, "admin")
    body = _fields(await _json_body(request), {"to": True, "reason": True})
    policy = _policy(request)
    try:
        await request.app[AUDIT].append(
            "opt_out_deleted",
            message_id=None,
            clear={"client": key.client_id, "key_id": key.id, "to_hash": policy.phone(body["to"])},
            sealed={"reason": body["reason"]},
        )
        await policy.lift(key.client_id, body["to"])
    except (AuditUnavailable, StoreUnavailable):
        raise _down() from None
    return json_response(_view(frozenset()))


@routes.post("/v1/consents")
async def add_consent(request: web.Request) -> web.Response:
    key = await _key(request, "send")
    body = _fields(await _json_body(request), {"to": True, "scope": True, "evidence": True})
    purpose = _choice(body.get("scope"), _CONSENT_PURPOSES, "scope")
    try:
        await _policy(request).consent(key.client_id, body["to"], purpose, body["evidence"])
    except StoreUnavailable:
        raise _down() from None
    return json_response({"consented": True, "scope": purpose}, status=201)


@routes.post("/v1/consents/delete")
async def delete_consent(request: web.Request) -> web.Response:
    key = await _key(request, "send")
    body = _fields(await _json_body(request), {"to": True, "scope": False})
    purpose = _choice(body.get("scope", "marketing"), _CONSENT_PURPOSES, "scope")
    try:
        await _policy(request).withdraw(key.client_id, body["to"], purpose)
    except StoreUnavailable:
        raise _down() from None
    return json_response({"consented": False, "scope": purpose})
