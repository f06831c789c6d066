"""The compliance-review endpoints of API.md ("Compliance review").

Scope ``review``; revealing an original is scope ``audit``. An API key acts
for its own client only, unless it also has scope ``admin`` (every client);
an ``audit`` key may reveal. Answers carry the masked number and body only —
the original text and number leave only through ``reveal``, which is audited
first and never cached (``Cache-Control: no-store``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

from aiohttp import web

from config.settings import PURPOSES
from gateway.appkeys import CLOCK
from gateway.clock import rfc3339
from gateway.errors import Conflict, Forbidden, Invalid, NotFound, Problem, Unavailable
from gateway.handlers import _json_body, _key, json_response
from gateway.logs import message_id as message_id_var
from gateway.models import ApiKey, Message, Status
from gateway.review.service import (
    Actor,
    ReviewError,
    ReviewItem,
    ReviewService,
    Summary,
    review_item,
    service_of,
    setup_service,
)
from gateway.store.review import ReviewQuery, ReviewSource

routes = web.RouteTableDef()
BASE = "/v1/review"
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_SUMMARY_DAYS = 366
_STATUSES = {"held": Status.HELD, "blocked": Status.BLOCKED}
_PROBLEMS: Mapping[int, type[Problem]] = {
    400: Invalid, 403: Forbidden, 404: NotFound, 409: Conflict, 503: Unavailable,
}  # fmt: skip


def actor_of(key: ApiKey) -> Actor:
    clients = None if "admin" in key.scopes else frozenset({key.client_id})
    return Actor(f"key:{key.id}", clients, can_reveal="audit" in key.scopes)


def problem_of(error: ReviewError) -> Problem:
    extra: dict[str, Any] = {}
    if error.status == 409:
        extra["reason"] = error.code
    if error.rule is not None:
        extra["rule"] = error.rule
    headers = {"Retry-After": "5"} if error.status == 503 else None
    return _PROBLEMS.get(error.status, Problem)(error.detail, extra=extra, headers=headers)


# -- views ---------------------------------------------------------------------
def finding_views(item: ReviewItem) -> list[dict[str, Any]]:
    return [
        {**v.finding.to_json(), "description": v.info.description, "source": v.info.source}
        for v in item.findings
    ]


def message_summary(m: Message, findings: list[dict[str, Any]]) -> dict[str, Any]:
    """What a listing shows: masked number and body, never the originals."""
    return {
        "id": m.id,
        "client_id": m.client_id,
        "status": str(m.status),
        "purpose": m.purpose,
        "recipient_role": m.recipient_role,
        "to_masked": m.to_masked,
        "body": m.body,
        "segments": m.segments,
        "encoding": m.encoding,
        "findings": findings,
        "created_at": rfc3339(m.created_at),
        "updated_at": rfc3339(m.updated_at),
        "scheduled_at": rfc3339(m.scheduled_at) if m.scheduled_at else None,
    }


def item_view(item: ReviewItem) -> dict[str, Any]:
    m = item.message
    return {
        **message_summary(m, finding_views(item)),
        "highlights": [{"text": s.text, "findings": list(s.findings)} for s in item.highlights],
        "events": [
            {"at": rfc3339(e.at), "status": str(e.status), "detail": e.detail} for e in m.events
        ],
    }


def summary_view(s: Summary) -> dict[str, Any]:
    return {
        "since": rfc3339(s.since),
        "until": rfc3339(s.until),
        "by_category": s.by_category,
        "by_day": [
            {"day": d.day, "held": d.held, "blocked": d.blocked, "rejected": d.rejected,
             "approved": d.approved}
            for d in s.by_day
        ],
    }  # fmt: skip


# -- query parsing ---------------------------------------------------------------
def _when(query: Mapping[str, str], name: str, errors: list[dict[str, str]]) -> datetime | None:
    value = query.get(name)
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value) if len(value) <= 40 else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        errors.append({"field": name, "message": "must be an RFC 3339 date-time with an offset"})
        return None
    return when.astimezone(UTC)


def _short(query: Mapping[str, str], name: str, errors: list[dict[str, str]]) -> str | None:
    value = query.get(name)
    if value is not None and not 0 < len(value) <= 64:
        errors.append({"field": name, "message": "must be 1-64 characters"})
        return None
    return value


def _statuses(raw: str | None, errors: list[dict[str, str]]) -> frozenset[Status]:
    if raw is None:
        return frozenset(_STATUSES.values())
    names = [n.strip() for n in raw.split(",")]
    if not names or any(n not in _STATUSES for n in names):
        errors.append({"field": "status", "message": "must be held, blocked or held,blocked"})
        return frozenset()
    return frozenset(_STATUSES[n] for n in names)


def _limit(raw: str | None, errors: list[dict[str, str]]) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        errors.append({"field": "limit", "message": f"must be an integer 1-{MAX_LIMIT}"})
        return DEFAULT_LIMIT
    return int(raw)


def parse_query(query: Mapping[str, str], clients: list[str]) -> ReviewQuery:
    errors: list[dict[str, str]] = []
    source = query.get("source", "content")
    if source not in {str(s) for s in ReviewSource}:
        errors.append({"field": "source", "message": "must be content, policy or all"})
        source = "content"
    purpose = query.get("purpose")
    if purpose is not None and purpose not in PURPOSES:
        errors.append({"field": "purpose", "message": f"must be one of {', '.join(PURPOSES)}"})
    if any(not 0 < len(c) <= 64 for c in clients):
        errors.append({"field": "client", "message": "must be 1-64 characters"})
    cursor = query.get("cursor")
    if cursor is not None and not 0 < len(cursor) <= 200:
        errors.append({"field": "cursor", "message": "is not a cursor this server handed out"})
    parsed = ReviewQuery(
        statuses=_statuses(query.get("status"), errors),
        clients=frozenset(clients) if clients else None,
        purpose=purpose,
        category=_short(query, "category", errors),
        source=ReviewSource(source),
        after=_when(query, "after", errors),
        before=_when(query, "before", errors),
        cursor=cursor,
        limit=_limit(query.get("limit"), errors),
    )
    if errors:
        raise Invalid(errors=errors)
    return parsed


async def _text_field(request: web.Request, name: str) -> str:
    data = await _json_body(request)
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object")
    unknown = sorted(set(data) - {name})
    if unknown:
        raise Invalid(errors=[{"field": k, "message": "unknown field"} for k in unknown])
    value = data.get(name)
    if not isinstance(value, str):
        raise Invalid(errors=[{"field": name, "message": "is required (a string)"}])
    return value


# -- handlers ----------------------------------------------------------------------
def _service(request: web.Request) -> ReviewService:
    return service_of(request.app)


def _mid(request: web.Request) -> str:
    mid = request.match_info["id"]
    if 0 < len(mid) <= 64:
        message_id_var.set(mid)
    return mid


@routes.get(f"{BASE}/messages")
async def list_messages(request: web.Request) -> web.Response:
    actor = actor_of(await _key(request, "review"))
    query = parse_query(request.query, request.query.getall("client", []))
    try:
        page = await _service(request).list(actor, query)
    except ReviewError as exc:
        raise problem_of(exc) from None
    items = [message_summary(m, finding_views(review_item(m))) for m in page.messages]
    return json_response({"messages": items, "next_cursor": page.next_cursor})


@routes.get(f"{BASE}/messages/{{id}}")
async def get_message(request: web.Request) -> web.Response:
    actor = actor_of(await _key(request, "review"))
    try:
        item = await _service(request).get(actor, _mid(request))
    except ReviewError as exc:
        raise problem_of(exc) from None
    return json_response(item_view(item))


async def _decide(
    request: web.Request,
    decision: Callable[[ReviewService, Actor, str, str], Awaitable[Message]],
) -> web.Response:
    """Approve or reject (``decision``, a ReviewService method) the message
    named in the path, with the body's ``comment``; answer its review view."""
    actor = actor_of(await _key(request, "review"))
    comment = await _text_field(request, "comment")
    try:
        message = await decision(_service(request), actor, _mid(request), comment)
    except ReviewError as exc:
        raise problem_of(exc) from None
    return json_response(item_view(review_item(message)))


