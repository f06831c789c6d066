"""The OpenAPI 3.1 document for what the service really does."""

from __future__ import annotations

from typing import Any

from config.settings import PURPOSES, Settings
from gateway import __version__
from gateway.callbacks import CALLBACK_PATHS
from gateway.errors import PROBLEM_BASE
from gateway.models import Status
from gateway.policy.api_doc import contact_paths
from gateway.review.api_doc import review_paths

_PROBLEM_TYPES = [
    "invalid", "unauthorized", "forbidden", "not-found", "conflict", "idempotency-conflict",
    "blocked", "cap-exceeded", "rate-limited", "payload-too-large", "unsupported-media-type",
    "unavailable", "method-not-allowed", "internal", "unroutable", "request-timeout",
]  # fmt: skip


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def _json(ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


_AUTH_ERRORS = {
    "401": _problem("missing, unknown or revoked API key"),
    "403": _problem("the key lacks the needed scope"),
    "429": _problem(
        "too many failed authentications from this address (/rate-limited, rule"
        " auth_failures, Retry-After)"
    ),
    "503": _problem("the store or audit log is unavailable"),
}

_FINDING = {
    "type": "object",
    "required": ["kind", "rule", "category", "action", "start", "end"],
    "properties": {
        "kind": {"type": "string", "enum": ["pii", "content", "policy"]},
        "rule": {"type": "string"},
        "category": {"type": "string"},
        "action": {"type": "string", "enum": ["mask", "append", "note", "hold", "block"]},
        "start": {"type": ["integer", "null"], "minimum": 0},
        "end": {"type": ["integer", "null"], "minimum": 0},
    },
}

_SEND_REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["to", "borrower_id", "purpose"],
    "properties": {
        "to": {
            "type": "string",
            "maxLength": 32,
            "description": "E.164, or national with region: digits (any script) with"
            " spaces, dots, dashes or brackets; no extension",
        },
        "region": {"type": "string", "pattern": "^[A-Z]{2}$"},
        "borrower_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "purpose": {"type": "string", "enum": list(PURPOSES)},
        "text": {"type": "string", "minLength": 1},
        "template": {"type": "string", "minLength": 1, "maxLength": 64},
        "params": {
            "type": "object",
            "maxProperties": 20,
            "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 200},
        },
        "recipient_role": {
            "type": "string",
            "enum": ["borrower", "contact"],
            "default": "borrower",
            "description": "who receives the SMS: the borrower, or a contact (an emergency "
            "contact, not the debtor). To a contact any debt wording or money figure is "
            "blocked (422): only a locate message (please ask X to call us) may reach them.",
        },
        "reference": {"type": "string", "minLength": 1, "maxLength": 256},
        "scheduled_at": {"type": "string", "format": "date-time"},
        "callback_url": {"type": "string", "pattern": "^https://", "maxLength": 2048},
    },
    "oneOf": [{"required": ["text"]}, {"required": ["template"]}],
}

_ACCEPTED = {
    "type": "object",
    "required": ["id", "status", "to_masked", "body", "segments", "encoding", "findings",
                 "scheduled_at"],
    "properties": {
        "id": {"type": "string"},
        "status": {"type": "string", "enum": ["queued", "scheduled", "held"]},
        "to_masked": {"type": "string"},
        "body": {"type": "string"},
        "segments": {"type": "integer", "minimum": 0},
        "encoding": {"type": "string", "enum": ["GSM-7", "UCS-2"]},
        "findings": {"type": "array", "items": {"$ref": "#/components/schemas/Finding"}},
        "scheduled_at": {"type": ["string", "null"], "format": "date-time"},
    },
}  # fmt: skip

_MESSAGE = {
    "type": "object",
    "required": ["id", "status", "purpose", "to_masked", "body", "segments", "findings",
                 "provider", "attempts", "created_at", "updated_at", "events"],
    "properties": {
        "id": {"type": "string"},
        "status": {"type": "string", "enum": [str(s) for s in Status]},
        "purpose": {"type": "string", "enum": list(PURPOSES)},
        "to_masked": {"type": "string"},
        "body": {"type": "string"},
        "segments": {"type": "integer"},
        "encoding": {"type": "string"},
        "findings": {"type": "array", "items": {"$ref": "#/components/schemas/Finding"}},
        "provider": {"type": ["string", "null"]},
        "attempts": {"type": "integer"},
        "reference": {"type": ["string", "null"]},
        "scheduled_at": {"type": ["string", "null"], "format": "date-time"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["at", "status", "detail"],
                "properties": {
                    "at": {"type": "string", "format": "date-time"},
                    "status": {"type": "string"},
                    "detail": {"type": ["string", "null"]},
                },
            },
        },
    },
}  # fmt: skip

_PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "enum": [PROBLEM_BASE + t for t in _PROBLEM_TYPES]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "id": {"type": "string"},
        "rule": {"type": "string"},
        "findings": {"type": "array", "items": {"$ref": "#/components/schemas/Finding"}},
    },
}

_ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def openapi_document(settings: Settings) -> dict[str, Any]:
    limit = settings.server.max_body_bytes
    send_errors = {
        "400": _problem(
            "malformed JSON (not UTF-8, duplicate keys, NaN, numbers over 64 characters or"
            " out of range, nesting too deep), a bad field (unpaired"
            " surrogates, control characters) or an invalid number"
        ),
        "408": _problem(f"the body took longer than {settings.server.body_timeout:g} s"),
        "409": _problem("Idempotency-Key reused with a different body"),
        "413": _problem(f"body over {limit} bytes"),
        "415": _problem("Content-Type is not application/json"),
        "422": _problem(
            "blocked by policy (the body carries id, status and findings), or"
            " /unroutable: no route's providers can carry it (free text to"
            " template-only providers, a template without their code)"
        ),
        **_AUTH_ERRORS,
        "429": _problem(
            "over a contact cap, the client's throughput limit, or too many failed"
            " authentications from this address (Retry-After)"
        ),
        "503": _problem(
            "the store or audit log is unavailable, or backpressure: the dispatch queue"
            " is over its depth or age limit (Retry-After, seconds); nothing was sent"
        ),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "lendsms", "version": __version__,
                 "description": "Secure SMS gateway for consumer lenders."},
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Finding": _FINDING, "SendRequest": _SEND_REQUEST,
                        "Accepted": _ACCEPTED, "Message": _MESSAGE, "Problem": _PROBLEM},
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/v1/messages": {
                "post": {
                    "operationId": "sendMessage",
                    "summary": "Submit one SMS (scope send)",
                    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                    "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                                               "pattern": "^[\\x20-\\x7e]+$"}}],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/SendRequest"}}}},
                    "responses": {"202": _json("Accepted", "accepted: queued, scheduled or held"),
                                  **send_errors},
                }
            },
            "/v1/messages/{id}": {
                "get": {
                    "operationId": "getMessage",
                    "summary": "Read one of the client's messages (scope send)",
                    "parameters": [_ID_PARAM],
                    "responses": {"200": _json("Message", "the message"),
                                  "404": _problem("no such message for this client"),
                                  **_AUTH_ERRORS},
                }
            },
            "/v1/messages/{id}/cancel": {
                "post": {
                    "operationId": "cancelMessage",
                    "summary": "Cancel a queued, scheduled or held message (scope send)",
                    "parameters": [_ID_PARAM],
                    "responses": {"200": _json("Message", "the cancelled message"),
                                  "404": _problem("no such message for this client"),
                                  "409": _problem("the message can no longer be cancelled"),
                                  **_AUTH_ERRORS},
                }
            },
            "/healthz": {"get": {"operationId": "healthz", "security": [],
                                 "responses": {"200": {"description": "the process is up"}}}},
            "/readyz": {"get": {"operationId": "readyz", "security": [],
                                "responses": {"200": {"description": "ready"},
                                              "503": {"description": "store, audit log or "
                                                                     "policy store unusable"}}}},
            "/metrics": {"get": {"operationId": "metrics", "security": [],
                                 "responses": {"200": {"description": "Prometheus text format",
                                                       "content": {"text/plain": {}}}}}},
            "/openapi.json": {"get": {"operationId": "openapi", "security": [],
                                      "responses": {"200": {"description": "this document"}}}},
            **contact_paths(),
            **review_paths(),
            **CALLBACK_PATHS,
        },
    }  # fmt: skip
