"""Per-borrower and per-number contact caps (``BorrowerCaps``) over a
:class:`CapStore` port.

A message spends one unit of every counter its purpose falls under: for each
of the pack's rules, one counter for the (client, borrower) and one for the
(client, number) (``per``). The store checks every counter and reserves all
of them, or none, atomically (one transaction on SQLite, one Lua script on
Redis). A reservation is named after the message id, so a message that ends
``blocked``, ``rejected`` or ``cancelled`` before it is sent gives it back.

Windows: a calendar day in the recipient's zone, counting the day the message
will be sent; or a rolling span, in which no interval of that length may
hold more than ``limit`` messages (scheduled ones included).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from config.contact import CapRule
from gateway.crypto import BlindIndex
from gateway.errors import StoreUnavailable
from gateway.policy.zones import day_bounds


class PolicyUnavailable(StoreUnavailable):
    """The caps / opt-out store cannot answer: fail closed (503, nothing sent)."""


@dataclass(frozen=True, slots=True)
class Counter:
    """One counter a message spends. Times are epoch milliseconds.

    ``calendar``: count what lies in [lo, hi); else a rolling span of ``span``."""

    name: str  # "<b|n>:<blind-index hash>:<rule id>": no number, no borrower id
    rule: str
    subject: str  # "borrower" | "number"
    limit: int
    calendar: bool
    lo: int = 0
    hi: int = 0
    span: int = 0


@dataclass(frozen=True, slots=True)
class CapCheck:
    client: str
    member: str  # the message id: what a release names
    at: int  # when the message will be sent (ms)
    now: int  # ms
    counters: tuple[Counter, ...]


@dataclass(frozen=True, slots=True)
class CapDenied:
    rule: str
    subject: str
    retry_after: float  # seconds


class CapStore(Protocol):
    async def reserve(self, check: CapCheck) -> CapDenied | None:
        """Check every counter and reserve all of them, or none; None when
        reserved (reserving the same member twice is a no-op). Raises
        :class:`PolicyUnavailable` when the store cannot answer."""

    async def release(self, client: str, member: str) -> None:
        """Give a reservation back (a no-op when there is none)."""


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def over_limit(counter: Counter, scores: Sequence[float], at: int, now: int) -> float | None:
    """Seconds to wait when adding ``at`` breaks ``counter``, else None.

    ``scores`` are what the counter holds in the relevant range: [lo, hi) for
    a calendar counter, (at - span, at + span) for a rolling one. The Lua
    script of the Redis adapter computes the same thing."""
    if counter.calendar:
        inside = sum(1 for s in scores if counter.lo <= s < counter.hi)
        return (counter.hi - now) / 1000 if inside >= counter.limit else None
    xs = sorted(s for s in scores if at - counter.span < s < at + counter.span)
    first = 0
    for j, x in enumerate(xs):
        # the run xs[first..j] plus `at` must fit in one window shorter than span
        while max(x, at) - min(xs[first], at) >= counter.span:
            first += 1
        if j - first + 1 >= counter.limit:
            return (xs[first] + counter.span - now) / 1000
    return None


class BorrowerCaps:
    """Turns a message into the counters its pack's rules give it."""

    def __init__(self, index: BlindIndex) -> None:
        self.index = index

    def counters(
        self,
        rules: Sequence[CapRule],
        *,
        client: str,
        borrower_id: str,
        to: str,
        at: datetime,
        zone: ZoneInfo,
    ) -> tuple[Counter, ...]:
        subjects = {
            "borrower": "b:" + self.index.borrower(client, borrower_id),
            "number": "n:" + self.index.phone(to),
        }
        lo, hi = (ms(t) for t in day_bounds(at, zone))
        out = []
        for rule in rules:
            for subject in rule.per:
                name = f"{subjects[subject]}:{rule.id}"
                if rule.window.calendar:
                    out.append(Counter(name, rule.id, subject, rule.limit, True, lo=lo, hi=hi))
                else:
                    span = rule.window.seconds * 1000
                    out.append(Counter(name, rule.id, subject, rule.limit, False, span=span))
        return tuple(out)