@routes.post(f"{BASE}/messages/{{id}}/approve")
async def approve(request: web.Request) -> web.Response:
    return await _decide(request, ReviewService.approve)


@routes.post(f"{BASE}/messages/{{id}}/reject")
async def reject(request: web.Request) -> web.Response:
    return await _decide(request, ReviewService.reject)


@routes.post(f"{BASE}/messages/{{id}}/reveal")
async def reveal(request: web.Request) -> web.Response:
    actor = actor_of(await _key(request, "audit"))
    reason = await _text_field(request, "reason")
    try:
        shown = await _service(request).reveal(actor, _mid(request), reason)
    except ReviewError as exc:
        raise problem_of(exc) from None
    body = {"id": shown.message_id, "to": shown.to, "text": shown.text, "body": shown.body}
    return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _end_of_day(now: datetime) -> datetime:
    """The end of ``now``'s UTC day: the default ``until`` of the summary."""
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(), UTC)


@routes.get(f"{BASE}/summary")
async def summary(request: web.Request) -> web.Response:
    actor = actor_of(await _key(request, "review"))
    errors: list[dict[str, str]] = []
    until = _when(request.query, "until", errors) or _end_of_day(request.app[CLOCK].now())
    since = _when(request.query, "since", errors) or until - timedelta(days=30)
    if not errors and not timedelta(0) < until - since <= timedelta(days=MAX_SUMMARY_DAYS):
        message = f"must be before until, at most {MAX_SUMMARY_DAYS} days apart"
        errors.append({"field": "since", "message": message})
    if errors:
        raise Invalid(errors=errors)
    try:
        result = await _service(request).summary(actor, since, until)
    except ReviewError as exc:
        raise problem_of(exc) from None
    return json_response(summary_view(result))


def setup_review_api(app: web.Application) -> None:
    """The review service (shared with the /review page) and its routes."""
    setup_service(app)
    app.add_routes(routes)
