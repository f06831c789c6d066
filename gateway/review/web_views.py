"""What the reviewers' pages show, computed from the review service's answers:
the queue's filters (read from the query string), highlighted bodies, and the
summary's table and chart. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Final

from markupsafe import Markup

from config.content import shipped_content_packs
from gateway.models import Action, Status
from gateway.review.chart import Bar, Series, stacked_bars
from gateway.review.i18n import Labels
from gateway.review.service import FindingView, ReviewError, ReviewItem, Summary
from gateway.store.review import ReviewQuery, ReviewSource

PURPOSES: Final = (
    "verification_code",
    "repayment_reminder",
    "overdue_notice",
    "service",
    "marketing",
)
STATUS_CHOICES: Final = {
    "held": frozenset({Status.HELD}),
    "blocked": frozenset({Status.BLOCKED}),
    "all": frozenset({Status.HELD, Status.BLOCKED}),
}
_EXTRA_CATEGORIES: Final = ("signature", "unsubscribe", "link", "length", "contact")
_PII_CATEGORIES: Final = (
    "mobile",
    "cn_id",
    "bank_card",
    "email",
    "person_name",
    "passport",
    "us_ssn",
)
_RANK: Final = {Action.BLOCK: 0, Action.HOLD: 1}
PAGE_SIZE: Final = 25
SUMMARY_DAYS: Final = (7, 30, 90)


def _invalid() -> ReviewError:
    return ReviewError(400, "Invalid request", "a filter value is not valid", code="invalid")


@dataclass(frozen=True, slots=True)
class Filters:
    """The queue's filters as the form shows them (all strings)."""

    status: str = "held"
    client: str = ""
    purpose: str = ""
    category: str = ""
    source: str = "content"
    date_from: str = ""
    date_to: str = ""

    def query(self, cursor: str | None, limit: int = PAGE_SIZE) -> ReviewQuery:
        return ReviewQuery(
            statuses=STATUS_CHOICES[self.status],
            clients=frozenset({self.client}) if self.client else None,
            purpose=self.purpose or None,
            category=self.category or None,
            source=ReviewSource(self.source),
            after=_day_start(self.date_from),
            before=_day_start(self.date_to, plus_days=1),
            cursor=cursor,
            limit=limit,
        )

    def params(self) -> dict[str, str]:
        """The non-default filters, for links that keep them."""
        out = {
            "status": self.status if self.status != "held" else "",
            "client": self.client,
            "purpose": self.purpose,
            "category": self.category,
            "source": self.source if self.source != "content" else "",
            "from": self.date_from,
            "to": self.date_to,
        }
        return {k: v for k, v in out.items() if v}


def _day_start(text: str, *, plus_days: int = 0) -> datetime | None:
    if not text:
        return None
    day = date.fromisoformat(text) + timedelta(days=plus_days)
    return datetime.combine(day, time(), tzinfo=UTC)


def parse_filters(query: Mapping[str, str]) -> Filters:
    """The filters of a queue URL, or a 400 ReviewError."""
    filters = Filters(
        status=query.get("status") or "held",
        client=query.get("client", "").strip(),
        purpose=query.get("purpose", ""),
        category=query.get("category", "").strip(),
        source=query.get("source") or "content",
        date_from=query.get("from", ""),
        date_to=query.get("to", ""),
    )
    sources = {s.value for s in ReviewSource}
    if filters.status not in STATUS_CHOICES or filters.source not in sources:
        raise _invalid()
    if filters.purpose and filters.purpose not in PURPOSES:
        raise _invalid()
    if len(filters.client) > 64 or len(filters.category) > 64:
        raise _invalid()
    try:
        _day_start(filters.date_from)
        _day_start(filters.date_to)
    except ValueError:
        raise _invalid() from None
    return filters


@cache
def categories() -> tuple[str, ...]:
    """The categories a finding can have, for the filter's choices."""
    found: set[str] = set()
    for spec in shipped_content_packs().values():
        found.update(c.name for c in spec.categories)
        found.update(r.category for r in spec.rules)
    ordered = sorted(found)
    extra = [c for c in (*_EXTRA_CATEGORIES, *_PII_CATEGORIES) if c not in found]
    return (*ordered, *extra)


# -- highlighted bodies ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tag:
    number: int  # 1-based, as in the findings table
    category: str
    css: str  # f-<action>


@dataclass(frozen=True, slots=True)
class Piece:
    """One run of the masked body: plain (``css`` empty) or marked."""

    text: str
    css: str = ""
    title: str = ""
    tags: tuple[Tag, ...] = field(default=())


def strongest(views: Sequence[FindingView]) -> str:
    """The CSS class of the strongest action among findings (block first)."""
    best = min(views, key=lambda v: _RANK.get(v.finding.action, 2))
    return f"f-{best.finding.action}"


def pieces(item: ReviewItem, t: Labels) -> list[Piece]:
    """The body with each covered run marked; a finding's tag (its number and
    category) follows the last run it covers."""
    segments = item.highlights
    out: list[Piece] = []
    for i, segment in enumerate(segments):
        if not segment.findings:
            out.append(Piece(segment.text))
            continue
        views = [item.findings[n] for n in segment.findings]
        following = segments[i + 1].findings if i + 1 < len(segments) else ()
        tags = tuple(
            Tag(n + 1, item.findings[n].finding.category, strongest([item.findings[n]]))
            for n in segment.findings
            if n not in following
        )
        title = "; ".join(
            f"{v.finding.rule} · {t.of('cat', v.finding.category)} · {v.info.description}"
            for v in views
        )
        out.append(Piece(segment.text, strongest(views), title, tags))
    return out


@dataclass(frozen=True, slots=True)
class Stop:
    """A rule that stopped the message, and how many times it fired."""

    view: FindingView
    times: int


def stopping(item: ReviewItem) -> list[Stop]:
    """The rules that stopped the message (hold or block), strongest first."""
    found: dict[str, Stop] = {}
    for view in item.findings:
        if view.finding.action in _RANK:
            seen = found.get(view.finding.rule)
            found[view.finding.rule] = Stop(
                seen.view if seen else view, (seen.times if seen else 0) + 1
            )
    return sorted(found.values(), key=lambda s: _RANK[s.view.finding.action])


# -- summary ---------------------------------------------------------------------

SERIES: Final = ("held", "blocked", "rejected", "approved")


def summary_window(days_text: str, now: datetime) -> tuple[int, datetime, datetime]:
    """``days`` (7, 30 or 90; default 30) ending with today (UTC)."""
    days = int(days_text) if days_text.isdigit() and int(days_text) in SUMMARY_DAYS else 30
    until = datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(), tzinfo=UTC)
    return days, until - timedelta(days=days), until


def category_rows(summary: Summary) -> list[tuple[str, int]]:
    return sorted(summary.by_category.items(), key=lambda kv: (-kv[1], kv[0]))


def day_chart(summary: Summary, t: Labels) -> Markup:
    """The per-day stacked bars over the whole window, empty days included."""
    counts = {d.day: d for d in summary.by_day}
    bars = []
    day = summary.since.date()
    while day < summary.until.date():
        row = counts.get(day.isoformat())
        values = (
            (row.held, row.blocked, row.rejected, row.approved) if row is not None else (0, 0, 0, 0)
        )
        bars.append(Bar(day.isoformat(), values))
        day += timedelta(days=1)
    series = [Series(f"bar-{name}", t(f"series_{name}")) for name in SERIES]
    return stacked_bars(bars, series, t("chart_label"))
