"""The compliance-review service: what the HTTP API (gateway.review.api) and
the ``/review`` web page both call. An :class:`Actor` is a reviewer signed in
on the page or an API key; it sees only its clients' messages (anything else
is 404, so existence does not leak).

Every action and every reveal is written to the audit log with the actor's
name before it takes effect (DESIGN.md invariant 8; fail closed: no record,
no change, 503). Comments and reveal reasons may carry personal data, so they
are sealed under the borrower's own audit key; the clear fields are the
client, the reviewer and the resulting status.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from gateway.appkeys import AUDIT, CLOCK, CONTACT, DISPATCHER, METRICS, STORE
from gateway.audit import AuditUnavailable, AuditWriter
from gateway.errors import StoreUnavailable, TransitionError
from gateway.models import Message, Status
from gateway.review.passwords import DUMMY_HASH, verify_password_async
from gateway.review.recheck import Placement, Refusal, recheck
from gateway.review.views import (
    DayCount,
    FindingView,
    Revealed,
    ReviewItem,
    Summary,
    review_item,
    summarize,
)
from gateway.store.base import Store
from gateway.store.review import Reviewer, ReviewPage, ReviewQuery

__all__ = [
    "REVIEWABLE",
    "Actor",
    "DayCount",
    "FindingView",
    "Revealed",
    "ReviewError",
    "ReviewItem",
    "ReviewService",
    "Summary",
    "review_item",
    "service_of",
    "setup_service",
]  # fmt: skip

HELD = frozenset({Status.HELD})
REVIEWABLE = frozenset({Status.HELD, Status.BLOCKED})  # what the queue lists
MAX_COMMENT = 1000
MAX_REASON = 500
MAX_ID = 64
_UNRELEASED = frozenset({Status.REJECTED, Status.CANCELLED, Status.BLOCKED})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a reviewer (web session) or an API key."""

    name: str  # the reviewer's name, or "key:<key_id>" for an API key
    clients: frozenset[str] | None  # None: every client
    can_reveal: bool

    def sees(self, client_id: str) -> bool:
        return self.clients is None or client_id in self.clients

    @classmethod
    def of_reviewer(cls, reviewer: Reviewer) -> Actor:
        clients = frozenset(reviewer.clients) if reviewer.clients else None
        return cls(reviewer.name, clients, reviewer.can_reveal)


