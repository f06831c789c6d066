"""OpenAPI paths of the compliance-review endpoints (gateway.review.api)."""

from __future__ import annotations

from typing import Any

from config.settings import PURPOSES
from gateway.models import Status


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def _ok(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_TIME = {"type": "string", "format": "date-time"}
_FINDING = {
    "allOf": [
        {"$ref": "#/components/schemas/Finding"},
        {
            "type": "object",
            "required": ["description", "source"],
            "properties": {
                "description": {"type": "string"},
                "source": {"type": ["string", "null"], "description": "the legal basis"},
            },
        },
    ]
}
_SUMMARY_FIELDS = {
    "id": {"type": "string"},
    "client_id": {"type": "string"},
    "status": {"type": "string", "enum": [str(s) for s in Status]},
    "purpose": {"type": "string", "enum": list(PURPOSES)},
    "recipient_role": {"type": "string"},
    "to_masked": {"type": "string"},
    "body": {"type": "string", "description": "the masked body (never the original text)"},
    "segments": {"type": "integer"},
    "encoding": {"type": "string"},
    "findings": {"type": "array", "items": _FINDING},
    "created_at": _TIME,
    "updated_at": _TIME,
    "scheduled_at": _NULLABLE_TIME,
}
_ITEM = {
    "type": "object",
    "required": [*_SUMMARY_FIELDS, "highlights", "events"],
    "properties": {
        **_SUMMARY_FIELDS,
        "highlights": {
            "type": "array",
            "description": "the body cut into segments; findings are indexes into findings",
            "items": {
                "type": "object",
                "required": ["text", "findings"],
                "properties": {
                    "text": {"type": "string"},
                    "findings": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                },
            },
        },
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["at", "status", "detail"],
                "properties": {"at": _TIME, "status": {"type": "string"},
                               "detail": {"type": ["string", "null"]}},
            },
        },
    },
}  # fmt: skip
_PAGE = {
    "type": "object",
    "required": ["messages", "next_cursor"],
    "properties": {
        "messages": {
            "type": "array",
            "items": {"type": "object", "required": list(_SUMMARY_FIELDS),
                      "properties": _SUMMARY_FIELDS},
        },
        "next_cursor": {"type": ["string", "null"]},
    },
}  # fmt: skip
_REVEALED = {
    "type": "object",
    "required": ["id", "to", "text", "body"],
    "properties": {
        "id": {"type": "string"},
        "to": {"type": "string", "description": "E.164"},
        "text": {"type": "string", "description": "the text as submitted"},
        "body": {"type": "string"},
    },
}
_COUNT = {"type": "integer", "minimum": 0}
_SUMMARY = {
    "type": "object",
    "required": ["since", "until", "by_category", "by_day"],
    "properties": {
        "since": _TIME,
        "until": _TIME,
        "by_category": {"type": "object", "additionalProperties": _COUNT},
        "by_day": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["day", "held", "blocked", "rejected", "approved"],
                "properties": {"day": {"type": "string"}, "held": _COUNT, "blocked": _COUNT,
                               "rejected": _COUNT, "approved": _COUNT},
            },
        },
    },
}  # fmt: skip
_AUTH = {
    "401": _problem("missing, unknown or revoked API key"),
    "403": _problem("the key lacks the needed scope"),
    "429": _problem("too many failed authentications from this address (Retry-After)"),
    "503": _problem("the store, the contact-policy store or the audit log is unavailable"),
}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_BODY_ERRORS = {
    "400": _problem("malformed JSON, an unknown field, or the text missing or too long"),
    "404": _problem("no such message in review for this key's clients"),
    "408": _problem("the body arrived too slowly"),
    "413": _problem("the body is larger than the limit"),
    "415": _problem("Content-Type is not application/json"),
}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


def _text_body(name: str, limit: int) -> dict[str, Any]:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": [name],
        "properties": {name: {"type": "string", "minLength": 1, "maxLength": limit}},
    }
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _action(op_id: str, summary: str, field: str, limit: int, out: dict[str, Any],
            extra: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    return {
        "post": {
            "operationId": op_id,
            "summary": summary,
            "parameters": [_ID],
            "requestBody": _text_body(field, limit),
            "responses": {"200": _ok(out, "done"), **_BODY_ERRORS, **extra, **_AUTH},
        }
    }


_LIST_PARAMS = [
    _query("status", {"type": "string", "enum": ["held", "blocked", "held,blocked"]},
           "default: both"),
    _query("client", {"type": "string", "minLength": 1, "maxLength": 64},
           "repeatable; clamped to the key's clients"),
    _query("purpose", {"type": "string", "enum": list(PURPOSES)}, "the message's purpose"),
    _query("category", {"type": "string", "minLength": 1, "maxLength": 64},
           "a finding's category"),
    _query("source", {"type": "string", "enum": ["content", "policy", "all"]},
           "content (default): stopped by what it says; policy: only by contact policy"),
    _query("after", {"type": "string", "format": "date-time"}, "created at or after"),
    _query("before", {"type": "string", "format": "date-time"}, "created before"),
    _query("cursor", {"type": "string", "maxLength": 200}, "next_cursor of the previous page"),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "default 50"),
]  # fmt: skip


def review_paths() -> dict[str, Any]:
    conflict = _problem(
        "the message is not held (reason not_held), or approving it breaks the contact"
        " policy now (reason policy, rule: cap.<id>, opt_out, no_consent…); it stays held"
    )
    return {
        "/v1/review/messages": {
            "get": {
                "operationId": "listReview",
                "summary": "Held and blocked messages, newest first (scope review)",
                "parameters": _LIST_PARAMS,
                "responses": {"200": _ok(_PAGE, "one page"),
                              "400": _problem("a bad filter or cursor"), **_AUTH},
            }
        },
        "/v1/review/messages/{id}": {
            "get": {
                "operationId": "getReview",
                "summary": "One message in review, masked body with findings highlighted"
                           " (scope review)",
                "parameters": [_ID],
                "responses": {"200": _ok(_ITEM, "the message"),
                              "404": _problem("no such message in review for this key"),
                              **_AUTH},
            }
        },
        "/v1/review/messages/{id}/approve": _action(
            "approveReview", "Approve a held message: queued or scheduled (scope review; audited)",
            "comment", 1000, _ITEM, {"409": conflict},
        ),
        "/v1/review/messages/{id}/reject": _action(
            "rejectReview", "Reject a held message: rejected (scope review; audited)",
            "comment", 1000, _ITEM, {"409": _problem("the message is not held")},
        ),
        "/v1/review/messages/{id}/reveal": _action(
            "revealReview", "The original text and number (scope audit; audited; no-store)",
            "reason", 500, _REVEALED, {},
        ),
        "/v1/review/summary": {
            "get": {
                "operationId": "reviewSummary",
                "summary": "Counts by stopping category and by day (scope review)",
                "parameters": [
                    _query("since", {"type": "string", "format": "date-time"},
                           "default: 30 days before until"),
                    _query("until", {"type": "string", "format": "date-time"},
                           "default: the end of the current UTC day"),
                ],
                "responses": {"200": _ok(_SUMMARY, "the counts"),
                              "400": _problem("a bad date or range (at most 366 days)"),
                              **_AUTH},
            }
        },
    }  # fmt: skip
