"""OpenAPI paths of the opt-out and consent endpoints (gateway.optouts_http)."""

from __future__ import annotations

from typing import Any

from config.contact import OPT_OUT_SCOPES


def _body(required: list[str], **props: Any) -> dict[str, Any]:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": {
            "to": {"type": "string", "maxLength": 32, "description": "E.164, or national"},
            "region": {"type": "string", "pattern": "^[A-Z]{2}$"},
            **props,
        },
    }
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


_STATE = {
    "type": "object",
    "required": ["opted_out", "scopes"],
    "properties": {
        "opted_out": {"type": "boolean"},
        "scopes": {"type": "array", "items": {"type": "string", "enum": list(OPT_OUT_SCOPES)}},
    },
}
_CONSENT = {
    "type": "object",
    "required": ["consented", "scope"],
    "properties": {"consented": {"type": "boolean"}, "scope": {"const": "marketing"}},
}
_ERRORS = {
    "400": _problem("malformed JSON, a bad field or an invalid number"),
    "401": _problem("missing, unknown or revoked API key"),
    "403": _problem("the key lacks the needed scope"),
    "408": _problem("the body arrived too slowly"),
    "413": _problem("the body is larger than the limit"),
    "415": _problem("Content-Type is not application/json"),
    "429": _problem("too many failed authentications from this address (Retry-After)"),
    "503": _problem("the contact-policy store (or, for delete, the audit log) is unavailable"),
}
_SCOPE = {"type": "string", "enum": list(OPT_OUT_SCOPES)}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 1000}


def _op(op_id: str, summary: str, body: dict[str, Any], status: str, out: Any) -> dict[str, Any]:
    content = {"application/json": {"schema": out}}
    return {
        "post": {
            "operationId": op_id,
            "summary": summary,
            "requestBody": body,
            "responses": {status: {"description": "done", "content": content}, **_ERRORS},
        }
    }


def contact_paths() -> dict[str, Any]:
    return {
        "/v1/opt-outs": _op(
            "addOptOut", "Record an opt-out for a number (scope send)",
            _body(["to", "scope"], scope=_SCOPE), "201", _STATE,
        ),
        "/v1/opt-outs/query": _op(
            "queryOptOut", "Is a number opted out, and for what (scope send)",
            _body(["to"]), "200", _STATE,
        ),
        "/v1/opt-outs/delete": _op(
            "deleteOptOut", "Lift every opt-out of a number (scope admin; audited)",
            _body(["to", "reason"], reason=_TEXT), "200", _STATE,
        ),
        "/v1/consents": _op(
            "addConsent", "Record a marketing consent with its evidence (scope send)",
            _body(["to", "scope", "evidence"], scope={"const": "marketing"}, evidence=_TEXT),
            "201", _CONSENT,
        ),
        "/v1/consents/delete": _op(
            "deleteConsent", "Withdraw a marketing consent (scope send)",
            _body(["to"], scope={"const": "marketing"}), "200", _CONSENT,
        ),
    }  # fmt: skip