class ReviewError(Exception):
    """A refusal, with the HTTP status it maps to. ``code`` is a stable short
    reason (``not_found``, ``not_held``, ``policy``, ``forbidden``,
    ``invalid``, ``unavailable``); ``rule`` the policy rule of a refused
    approval (``cap.<id>``, ``opt_out``…). Never personal data."""

    def __init__(
        self, status: int, title: str, detail: str, *, code: str, rule: str | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.code = code
        self.rule = rule


def not_found() -> ReviewError:
    return ReviewError(404, "Not found", "no such message in review", code="not_found")


def unavailable(what: str = "the store") -> ReviewError:
    return ReviewError(
        503, "Service unavailable", f"{what} is unavailable; nothing changed", code="unavailable"
    )


def invalid(field_name: str, limit: int) -> ReviewError:
    return ReviewError(
        400, "Invalid request", f"{field_name} must be a text of 1-{limit} characters",
        code="invalid",
    )  # fmt: skip


def clean_text(value: object, field_name: str, limit: int) -> str:
    """A required free text, trimmed, 1..limit characters (else 400)."""
    if not isinstance(value, str):
        raise invalid(field_name, limit)
    text = value.strip()
    if not 0 < len(text) <= limit:
        raise invalid(field_name, limit)
    return text


class ReviewService:
    def __init__(self, app: web.Application) -> None:
        self.app = app  # the store, audit writer and policy open later (cleanup_ctx)
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def store(self) -> Store:
        return self.app[STORE]

    @property
    def audit(self) -> AuditWriter:
        return self.app[AUDIT]

    # -- sign-in ----------------------------------------------------------------
    async def authenticate(self, name: str, password: str) -> Reviewer | None:
        """The enabled reviewer with this password, else None. An unknown or
        disabled name costs the same scrypt run as a wrong password."""
        stored = None
        if 0 < len(name) <= 200:
            try:
                stored = await self.store.get_reviewer(name)
            except StoreUnavailable:
                stored = None
        usable = stored is not None and stored.reviewer.disabled_at is None
        hashed = stored.password_hash if stored is not None and usable else DUMMY_HASH
        ok = await verify_password_async(password, hashed)
        return stored.reviewer if ok and usable and stored is not None else None

    # -- reading ----------------------------------------------------------------
    async def list(self, actor: Actor, query: ReviewQuery) -> ReviewPage:
        """The queue; ``query.clients`` is clamped to the actor's clients.
        A bad cursor is a 400."""
        clients = query.clients
        if actor.clients is not None:
            clients = actor.clients if clients is None else clients & actor.clients
        statuses = query.statuses & REVIEWABLE or REVIEWABLE
        clamped = ReviewQuery(
            statuses=statuses,
            clients=clients,
            purpose=query.purpose,
            category=query.category,
            source=query.source,
            after=query.after,
            before=query.before,
            cursor=query.cursor,
            limit=max(1, min(query.limit, 200)),
        )
        if clients is not None and not clients:
            return ReviewPage((), None)
        try:
            return await self.store.list_for_review(clamped)
        except ValueError:
            raise ReviewError(
                400, "Invalid request", "cursor is not one this server handed out", code="invalid"
            ) from None
        except StoreUnavailable:
            raise unavailable() from None

    async def _visible(self, actor: Actor, message_id: str) -> Message:
        """A message that is or was in review (held or blocked at some point)
        and belongs to one of the actor's clients; else 404."""
        if not 0 < len(message_id) <= MAX_ID:
            raise not_found()
        try:
            message = await self.store.get_message(message_id)
        except StoreUnavailable:
            raise unavailable() from None
        if message is None or not actor.sees(message.client_id):
            raise not_found()
        reviewed = message.status in REVIEWABLE or message.status is Status.REJECTED
        if not reviewed and not any(e.status in REVIEWABLE for e in message.events):
            raise not_found()
        return message

    async def get(self, actor: Actor, message_id: str) -> ReviewItem:
        return review_item(await self._visible(actor, message_id))

    async def summary(self, actor: Actor, since: datetime, until: datetime) -> Summary:
        if until <= since:
            raise ReviewError(400, "Invalid request", "until must be after since", code="invalid")
        try:
            rows = await self.store.review_counts(actor.clients, since, until)
        except StoreUnavailable:
            raise unavailable() from None
        return summarize(rows, since, until)

    # -- acting -----------------------------------------------------------------
    def _owner(self, message: Message) -> str | None:
        index = self.audit.index
        return index.borrower(message.client_id, message.borrower_id) if index else None

    async def _record(
        self, event: str, actor: Actor, message: Message, status: str, sealed: dict[str, str]
    ) -> None:
        try:
            await self.audit.append(
                event,
                message_id=message.id,
                clear={"client": message.client_id, "reviewer": actor.name, "status": status},
                sealed=sealed,
                owner=self._owner(message),
            )
        except AuditUnavailable:
            raise unavailable("the audit log") from None

    def _count(self, action: str) -> None:
        self.app[METRICS].review_actions.labels(action).inc()

    def _lock(self, message_id: str) -> asyncio.Lock:
        return self._locks.setdefault(message_id, asyncio.Lock())

    def _unlock(self, message_id: str, lock: asyncio.Lock) -> None:
        if not lock.locked() and self._locks.get(message_id) is lock:
            del self._locks[message_id]

    async def approve(self, actor: Actor, message_id: str, comment: str) -> Message:
        comment = clean_text(comment, "comment", MAX_COMMENT)
        lock = self._lock(message_id)
        try:
            async with lock:
                return await asyncio.shield(self._approve(actor, message_id, comment))
        finally:
            self._unlock(message_id, lock)

    async def _approve(self, actor: Actor, message_id: str, comment: str) -> Message:
        message = await self._held(actor, message_id, "approved")
        now = self.app[CLOCK].now()
        placement = await self._placement(actor, message, now)
        new = Status.SCHEDULED if placement.send_at > now else Status.QUEUED
        try:
            await self._record("review_approved", actor, message, str(new), {"comment": comment})
            updated = await self.store.transition(
                message.id, new, now, detail="approved in review", expect=HELD,
                due_at=placement.send_at,
            )  # fmt: skip
        except (ReviewError, TransitionError, StoreUnavailable) as exc:
            await self._undo_approval(message, placement, exc)
            raise
        self._count("approved")
        if (dispatcher := self.app[DISPATCHER]) is not None and new is Status.QUEUED:
            dispatcher.notify()
        return updated

    async def _placement(self, actor: Actor, message: Message, now: datetime) -> Placement:
        policy = self.app[CONTACT]
        if policy is None:  # built without the contact policy: nothing to re-check
            return Placement(now, reserved=False)
        try:
            client = await self.store.get_client(message.client_id)
            result = await recheck(policy, message, client.policy if client else "", now)
        except StoreUnavailable:
            raise unavailable("the contact-policy store") from None
        if isinstance(result, Refusal):
            self._count("refused")
            await self._note_refusal(actor, message, result.rule)
            raise ReviewError(
                409, "Conflict", f"{result.detail}; the message stays held",
                code="policy", rule=result.rule,
            )  # fmt: skip
        return result

    async def _note_refusal(self, actor: Actor, message: Message, rule: str) -> None:
        """The refused attempt, best effort: nothing changed, so a missing
        record loses no action."""
        try:
            await self.audit.append(
                "review_refused",
                message_id=message.id,
                clear={"client": message.client_id, "reviewer": actor.name, "rule": rule},
            )
        except AuditUnavailable:
            return

    async def _undo_approval(self, message: Message, placement: Placement, exc: Exception) -> None:
        policy = self.app[CONTACT]
        if isinstance(exc, TransitionError | StoreUnavailable):
            await self._aborted(message, exc)
        now_status = await self._status(message.id)
        if policy is not None and placement.reserved and now_status in _UNRELEASED:
            await policy.release(message)
        if isinstance(exc, TransitionError):
            raise not_held("approved") from None
        if isinstance(exc, StoreUnavailable):
            raise unavailable() from None

    async def _aborted(self, message: Message, exc: Exception) -> None:
        """The action recorded above did not happen after all (best effort,
        like acceptance's ``aborted``)."""
        with contextlib.suppress(AuditUnavailable):
            await self.audit.append(
                "review_aborted",
                message_id=message.id,
                clear={"client": message.client_id, "reason": type(exc).__name__},
            )

    async def _status(self, message_id: str) -> Status | None:
        try:
            current = await self.store.get_message(message_id)
        except StoreUnavailable:
            return None
        return None if current is None else current.status

    async def _held(self, actor: Actor, message_id: str, verb: str) -> Message:
        message = await self._visible(actor, message_id)
        if message.status is not Status.HELD:
            raise not_held(verb)
        return message

    async def reject(self, actor: Actor, message_id: str, comment: str) -> Message:
        comment = clean_text(comment, "comment", MAX_COMMENT)
        lock = self._lock(message_id)
        try:
            async with lock:
                return await asyncio.shield(self._reject(actor, message_id, comment))
        finally:
            self._unlock(message_id, lock)

    async def _reject(self, actor: Actor, message_id: str, comment: str) -> Message:
        message = await self._held(actor, message_id, "rejected")
        now = self.app[CLOCK].now()
        await self._record("review_rejected", actor, message, "rejected", {"comment": comment})
        try:
            updated = await self.store.transition(
                message.id, Status.REJECTED, now, detail="rejected in review", expect=HELD
            )
        except TransitionError as exc:
            await self._aborted(message, exc)
            raise not_held("rejected") from None
        except StoreUnavailable as exc:
            await self._aborted(message, exc)
            raise unavailable() from None
        if (policy := self.app[CONTACT]) is not None:
            await policy.release(updated)  # a rejected message gives its caps back
        self._count("rejected")
        return updated

    async def reveal(self, actor: Actor, message_id: str, reason: str) -> Revealed:
        """The original text and number, audited first (no record, no data)."""
        if not actor.can_reveal:
            raise ReviewError(
                403, "Not allowed", "this reviewer may not reveal originals", code="forbidden"
            )
        reason = clean_text(reason, "reason", MAX_REASON)
        message = await self._visible(actor, message_id)
        await self._record(
            "review_revealed", actor, message, str(message.status), {"reason": reason}
        )
        self._count("revealed")
        return Revealed(message.id, message.to, message.text, message.body)


def not_held(verb: str) -> ReviewError:
    return ReviewError(409, "Conflict", f"only a held message can be {verb}", code="not_held")


REVIEW_SERVICE: web.AppKey[ReviewService] = web.AppKey("review_service")


def setup_service(app: web.Application) -> ReviewService:
    """The app's one review service (the API and the /review page share it);
    call while the app is being built."""
    if REVIEW_SERVICE not in app:
        app[REVIEW_SERVICE] = ReviewService(app)
    return app[REVIEW_SERVICE]


def service_of(app: web.Application) -> ReviewService:
    return app[REVIEW_SERVICE]
