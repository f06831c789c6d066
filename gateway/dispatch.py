"""Dispatch: background workers hand queued messages to providers.

At most once to a provider (DESIGN.md invariant 9): the attempt is recorded
(status ``sending``, durable) before each call. When a call's outcome is
unknown — a timeout, a dropped connection, a crash — the message is never
resent blindly: the provider's status query decides, and a provider without
one ends the message ``failed`` with reason ``ambiguous_timeout``.

Per provider (``guards``, from ``[providers.NAME]``): a circuit breaker that takes
an unwell provider out of the route for a while, concurrency and rate limits, and
an attempt budget after which the next provider on the route is tried. Template
messages go to a template-only provider with that provider's template code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from config.settings import DispatchSettings, TemplateSettings
from gateway.audit import AuditUnavailable, AuditWriter
from gateway.carriage import outbound_sms, template_code
from gateway.clock import Clock
from gateway.errors import StoreUnavailable, TransitionError
from gateway.logs import message_id as message_id_var
from gateway.metrics import Metrics
from gateway.models import Message, Status
from gateway.store.base import QueueItem, Store
from providers.base import (
    DeliveryState,
    DetailedStatusQuery,
    Outcome,
    Provider,
    ProviderError,
    SendResult,
    StatusResult,
)
from providers.limits import ProviderGuard
from providers.routing import NoRoute, Router

log = logging.getLogger("lendsms.dispatch")

SENDABLE = frozenset({Status.QUEUED, Status.SCHEDULED, Status.SENDING})


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a hand-off re-check decided: move the message instead of sending."""

    status: Status
    detail: str
    due_at: datetime | None = None


# A re-check run immediately before each hand-off (opt-outs, quiet hours and
# the like are added by the contact-policy stages). None means "go ahead".
HandoffCheck = Callable[[Message, datetime], Awaitable[Verdict | None]]
# Told about each status the dispatcher gives a message (client status webhooks).
StatusListener = Callable[[Message], Awaitable[None]]
HEALTHY = frozenset({Outcome.SENT, Outcome.PERMANENT, Outcome.RETRY_LATER})


