"""A circuit breaker per provider.

Closed: calls flow and their outcomes are kept for ``window`` seconds; when at least
``min_calls`` were seen and the share of failures reaches ``failure_rate``, the
circuit opens. Open: no calls for ``open_seconds``. Half-open: up to
``half_open_probes`` calls go through as probes; that many successes close the
circuit, one failure opens it again.

A failure is what says the provider itself is unwell (a retry, a switch, an ambiguous
outcome). A refusal about one message (permanent, or a recipient's window) is a
working provider answering, so it counts as a success.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class CircuitSettings:
    failure_rate: float = 0.5
    min_calls: int = 10
    window: float = 60.0
    open_seconds: float = 30.0
    half_open_probes: int = 1


class CircuitBreaker:
    def __init__(
        self, settings: CircuitSettings | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings or CircuitSettings()
        self.clock = clock
        self._state = CircuitState.CLOSED
        self._calls: deque[tuple[float, bool]] = deque()
        self._failures = 0  # failures among _calls
        self._open_until = 0.0
        self._probes = 0  # probes in flight (half-open)
        self._probe_successes = 0
        self.opened = 0  # how many times it opened (metrics, tests)

    @property
    def state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self.clock() >= self._open_until:
            self._state = CircuitState.HALF_OPEN
            self._probes = self._probe_successes = 0
        return self._state

    def reopens_in(self) -> float:
        """Seconds until an open circuit lets a probe through (0 when not open)."""
        return max(0.0, self._open_until - self.clock()) if self.state is CircuitState.OPEN else 0.0

    def allow(self) -> bool:
        """May a call go now? In half-open this reserves a probe: the caller must
        ``record`` its outcome or ``release`` it."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.OPEN or self._probes >= self.settings.half_open_probes:
            return False
        self._probes += 1
        return True

    def release(self) -> None:
        """An allowed call that was not made after all."""
        if self._state is CircuitState.HALF_OPEN and self._probes:
            self._probes -= 1

    def record(self, ok: bool) -> None:
        state = self.state
        now = self.clock()
        if state is CircuitState.HALF_OPEN:
            self._probes = max(0, self._probes - 1)
            if not ok:
                self._open(now)
                return
            self._probe_successes += 1
            if self._probe_successes >= self.settings.half_open_probes:
                self._state = CircuitState.CLOSED
                self._calls.clear()
                self._failures = 0
            return
        if state is CircuitState.OPEN:
            return  # a late answer from before it opened
        self._calls.append((now, ok))
        self._failures += not ok
        while self._calls and self._calls[0][0] < now - self.settings.window:
            self._failures -= not self._calls.popleft()[1]
        total, rate = len(self._calls), self.settings.failure_rate
        if total >= self.settings.min_calls and self._failures >= rate * total:
            self._open(now)

    def _open(self, now: float) -> None:
        self._state = CircuitState.OPEN
        self._open_until = now + self.settings.open_seconds
        self._calls.clear()
        self._failures = 0
        self._probes = self._probe_successes = 0
        self.opened += 1
