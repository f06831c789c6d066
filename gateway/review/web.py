"""The reviewers' web page at ``/review`` (server-rendered, aiohttp-jinja2).

Pages: the queue (held messages newest first, with filters and a cursor for
the next page), one message (masked body with findings highlighted; approve
or reject with a required comment while it is held; reveal of the original for
reviewers allowed to, recorded in the audit log), the summary (counts per
category and a per-day SVG chart), sign-in and sign-out. Every form carries a
CSRF token; every action goes through :class:`gateway.review.service.ReviewService`,
which audits it with the reviewer's name. After an action the browser is sent
back with a status word in the query string (no personal data in URLs).

Sessions are sealed cookies (``gateway.review.sessions``); signing out ends
every session of the reviewer on every replica. Sign-in failures count
against the same per-address limit as bad API keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from gateway.appkeys import AUTH_FAILURES, CLOCK, STORE
from gateway.errors import RateLimited, StoreUnavailable
from gateway.review.csrf import form_allowed
from gateway.review.i18n import Labels, pick_language
from gateway.review.service import Revealed, ReviewError, review_item
from gateway.review.web_base import (
    PREFIX,
    REVIEW_WEB,
    SESSION,
    actor,
    clear_session,
    error_page,
    page,
    redirect,
    render,
    set_session,
    setup_web_base,
    static_file,
)
from gateway.review.web_views import (
    PURPOSES,
    STATUS_CHOICES,
    SUMMARY_DAYS,
    categories,
    category_rows,
    day_chart,
    parse_filters,
    pieces,
    stopping,
    summary_window,
)
from gateway.store.review import ReviewSource

_DONE: Final = frozenset({"approved", "rejected", "signed_out", "session_ended"})
_MAX_NAME: Final = 200
_MAX_PASSWORD: Final = 1024


def setup_review_web(app: web.Application) -> None:
    """Register the ``/review`` pages on ``app`` (before it starts)."""
    setup_web_base(app)
    app.router.add_get(PREFIX, page(queue))
    app.router.add_get(PREFIX + "/", page(_to_queue))
    app.router.add_get(PREFIX + "/login", page(login_form, signed_in=False))
    app.router.add_post(PREFIX + "/login", page(login, signed_in=False))
    app.router.add_post(PREFIX + "/logout", page(logout, signed_in=False))
    app.router.add_get(PREFIX + "/summary", page(summary))
    app.router.add_get(PREFIX + "/messages/{id}", page(message))
    app.router.add_post(PREFIX + "/messages/{id}/approve", page(approve))
    app.router.add_post(PREFIX + "/messages/{id}/reject", page(reject))
    app.router.add_post(PREFIX + "/messages/{id}/reveal", page(reveal))
    app.router.add_get(PREFIX + "/static/{name}", static_file)


async def _to_queue(request: web.Request) -> web.StreamResponse:
    return redirect(PREFIX)


def _done(request: web.Request) -> str | None:
    done = request.query.get("done")
    return done if done in _DONE else None


async def _form(request: web.Request) -> dict[str, str] | None:
    """The POSTed form when its CSRF token and origin are right, else None."""
    posted = await request.post()
    form = {k: v for k, v in posted.items() if isinstance(v, str)}
    return form if form_allowed(request, request[SESSION], form) else None


def _refused(request: web.Request) -> web.Response:
    return error_page(request, 403)


# -- sign-in ---------------------------------------------------------------------


async def login_form(request: web.Request) -> web.StreamResponse:
    if request[SESSION].signed_in:
        return redirect(PREFIX)
    return render(request, "login.html", {"error": None, "done": _done(request), "name": ""})


async def login(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    if form is None:
        return _refused(request)
    throttle = request.app[AUTH_FAILURES]
    source = request.remote or "unknown"
    name = form.get("name", "").strip()[:_MAX_NAME]
    try:
        throttle.check(source)
    except RateLimited:
        context = {"error": "login_throttled", "done": None, "name": name}
        return render(request, "login.html", context, status=429)
    password = form.get("password", "")[:_MAX_PASSWORD]
    reviewer = await request.app[REVIEW_WEB].service.authenticate(name, password)
    if reviewer is None:
        throttle.failed(source)
        context = {"error": "login_failed", "done": None, "name": name}
        return render(request, "login.html", context, status=401)
    response = redirect(PREFIX)
    now = request.app[CLOCK].now()
    set_session(request, response, request.app[REVIEW_WEB].codec.new(reviewer.name, now))
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """Sign out everywhere: the reviewer's sign-out instant becomes now, so
    every session of theirs issued until now (in this browser or any other,
    and any copy of a cookie) is refused on every replica."""
    if not request[SESSION].signed_in:  # already out (here or elsewhere): nothing to change
        response = redirect(f"{PREFIX}/login?done=session_ended")
        clear_session(request, response)
        return response
    if await _form(request) is None:
        return _refused(request)
    now = request.app[CLOCK].now()
    session = request[SESSION]
    # never before this session's own start, even if the clocks of two
    # replicas disagree: the session signing out is always ended
    at = max(now, datetime.fromtimestamp(session.issued, UTC))
    try:
        await request.app[STORE].end_reviewer_sessions(session.reviewer, at)
    except StoreUnavailable:
        raise ReviewError(
            503, "Service unavailable", "the store is unavailable", code="unavailable"
        ) from None
    response = redirect(f"{PREFIX}/login?done=signed_out")
    clear_session(request, response)
    return response


# -- queue and message -----------------------------------------------------------


async def queue(request: web.Request) -> web.StreamResponse:
    filters = parse_filters(request.query)
    cursor = request.query.get("cursor") or None
    listing = await request.app[REVIEW_WEB].service.list(actor(request), filters.query(cursor))
    items = [review_item(m) for m in listing.messages]
    t = Labels(pick_language(request))
    next_url = None
    if listing.next_cursor is not None:
        query = {**filters.params(), "cursor": listing.next_cursor}
        next_url = str(request.rel_url.with_query(query))
    context = {
        "filters": filters,
        "rows": [(item, pieces(item, t), stopping(item)) for item in items],
        "next_url": next_url,
        "first_url": str(request.rel_url.with_query(filters.params())) if cursor else None,
        "done": _done(request),
        "clients": await _clients(request),
        "purposes": PURPOSES,
        "categories": categories(),
        "statuses": tuple(STATUS_CHOICES),
        "sources": tuple(s.value for s in ReviewSource),
    }
    return render(request, "queue.html", context)


async def _clients(request: web.Request) -> list[str]:
    """The clients the reviewer may filter by."""
    assigned = actor(request).clients
    if assigned is not None:
        return sorted(assigned)
    try:
        return sorted(c.id for c in await request.app[STORE].list_clients())
    except StoreUnavailable:
        return []


async def message(request: web.Request) -> web.StreamResponse:
    return await _message_page(request, revealed=None)


async def _message_page(
    request: web.Request, *, revealed: Revealed | None, status: int = 200
) -> web.StreamResponse:
    service = request.app[REVIEW_WEB].service
    who = actor(request)
    item = await service.get(who, request.match_info["id"])
    t = Labels(pick_language(request))
    context = {
        "item": item,
        "pieces": pieces(item, t),
        "can_reveal": who.can_reveal,
        "revealed": revealed,
        "done": _done(request),
    }
    return render(request, "message.html", context, status=status)


async def _decide(request: web.Request, verb: str) -> web.StreamResponse:
    form = await _form(request)
    if form is None:
        return _refused(request)
    service = request.app[REVIEW_WEB].service
    message_id = request.match_info["id"]
    comment = form.get("comment", "")
    if verb == "approve":
        await service.approve(actor(request), message_id, comment)
        return redirect(f"{PREFIX}?done=approved")
    await service.reject(actor(request), message_id, comment)
    return redirect(f"{PREFIX}?done=rejected")


async def approve(request: web.Request) -> web.StreamResponse:
    return await _decide(request, "approve")


async def reject(request: web.Request) -> web.StreamResponse:
    return await _decide(request, "reject")


async def reveal(request: web.Request) -> web.StreamResponse:
    """The original, shown once in this response (never cached, never in a URL)."""
    form = await _form(request)
    if form is None:
        return _refused(request)
    service = request.app[REVIEW_WEB].service
    shown = await service.reveal(actor(request), request.match_info["id"], form.get("reason", ""))
    response = await _message_page(request, revealed=shown)
    response.headers["Cache-Control"] = "no-store"
    return response


# -- summary ---------------------------------------------------------------------


async def summary(request: web.Request) -> web.StreamResponse:
    now = request.app[CLOCK].now()
    days, since, until = summary_window(request.query.get("days", ""), now)
    result = await request.app[REVIEW_WEB].service.summary(actor(request), since, until)
    t = Labels(pick_language(request))
    context = {
        "days": days,
        "day_choices": SUMMARY_DAYS,
        "rows": category_rows(result),
        "total": sum(result.by_category.values()),
        "chart": day_chart(result, t),
        "has_data": bool(result.by_day),
    }
    return render(request, "summary.html", context)
