"""What the dispatcher enforces per provider, from generic keys of ``[providers.NAME]``
(the registry keeps them away from the adapter):

* ``max_concurrency`` — calls in flight at once (default: no limit);
* ``rate`` — calls per second, a token bucket with a one-second burst (default: none);
* ``attempts`` — attempts at this provider for one message before the next provider
  on the route is tried (default 2; "failover on exhausted retries");
* ``circuit`` — ``{failure_rate, min_calls, window, open_seconds, half_open_probes}``;
* ``retry_ambiguous`` — when a call's outcome is unknown and the provider has no status
  query that can tell, requeue instead of failing with ``ambiguous_timeout`` (default
  false; only for a provider that deduplicates, e.g. a ``webhook`` receiver honouring
  ``Idempotency-Key``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from providers.base import ProviderConfigError
from providers.circuit import CircuitBreaker, CircuitSettings

DISPATCH_OPTIONS = frozenset({"max_concurrency", "rate", "attempts", "circuit", "retry_ambiguous"})
_CIRCUIT_KEYS = {"failure_rate": float, "min_calls": int, "window": float,
                 "open_seconds": float, "half_open_probes": int}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ProviderLimits:
    max_concurrency: int | None = None
    rate: float | None = None
    attempts: int = 2
    circuit: CircuitSettings = field(default_factory=CircuitSettings)
    retry_ambiguous: bool = False

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> ProviderLimits:
        def number(key: str, kind: type, value: Any) -> Any:
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ProviderConfigError(f"providers.{name}.{key}: must be a positive number")
            if kind is int and not isinstance(value, int):
                raise ProviderConfigError(f"providers.{name}.{key}: must be an integer")
            return kind(value)

        circuit_raw = options.get("circuit", {})
        if not isinstance(circuit_raw, Mapping) or set(circuit_raw) - set(_CIRCUIT_KEYS):
            raise ProviderConfigError(
                f"providers.{name}.circuit: a table of {', '.join(sorted(_CIRCUIT_KEYS))}"
            )
        circuit = CircuitSettings(
            **{k: number(f"circuit.{k}", _CIRCUIT_KEYS[k], v) for k, v in circuit_raw.items()}
        )
        if circuit.failure_rate > 1:
            raise ProviderConfigError(f"providers.{name}.circuit.failure_rate: at most 1")
        raw = {k: options[k] for k in ("max_concurrency", "rate", "attempts") if k in options}
        kinds = {"max_concurrency": int, "rate": float, "attempts": int}
        values = {k: number(k, kinds[k], v) for k, v in raw.items()}
        retry_ambiguous = options.get("retry_ambiguous", False)
        if not isinstance(retry_ambiguous, bool):
            raise ProviderConfigError(f"providers.{name}.retry_ambiguous: must be true or false")
        return cls(circuit=circuit, retry_ambiguous=retry_ambiguous, **values)


class TokenBucket:
    """``rate`` tokens a second, at most ``rate`` (and at least one) banked."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.clock = clock
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def take(self) -> None:
        async with self._lock:  # first come, first served
            self._refill()
            while self._tokens < 1:
                await asyncio.sleep((1 - self._tokens) / self.rate)
                self._refill()
            self._tokens -= 1


class ProviderGuard:
    """The circuit, concurrency slots and rate of one provider."""

    def __init__(self, limits: ProviderLimits, clock: Callable[[], float] = time.monotonic):
        self.limits = limits
        self.circuit = CircuitBreaker(limits.circuit, clock)
        self._slots = asyncio.Semaphore(limits.max_concurrency) if limits.max_concurrency else None
        self._bucket = TokenBucket(limits.rate, clock) if limits.rate else None

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a free slot and a rate token; hold the slot while inside."""
        if self._slots is not None:
            await self._slots.acquire()
        try:
            if self._bucket is not None:
                await self._bucket.take()
            yield
        finally:
            if self._slots is not None:
                self._slots.release()
