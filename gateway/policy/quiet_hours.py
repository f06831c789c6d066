"""Quiet hours: a non-exempt message is handed over only while the local time
is inside the pack's window in every zone the recipient may be in
(compliance.md takeaways 1-2). Outside it the message is scheduled for the
next moment the window is open everywhere, spread over the first minutes so
that a night's backlog does not leave at 08:00:00 all at once."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from config.contact import QuietHoursRules
from gateway.policy.zones import local_instant

_LOOKAHEAD_DAYS = 3


class QuietHours:
    def __init__(self, rules: QuietHoursRules) -> None:
        self.rules = rules

    def exempt(self, purpose: str) -> bool:
        return purpose in self.rules.exempt

    def is_open(self, when: datetime, zones: Sequence[ZoneInfo]) -> bool:
        """Inside [start, end) local time in every zone."""
        for zone in zones:
            local = when.astimezone(zone).time()
            if not self.rules.start <= local < self.rules.end:
                return False
        return True

    def next_open(self, when: datetime, zones: Sequence[ZoneInfo]) -> datetime | None:
        """The earliest instant at or after ``when`` open in every zone; None
        when the zones' windows never overlap in the next few days.

        The open instants are an intersection of per-zone intervals, so the
        first one after ``when`` is ``when`` itself or some zone's start."""
        if self.is_open(when, zones):
            return when
        candidates = sorted(
            start
            for zone in zones
            for days in range(-1, _LOOKAHEAD_DAYS)
            if (start := local_instant(when + timedelta(days=days), self.rules.start, zone)) > when
        )
        return next((c for c in candidates if self.is_open(c, zones)), None)

    def place(self, when: datetime, zones: Sequence[ZoneInfo], seed: str) -> datetime | None:
        """``when`` if the window is open then; else the next opening plus an
        offset in [0, spread) derived from ``seed`` (the message id), shortened
        if the common window is shorter than that."""
        opening = self.next_open(when, zones)
        if opening is None or opening == when:
            return opening
        offset = _offset(seed, self.rules.spread_seconds)
        while offset > 0 and not self.is_open(opening + timedelta(seconds=offset), zones):
            offset //= 2
        return opening + timedelta(seconds=offset)


def _offset(seed: str, spread: int) -> int:
    if spread <= 0:
        return 0
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % spread
