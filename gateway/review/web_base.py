"""Plumbing of the reviewers' web page: the session on each request and its
cookie, rendering in the page's language, static files under hashed names,
and the security headers of every ``/review`` response."""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

import aiohttp_jinja2
import jinja2
from aiohttp import web

from config.settings import key_bytes
from gateway.appkeys import CLOCK, SETTINGS, STORE
from gateway.errors import StoreUnavailable
from gateway.review.i18n import LANG_COOKIE, Labels, pick_language, requested_language
from gateway.review.service import Actor, ReviewError, ReviewService, setup_service
from gateway.review.sessions import COOKIE, COOKIE_PATH, Session, SessionCodec, revoked
from gateway.store.review import Reviewer

PREFIX: Final = "/review"
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_STATIC_FILES: Final = ("review.css", "review.js")
_YEAR: Final = 365 * 24 * 3600

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str


class ReviewWeb:
    """What the page's handlers share (one per application)."""

    def __init__(self, app: web.Application) -> None:
        settings = app[SETTINGS]
        self.service: ReviewService = setup_service(app)  # shared with the API
        self.codec = SessionCodec(
            key_bytes(settings.keys.data), settings.review.idle_timeout_seconds
        )
        self.always_secure = settings.review.secure_cookies == "always"
        self.static: dict[str, StaticFile] = {}  # by served name: review.<hash>.css
        self.static_urls: dict[str, str] = {}  # by file name: review.css
        folder = resources.files("gateway.review").joinpath("static")
        for original in _STATIC_FILES:
            body = folder.joinpath(original).read_bytes()
            stem, _, ext = original.rpartition(".")
            served = f"{stem}.{hashlib.sha256(body).hexdigest()[:12]}.{ext}"
            kind = mimetypes.guess_type(original)[0] or "application/octet-stream"
            self.static[served] = StaticFile(body, kind)
            self.static_urls[original] = f"{PREFIX}/static/{served}"


REVIEW_WEB: Final = web.AppKey("review_web", ReviewWeb)
JINJA: Final = web.AppKey("review_jinja", jinja2.Environment)
SESSION: Final = web.RequestKey("review_session", Session)
REVIEWER: Final = web.RequestKey("review_reviewer", Reviewer)


def setup_web_base(app: web.Application) -> ReviewWeb:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("gateway.review", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        default_helpers=False,
        app_key=JINJA,
    )
    app[REVIEW_WEB] = review_web = ReviewWeb(app)
    app.on_response_prepare.append(_security_headers)
    return review_web


def is_review_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if not is_review_path(request.path):
        return
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")


async def static_file(request: web.Request) -> web.StreamResponse:
    found = request.app[REVIEW_WEB].static.get(request.match_info["name"])
    if found is None:
        return web.Response(status=404, text="not found")
    return web.Response(
        body=found.body,
        content_type=found.content_type,
        charset="utf-8",
        headers={"Cache-Control": f"public, max-age={_YEAR}, immutable"},
    )


# -- sessions --------------------------------------------------------------------


def actor(request: web.Request) -> Actor:
    return Actor.of_reviewer(request[REVIEWER])


def set_session(request: web.Request, response: web.StreamResponse, session: Session) -> None:
    review_web = request.app[REVIEW_WEB]
    response.set_cookie(
        COOKIE,
        review_web.codec.seal(session),
        path=COOKIE_PATH,
        httponly=True,
        samesite="Strict",
        secure=review_web.always_secure or request.secure,
    )


def clear_session(request: web.Request, response: web.StreamResponse) -> None:
    review_web = request.app[REVIEW_WEB]
    response.del_cookie(
        COOKIE,
        path=COOKIE_PATH,
        httponly=True,
        samesite="Strict",
        secure=review_web.always_secure or request.secure,
    )


def redirect(location: str) -> web.Response:
    """303 See Other (POST-redirect-GET); ``location`` is a path on this site."""
    return web.Response(status=303, headers={"Location": location})


async def _signed_in_reviewer(request: web.Request, session: Session | None) -> Reviewer | None:
    """The session's reviewer, re-read from the store: a disabled or deleted
    reviewer is out at once, and so is a session issued at or before the
    reviewer's sign-out instant (which comes with the same read)."""
    if session is None or not session.signed_in:
        return None
    try:
        stored = await request.app[STORE].get_reviewer(session.reviewer)
    except StoreUnavailable:
        raise ReviewError(
            503, "Service unavailable", "the store is unavailable", code="unavailable"
        ) from None
    if stored is None or stored.reviewer.disabled_at is not None:
        return None
    if revoked(session, stored.reviewer.signed_out_at):
        return None
    return stored.reviewer


def page(handler: Handler, *, signed_in: bool = True) -> Handler:
    """A page handler with the session opened (a fresh anonymous one when
    there is none), the reviewer checked when ``signed_in``, the cookie
    re-issued afterwards (unless the handler set it), refusals rendered as
    pages and ``?lang=`` remembered."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        review_web = request.app[REVIEW_WEB]
        now = request.app[CLOCK].now()
        cookie = request.cookies.get(COOKIE)
        session = review_web.codec.open(cookie, now)
        try:
            reviewer = await _signed_in_reviewer(request, session)
            if signed_in and reviewer is None:
                ended = "?done=session_ended" if cookie else ""
                response: web.StreamResponse = redirect(f"{PREFIX}/login{ended}")
                clear_session(request, response)
                return response
            if reviewer is not None:
                request[REVIEWER] = reviewer
            elif session is not None and session.signed_in:
                session = None  # signed out elsewhere, revoked or disabled: no session
            request[SESSION] = session if session is not None else review_web.codec.new("", now)
            response = await handler(request)
        except ReviewError as exc:
            request.setdefault(SESSION, review_web.codec.new("", now))
            response = error_page(request, exc.status, exc)
        if COOKIE not in response.cookies:
            set_session(request, response, review_web.codec.touch(request[SESSION], now))
        if (lang := requested_language(request)) is not None:
            response.set_cookie(
                LANG_COOKIE, lang, path=COOKIE_PATH, max_age=_YEAR, httponly=True, samesite="Strict"
            )
        return response

    return wrapped


# -- rendering -------------------------------------------------------------------


def render(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    lang = pick_language(request)
    base = {
        "t": Labels(lang),
        "lang": lang,
        "lang_urls": {code: str(request.rel_url.update_query(lang=code)) for code in ("zh", "en")},
        "csrf": request[SESSION].csrf,
        "reviewer": request.get(REVIEWER),
        "static": request.app[REVIEW_WEB].static_urls,
        "path": request.path,
    }
    return aiohttp_jinja2.render_template(
        template, request, {**base, **context}, app_key=JINJA, status=status
    )


def error_page(request: web.Request, status: int, error: ReviewError | None = None) -> web.Response:
    """A refusal as a page: what the reviewer can do about it, never a trace."""
    t = Labels(pick_language(request))
    if status == 404:
        title, detail = t("not_found_title"), t("not_found")
    elif status == 403 and error is None:
        title, detail = t("refused_title"), t("csrf_refused")
    elif status == 400:
        title, detail = t("error_title"), t("invalid_input")
    else:
        title, detail = t("error_title"), error.detail if error is not None else ""
    rule = error.rule if error is not None else None
    return render(
        request, "error.html", {"title": title, "detail": detail, "rule": rule}, status=status
    )
