"""Domain errors that carry an HTTP status and a stable problem ``type``.

One middleware renders them as RFC 9457 problem details. Messages here are
written for the client and must never contain personal data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PROBLEM_BASE = "https://lendsms.dev/problems/"


class Problem(Exception):
    status: int = 500
    slug: str = "internal"
    title: str = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[Mapping[str, str]] | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = list(errors or ())
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            out["errors"] = self.errors
        out.update(self.extra)
        return out


class Invalid(Problem):
    status, slug, title = 400, "invalid", "Invalid request"


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Missing or invalid API key"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="lendsms"'})


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(Problem):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class RequestTimeout(Problem):
    status, slug, title = 408, "request-timeout", "Request body too slow"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflict"


class IdempotencyConflict(Problem):
    status, slug, title = 409, "idempotency-conflict", "Idempotency-Key reused with another body"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(Problem):
    status, slug, title = 415, "unsupported-media-type", "Content-Type must be application/json"


class Blocked(Problem):
    status, slug, title = 422, "blocked", "Message blocked by policy"


class CapExceeded(Problem):
    status, slug, title = 429, "cap-exceeded", "Contact cap exceeded"


class RateLimited(Problem):
    status, slug, title = 429, "rate-limited", "Too many requests"


class Unavailable(Problem):
    status, slug, title = 503, "unavailable", "Service unavailable"


class StoreUnavailable(Exception):
    """The store cannot make something durable (disk, lock, connection)."""


class TransitionError(Exception):
    """A status change that the state machine does not allow."""
