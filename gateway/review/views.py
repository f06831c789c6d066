"""The values the review service hands out (gateway.review.service): one
message for review with its findings described and its masked body cut into
highlights, a revealed original, and the summary counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gateway.models import Finding, Message, Status
from gateway.review.highlights import Segment, highlight
from gateway.review.rules import RuleInfo, describe
from gateway.store.review import ReviewCount

_BUCKETS = {Status.HELD: "held", Status.BLOCKED: "blocked", Status.REJECTED: "rejected"}


@dataclass(frozen=True, slots=True)
class FindingView:
    finding: Finding
    info: RuleInfo  # description and legal source


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One message for review. Expose ``message.body`` (masked) and
    ``message.to_masked`` only: ``message.to`` and ``message.text`` are for
    :meth:`ReviewService.reveal`."""

    message: Message
    findings: tuple[FindingView, ...]
    highlights: tuple[Segment, ...]  # the body, cut; Segment.findings index ``findings``


@dataclass(frozen=True, slots=True)
class Revealed:
    message_id: str
    to: str  # E.164
    text: str  # as submitted
    body: str  # as it would be sent


@dataclass(frozen=True, slots=True)
class DayCount:
    """Messages of one UTC day by their status now: still ``held``,
    ``blocked``, ``rejected`` by a reviewer, or ``approved`` (sent on, or
    cancelled / expired since). A message stopped under two categories counts
    under each (the store counts per category)."""

    day: str
    held: int = 0
    blocked: int = 0
    rejected: int = 0
    approved: int = 0


@dataclass(frozen=True, slots=True)
class Summary:
    since: datetime
    until: datetime
    by_category: dict[str, int] = field(default_factory=dict)  # "" = no stopping finding
    by_day: list[DayCount] = field(default_factory=list)  # oldest first


def review_item(message: Message) -> ReviewItem:
    views = tuple(FindingView(f, describe(f.rule)) for f in message.findings)
    segments = highlight(message.text, message.body, message.findings)
    return ReviewItem(message, views, tuple(segments))


def summarize(rows: Sequence[ReviewCount], since: datetime, until: datetime) -> Summary:
    by_category: dict[str, int] = {}
    days: dict[str, dict[str, int]] = {}
    for row in rows:
        by_category[row.category] = by_category.get(row.category, 0) + row.count
        bucket = _BUCKETS.get(row.status, "approved")
        day = days.setdefault(row.day, {})
        day[bucket] = day.get(bucket, 0) + row.count
    by_day = [
        DayCount(day, c.get("held", 0), c.get("blocked", 0), c.get("rejected", 0),
                 c.get("approved", 0))
        for day, c in sorted(days.items())
    ]  # fmt: skip
    return Summary(since, until, by_category, by_day)
