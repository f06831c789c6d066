"""Cross-site request forgery checks for the forms of the reviewers' web page.

Every form carries the session's CSRF token in a hidden field ``csrf``; a POST
is accepted only when that field equals the token sealed in the session cookie
(constant-time). Browsers that say where a request comes from are also held to
the same origin: ``Sec-Fetch-Site`` must be ``same-origin`` (or ``none``: typed
by the user) when present, and ``Origin`` must be this site when it names one.
(Under the page's ``Referrer-Policy: no-referrer`` browsers send ``Origin:
null`` even for the page's own forms, so ``null`` is left to the token.) The
SameSite=Strict cookie is a third, independent layer."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Final

from aiohttp import web

from gateway.review.sessions import Session

FIELD: Final = "csrf"
_SITES_ALLOWED: Final = frozenset({"same-origin", "none"})


def same_origin(request: web.Request) -> bool:
    """False when the browser says the request comes from another site."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in _SITES_ALLOWED:
        return False
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return True
    return origin == f"{request.scheme}://{request.host}"


def token_ok(session: Session | None, form: Mapping[str, object]) -> bool:
    """The form's token is the session's (constant-time)."""
    presented = form.get(FIELD)
    if session is None or not isinstance(presented, str) or not presented.isascii():
        return False
    return hmac.compare_digest(presented.encode(), session.csrf.encode())


def form_allowed(request: web.Request, session: Session | None, form: Mapping[str, object]) -> bool:
    return same_origin(request) and token_ok(session, form)