class Dispatcher:
    def __init__(
        self,
        settings: DispatchSettings,
        store: Store,
        audit: AuditWriter,
        providers: Mapping[str, Provider],
        router: Router,
        clock: Clock,
        metrics: Metrics,
        *,
        owner: str,
        checks: tuple[HandoffCheck, ...] = (),
        guards: Mapping[str, ProviderGuard] | None = None,
        templates: Mapping[str, TemplateSettings] | None = None,
        on_status: StatusListener | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.audit = audit
        self.providers = providers
        self.router = router
        self.clock = clock
        self.metrics = metrics
        self.owner = owner
        self.checks = checks
        self.guards = dict(guards or {})
        self.templates = dict(templates or {})
        self.on_status = on_status
        self._wake = asyncio.Event()
        self._busy = 0
        self._slot_free = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._stopping = False
        self._rng = random.Random()  # noqa: S311 - jitter, not security

    # -- life cycle -----------------------------------------------------------
    def start(self) -> None:
        self._poller = asyncio.create_task(self._poll_loop(), name="dispatch-poller")

    def notify(self) -> None:
        """Something became due: poll now instead of at the next tick."""
        self._wake.set()

    async def stop(self, grace: float) -> None:
        """Stop claiming; let sends in flight finish (up to ``grace`` seconds)."""
        self._stopping = True
        self._wake.set()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:  # their leases expire and another run resolves them
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    # -- claiming -------------------------------------------------------------
    async def _poll_loop(self) -> None:
        while not self._stopping:
            claimed = 0
            try:
                claimed = await self._claim_batch()
            except StoreUnavailable:
                log.warning("dispatcher cannot reach the store; will retry")
            except Exception:
                log.exception("dispatcher poll failed")
            if claimed == 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval)

    async def _claim_batch(self) -> int:
        while self._busy >= self.settings.workers:  # wait for a free worker
            self._slot_free.clear()
            await self._slot_free.wait()
        free = self.settings.workers - self._busy
        now = self.clock.now()
        lease = now + timedelta(seconds=self.settings.lease_seconds)
        items = await self.store.claim_due(now, free, self.owner, lease)
        for item in items:
            self._busy += 1
            task = asyncio.create_task(self._run_item(item), name=f"dispatch-{item.message_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(items)

    async def _run_item(self, item: QueueItem) -> None:
        token = message_id_var.set(item.message_id)
        try:
            await self.handle(item)
        except (StoreUnavailable, AuditUnavailable) as exc:
            log.warning("dispatch deferred", extra={"reason": type(exc).__name__})
        except TransitionError:
            log.info("message moved elsewhere while dispatching")
        except Exception:
            log.exception("dispatch failed unexpectedly")
        finally:
            message_id_var.reset(token)
            self._busy -= 1
            self._slot_free.set()

    # -- one message ----------------------------------------------------------
    async def handle(self, item: QueueItem) -> None:
        message = await self.store.get_message(item.message_id)
        if message is None or message.status not in SENDABLE:
            return
        if await self._stopped_as_erased(message):
            return
        if message.status is Status.SENDING and not await self._resolve_interrupted(message):
            return
        if await self._stopped_at_handoff(message):
            return
        try:
            names = self.router.providers_for(
                country=message.region, purpose=message.purpose, client=message.client_id
            )
        except NoRoute:
            await self._finish(message, Status.FAILED, "no_route")
            return
        candidates = [n for n in names if n in self.providers and self._can_carry(n, message)]
        if not candidates:
            await self._finish(message, Status.FAILED, "no provider on the route can carry it")
            return
        await self._try_providers(message, await self._within_budget(message, candidates))

    async def _stopped_as_erased(self, message: Message) -> bool:
        """Its borrower was erased (``lendsms audit erase``): there is nothing left
        to send, nor to ask a provider about. Cancelled; True when so."""
        if not message.erased:
            return False
        await self._finish(message, Status.CANCELLED, "erased")
        return True

    async def _stopped_at_handoff(self, message: Message) -> bool:
        """The re-checks run immediately before each hand-off (DESIGN.md): the
        time-to-live, then the hand-off checks. True when the message was moved."""
        now = self.clock.now()
        if now >= message.expires_at:
            await self._finish(message, Status.EXPIRED, "time-to-live passed before hand-off")
            return True
        for check in self.checks:
            verdict = await check(message, now)
            if verdict is not None:
                await self._finish(message, verdict.status, verdict.detail, due_at=verdict.due_at)
                return True
        return False

    def _can_carry(self, name: str, message: Message) -> bool:
        caps = self.providers[name].capabilities
        if message.segments > caps.max_segments:
            return False
        if caps.countries is not None and message.region not in caps.countries:
            return False
        return caps.free_text or template_code(self.templates, name, message) is not None

    async def _within_budget(self, message: Message, candidates: list[str]) -> list[str]:
        """Providers that still have attempts left for this message (``attempts`` in
        their settings), in route order: "failover on exhausted retries". When all
        are spent, the least tried go first."""
        if not self.guards or message.attempts == 0:
            return candidates
        used = await self.store.attempts_by_provider(message.id)
        fresh = [
            n for n in candidates
            if n not in self.guards or used.get(n, 0) < self.guards[n].limits.attempts
        ]  # fmt: skip
        return fresh or sorted(candidates, key=lambda n: used.get(n, 0))

    async def _try_providers(self, message: Message, candidates: list[str]) -> None:
        attempt = message
        tried: str | None = None
        open_circuits: list[str] = []
        for name in candidates:
            # a failover is another hand-off: re-check it (handle() checked the first)
            if tried is not None and await self._stopped_at_handoff(attempt):
                return
            guard = self.guards.get(name)
            if guard is not None and not guard.circuit.allow():
                open_circuits.append(name)
                continue
            tried = name
            try:
                async with guard.slot() if guard is not None else contextlib.nullcontext():
                    now = self.clock.now()
                    lease = now + timedelta(seconds=self.settings.lease_seconds)
                    await self._audit("sending", attempt, provider=name)
                    attempt = await self.store.begin_attempt(
                        message.id, name, now, self.owner, lease
                    )
                    # erased since handle() read it (e.g. during a failover): no call
                    result = None if attempt.erased else await self._call(name, attempt)
            except BaseException:  # no outcome to report (store, audit, cancelled)
                if guard is not None:
                    guard.circuit.release()
                raise
            if attempt.erased:
                if guard is not None:
                    guard.circuit.release()
                await self._stopped_as_erased(attempt)
                return
            if guard is not None:
                guard.circuit.record(result is not None and result.outcome in HEALTHY)
            if result is None:  # outcome unknown: ask before anything is resent
                if await self._resolve_ambiguous(attempt, name):
                    await self._retry_later(
                        attempt, name, SendResult(Outcome.RETRY, code="timeout")
                    )
                return
            if result.outcome is Outcome.SENT:
                await self._finish(
                    attempt,
                    Status.SENT,
                    f"accepted by {name}",
                    provider_id=result.provider_message_id,
                )
                return
            if result.outcome is Outcome.PERMANENT:
                await self._finish(attempt, Status.FAILED, f"{name} refused: {result.code}")
                return
            if result.outcome is not Outcome.SWITCH_PROVIDER:
                await self._retry_later(attempt, name, result)
                return
        if tried is None:
            await self._wait_for_circuits(attempt, open_circuits)
            return
        await self._retry_later(attempt, tried, SendResult(Outcome.RETRY, code="all_switched"))

    async def _wait_for_circuits(self, message: Message, names: list[str]) -> None:
        """Every carrier's circuit is open: no attempt; come back when one half-opens."""
        delay = min(self.guards[n].circuit.reopens_in() for n in names)
        now = self.clock.now()
        await self.store.transition(
            message.id, Status.QUEUED, now, detail=f"circuit open: {', '.join(names)}",
            due_at=now + timedelta(seconds=max(delay, self.settings.poll_interval)),
        )  # fmt: skip

    async def _call(self, name: str, message: Message) -> SendResult | None:
        provider = self.providers[name]
        sms = outbound_sms(self.templates, name, message)
        started = time.perf_counter()
        result_label = "ambiguous"
        try:
            result = await asyncio.wait_for(provider.send(sms), self.settings.provider_timeout)
            result_label = str(result.outcome)
            return result
        except (ProviderError, TimeoutError, OSError):
            return None
        finally:
            self.metrics.provider_requests.labels(name, result_label).inc()
            self.metrics.provider_duration.labels(name).observe(time.perf_counter() - started)

    async def _resolve_interrupted(self, message: Message) -> bool:
        """A ``sending`` message whose worker died. True: safe to send again."""
        name = message.provider or await self.store.last_attempt_provider(message.id)
        if name is None:
            return True
        return await self._resolve_ambiguous(message, name)

    async def _resolve_ambiguous(self, message: Message, name: str) -> bool:
        """Ask the provider. True when it never got the message (send again)."""
        provider = self.providers.get(name)
        answer: StatusResult | None = None
        if provider is not None and provider.capabilities.status_query:
            try:
                if isinstance(provider, DetailedStatusQuery):
                    query = provider.query_sms_status(
                        outbound_sms(self.templates, name, message), message.provider_message_id,
                        message.updated_at,
                    )  # fmt: skip
                else:
                    query = provider.query_status(message.id, message.provider_message_id)
                answer = await asyncio.wait_for(query, self.settings.provider_timeout)
            except (ProviderError, TimeoutError, OSError):
                # Still unknown. Requeueing would resend blindly: leave it
                # ``sending``; when its lease runs out the next claim asks again.
                log.warning("status query failed; will ask again", extra={"provider": name})
                return False
        state = None if answer is None else answer.state
        guard = self.guards.get(name)
        if state is None and guard is not None and guard.limits.retry_ambiguous:
            state = DeliveryState.NOT_FOUND  # the operator says resending is safe here
        if state is None:
            await self._finish(message, Status.FAILED, "ambiguous_timeout")
            return False
        if state is DeliveryState.NOT_FOUND:
            if message.attempts >= self.settings.max_attempts:
                await self._finish(message, Status.FAILED, "attempts exhausted")
                return False
            return True
        final = {
            DeliveryState.ACCEPTED: Status.SENT,
            DeliveryState.DELIVERED: Status.DELIVERED,
            DeliveryState.UNDELIVERED: Status.UNDELIVERED,
        }[state]
        await self._finish(
            message,
            final,
            f"confirmed by {name} status query",
            provider_id=None if answer is None else answer.provider_message_id,
        )
        if final is not Status.SENT:
            self.metrics.deliveries.labels(name, str(final)).inc()
        return False

    async def _retry_later(self, message: Message, name: str, result: SendResult) -> None:
        if message.attempts >= self.settings.max_attempts:
            await self._finish(message, Status.FAILED, f"attempts exhausted ({result.code})")
            return
        delay = min(
            self.settings.backoff_max,
            self.settings.backoff_base * 2 ** max(message.attempts - 1, 0),
        )
        delay *= 0.5 + self._rng.random() / 2
        if result.retry_after:
            delay = max(delay, result.retry_after)
        due = self.clock.now() + timedelta(seconds=delay)
        if due >= message.expires_at:
            detail = f"time-to-live passes before the next attempt ({result.code})"
            await self._finish(message, Status.EXPIRED, detail)
            return
        await self.store.transition(
            message.id, Status.QUEUED, self.clock.now(), detail=f"retry: {name} said {result.code}",
            due_at=due,
        )  # fmt: skip

    async def _finish(
        self,
        message: Message,
        status: Status,
        detail: str,
        *,
        due_at: datetime | None = None,
        provider_id: str | None = None,
    ) -> None:
        await self._audit(str(status), message, detail=detail)
        updated = await self.store.transition(
            message.id, status, self.clock.now(), detail=detail, due_at=due_at,
            provider_message_id=provider_id,
        )  # fmt: skip
        self.metrics.dispatched.labels(str(status)).inc()
        if self.on_status is not None:
            try:
                await self.on_status(updated)
            except Exception:  # a listener must never undo or stall a dispatch
                log.exception("status listener failed")

    async def _audit(
        self,
        event: str,
        message: Message,
        *,
        provider: str | None = None,
        detail: str | None = None,
    ) -> None:
        await self.audit.append(
            event,
            message_id=message.id,
            clear={"client": message.client_id, "provider": provider or message.provider,
                   "detail": detail, "attempt": message.attempts},
        )  # fmt: skip
