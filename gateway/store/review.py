"""The store port for compliance review: the queue of held and blocked messages
that reviewers read, counts for the summary view, and the reviewer registry
(people who sign in to ``/review`` with a password)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.models import Message, Status


class ReviewSource(enum.StrEnum):
    """Which stopped messages a review listing shows.

    ``content``: messages stopped by what they say (at least one finding of
    kind ``content`` or ``pii`` with action hold or block) — the default queue.
    ``policy``: messages stopped only by contact policy (opt-out, consent,
    caps; every stopping finding has kind ``policy``).
    ``all``: both."""

    CONTENT = "content"
    POLICY = "policy"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class ReviewQuery:
    statuses: frozenset[Status]  # a subset of {held, blocked}
    clients: frozenset[str] | None = None  # None: every client
    purpose: str | None = None
    category: str | None = None  # a finding's category
    source: ReviewSource = ReviewSource.CONTENT
    after: datetime | None = None  # created_at >= after
    before: datetime | None = None  # created_at < before
    cursor: str | None = None  # opaque, from the previous page
    limit: int = 50


@dataclass(frozen=True, slots=True)
class ReviewPage:
    messages: Sequence[Message]  # newest first (created_at, then id, descending)
    next_cursor: str | None  # None on the last page


@dataclass(frozen=True, slots=True)
class ReviewCount:
    day: str  # YYYY-MM-DD (UTC) of created_at
    status: Status  # held | blocked | rejected | the status a reviewed message has now
    category: str  # a stopping finding's category ("" when it has none)
    count: int


@dataclass(frozen=True, slots=True)
class Reviewer:
    name: str
    can_reveal: bool
    clients: tuple[str, ...]  # () means every client
    created_at: datetime
    disabled_at: datetime | None = None
    # sessions of the web page issued at or before this instant are refused
    # (sign-out everywhere; set on sign-out, password change and disabling)
    signed_out_at: datetime | None = None

    def sees(self, client_id: str) -> bool:
        return not self.clients or client_id in self.clients


@dataclass(frozen=True, slots=True)
class StoredReviewer:
    reviewer: Reviewer
    password_hash: str  # "scrypt$n$r$p$salt_b64$hash_b64"


class ReviewStore(Protocol):
    async def list_for_review(self, query: ReviewQuery) -> ReviewPage:
        """Messages in ``query.statuses`` matching the filters, newest first.
        Raises ValueError on a cursor this store did not hand out."""

    async def review_counts(
        self, clients: frozenset[str] | None, since: datetime, until: datetime
    ) -> Sequence[ReviewCount]:
        """Per day, status and stopping-finding category: how many messages that
        were held or blocked (including those reviewed since: rejected, or sent
        on) were created in [since, until). A message with two categories counts
        once under each."""

    async def put_reviewer(self, reviewer: Reviewer, password_hash: str, *, create: bool) -> None:
        """Insert (create=True; ValueError if the name exists) or replace.
        ``reviewer.signed_out_at``, when set, moves the stored sign-out instant
        forward to it in the same write (never back); None leaves it alone."""

    async def end_reviewer_sessions(self, name: str, at: datetime) -> bool:
        """Move the reviewer's sign-out instant forward to ``at`` (never back):
        every web session issued at or before it is refused from then on, on
        every replica. False when there is no reviewer ``name``."""

    async def get_reviewer(self, name: str) -> StoredReviewer | None:
        """The reviewer with their sign-out instant (one read), or None."""

    async def list_reviewers(self) -> Sequence[Reviewer]: ...
