"""Client status webhooks: when a message has ``callback_url``, each status the
dispatcher or a delivery receipt gives it is POSTed there as JSON::

    {"id", "status", "at", "detail", "reference"}

signed ``Lendsms-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`` with
the client's webhook secret, and retried with exponential backoff and jitter on
timeouts, 408, 429 and 5xx, up to ``[webhooks] max_attempts``.

Durable, at least once across restarts: :meth:`WebhookNotifier.notify` writes each
status as a job in the store (SQLite or Redis; the URL and the body sealed like the
message's own personal fields) and wakes the delivery loop. Every process running a
notifier claims due jobs with a lease of ``lease_seconds`` (the caller's clock, as
in the send queue), posts them, then removes them (delivered, refused, given up)
or puts them back due after the backoff. A job whose process stopped or crashed
mid-post is claimed again, by any process, once its lease has passed; one never
claimed waits in the store for the next process that starts. So a receiver can see
a status twice (a crash after its 2xx, before the job was removed) and in any
order: the body's ``at`` tells. A status change whose job could not be written
(the store down at that moment) is logged and counted, not retried.

SSRF: the URL must be https, carry no credentials, and every address its host
resolves to must be public — loopback, private, link-local, shared (CGNAT), cloud
metadata, multicast and reserved addresses are refused unless a network in
``[webhooks] allow_networks`` covers them. Addresses are checked in the resolver the
connection itself uses, so a name cannot pass the check and then resolve elsewhere;
redirects are not followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import random
import secrets
import socket
import ssl
import time
from collections import Counter
from collections.abc import Coroutine, Iterable
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from config.settings import WebhookSettings
from gateway.clock import Clock, rfc3339
from gateway.errors import StoreUnavailable
from gateway.models import Message
from gateway.store.base import Store
from gateway.store.delivery import WebhookJob
from providers.signing import webhook as signature

log = logging.getLogger("lendsms.webhooks")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# not all of these are "private" to the ipaddress module
ALWAYS_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in ("100.64.0.0/10", "169.254.169.254/32", "100.100.100.200/32", "fd00:ec2::254/128",
              "192.0.0.0/24", "198.18.0.0/15")
)  # fmt: skip
MAX_IN_FLIGHT = 100  # posts under way at once, per process
CLAIM_BATCH = 50


class UnsafeCallbackUrl(ValueError):
    """The callback URL is not https, or points somewhere it must not."""


class UnsafeAddress(OSError):
    """A name resolved to an address the SSRF rules refuse."""


def address_allowed(address: IPAddress, allow: Iterable[Network] = ()) -> bool:
    if any(address in net for net in allow):
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in net for net in ALWAYS_BLOCKED):
        return False
    return not (
        address.is_loopback or address.is_private or address.is_link_local
        or address.is_multicast or address.is_reserved or address.is_unspecified
    )  # fmt: skip


def check_callback_url(url: str, allow: Iterable[Network] = ()) -> URL:
    """The parsed URL, or UnsafeCallbackUrl (checked without any DNS lookup; names
    are checked by :class:`GuardedResolver` when the connection is made)."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        raise UnsafeCallbackUrl("not a URL") from None
    if parsed.scheme != "https" or not parsed.host:
        raise UnsafeCallbackUrl("must be an https URL")
    if parsed.user or parsed.password:
        raise UnsafeCallbackUrl("must not carry credentials")
    host = parsed.host.rstrip(".").lower()
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None and not address_allowed(literal, allow):
        raise UnsafeCallbackUrl("points to a loopback, private or reserved address")
    loopback = ipaddress.ip_address("127.0.0.1")
    named_loopback = host == "localhost" or host.endswith(".localhost")
    if literal is None and named_loopback and not any(loopback in net for net in allow):
        raise UnsafeCallbackUrl("points to a loopback address")
    return parsed


class GuardedResolver(AbstractResolver):
    """Resolves with ``inner`` and refuses the host when any address is not allowed."""

    def __init__(self, allow: Iterable[Network] = (), inner: AbstractResolver | None = None):
        self.allow = tuple(allow)
        self.inner = inner or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        for result in results:
            if not address_allowed(ipaddress.ip_address(result["host"]), self.allow):
                raise UnsafeAddress(f"{host} resolves to a refused address")
        return results

    async def close(self) -> None:
        await self.inner.close()


class WebhookNotifier:
    """Queues each status in the store (:meth:`notify`) and delivers what is due
    from a loop that claims jobs with a lease, so that any process running a
    notifier delivers what another queued, and what a crashed one held once its
    lease has passed. ``owner`` names this process's leases."""

    def __init__(
        self,
        settings: WebhookSettings,
        store: Store,
        clock: Clock,
        *,
        owner: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.owner = owner or f"webhooks-{secrets.token_hex(6)}"
        self.allow = tuple(ipaddress.ip_network(n, strict=False) for n in settings.allow_networks)
        self.lease = max(settings.lease_seconds, 2 * settings.timeout)
        self.counts: Counter[str] = Counter()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: dict[asyncio.Task[None], WebhookJob] = {}
        self._loop: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._claiming = False
        # jobs this process put back to wait out a backoff -> when (monotonic) to
        # stop expecting them back; idle() waits for them
        self._backoff: dict[str, tuple[float, float]] = {}  # id -> (due, give up)
        self._rng = random.Random()  # noqa: S311 - jitter, not security

    async def start(self) -> None:
        context = ssl.create_default_context()
        if self.settings.ca_file is not None:
            context.load_verify_locations(cafile=str(self.settings.ca_file))
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.allow), ssl=context)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
            trust_env=False,
        )
        self._stopping = False
        self._loop = asyncio.create_task(self._run(), name="webhooks")

    async def close(self, grace: float = 5.0) -> None:
        """Stop claiming; let posts in flight finish within ``grace`` seconds. What
        is not finished stays in the store for the next process that starts."""
        self._stopping = True
        self._wake.set()
        deadline = time.monotonic() + grace
        if self._loop is not None:
            await asyncio.wait([self._loop], timeout=grace)
            if not self._loop.done():
                self._loop.cancel()
                await asyncio.gather(self._loop, return_exceptions=True)
            self._loop = None
        if self._tasks:
            remaining = max(0.0, deadline - time.monotonic())
            _, pending = await asyncio.wait(list(self._tasks), timeout=remaining)
            cut = [self._tasks[task] for task in pending]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self._release(cut)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _release(self, jobs: list[WebhookJob]) -> None:
        """Give back the leases of posts cut short at shutdown (due now, attempts
        unchanged), so the next start need not wait for the leases to pass."""
        now = self.clock.now()
        for job in jobs:
            try:
                await self.store.retry_webhook(job.id, self.owner, now, job.attempts)
            except Exception:  # its lease passes and it is taken over
                log.warning("webhook lease not released at shutdown", extra=self._extra(job))

    async def idle(self) -> None:
        """Wait until nothing is in flight and nothing is due — including the
        retries this process has put back to wait out a backoff (tests, shutdown)."""
        while True:
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
                continue
            if self._loop is None or self._loop.done():
                return
            now = time.monotonic()
            self._backoff = {k: v for k, v in self._backoff.items() if v[1] > now}
            if not self._claiming and not self._backoff:
                try:
                    backlog = await self.store.webhook_backlog(self.clock.now())
                except Exception:  # nothing more can be told
                    return
                if backlog.due == 0 and not self._tasks and not self._claiming:
                    return
                self._wake.set()
            await asyncio.sleep(0.005)

    @staticmethod
    def _extra(job: WebhookJob) -> dict[str, str]:
        return {"client": job.client_id, "message_id_field": job.message_id}

    async def notify(self, message: Message) -> None:
        """Queue the message's current status for its callback_url, durably, and
        wake the delivery loop. A store that cannot take it is logged and counted
        (``enqueue_failed``); it never fails the caller's status change."""
        if not message.callback_url or message.erased:
            return  # an erased message's callback_url is erased too
        last = message.events[-1] if message.events else None
        body = json.dumps(
            {"id": message.id, "status": str(message.status), "at": rfc3339(message.updated_at),
             "detail": last.detail if last else None, "reference": message.reference},
            ensure_ascii=False,
        ).encode("utf-8")  # fmt: skip
        job = WebhookJob(
            id=f"wh_{secrets.token_hex(12)}",
            message_id=message.id,
            client_id=message.client_id,
            url=message.callback_url,
            body=body,
            attempts=0,
            due=self.clock.now(),
        )
        try:
            await self.store.enqueue_webhook(job)
        except Exception:  # the status change itself stands
            self.counts["enqueue_failed"] += 1
            log.warning("webhook not queued: the store refused it", extra=self._extra(job))
            return
        self._wake.set()

    # -- the delivery loop ----------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            self._wake.clear()
            room = MAX_IN_FLIGHT - len(self._tasks)
            claimed = 0
            if room > 0:
                now = self.clock.now()
                self._claiming = True
                try:
                    jobs = await self.store.claim_webhooks(
                        now, min(room, CLAIM_BATCH), self.owner, now + timedelta(seconds=self.lease)
                    )
                    failures = 0
                except Exception:  # the store is down: try again later
                    jobs = []
                    failures += 1
                    if failures == 1:
                        log.warning("webhooks cannot reach the store; will retry")
                finally:
                    self._claiming = False
                for job in jobs:
                    self._backoff.pop(job.id, None)
                    if self._stopping:  # taken as close() began: give it back
                        self._spawn(self._release([job]), job)
                    else:
                        self._spawn(self._deliver(job), job)
                claimed = len(jobs)
                if claimed and claimed == min(room, CLAIM_BATCH) and not self._stopping:
                    continue  # more may be due
            wait = self.settings.poll_seconds * min(2**failures, 30)
            if self._backoff and not failures:
                soonest = min(due for due, _ in self._backoff.values())
                wait = min(wait, max(0.0, soonest - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    def _spawn(self, work: Coroutine[Any, Any, None], job: WebhookJob) -> None:
        task = asyncio.create_task(work, name=f"webhook-{job.message_id}")
        self._tasks[task] = job
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        if len(self._tasks) == MAX_IN_FLIGHT - 1:
            self._wake.set()  # there is room again

    async def _deliver(self, job: WebhookJob) -> None:
        extra = self._extra(job)
        try:
            url = check_callback_url(job.url, self.allow)
            secret = await self.store.get_webhook_secret(job.client_id)
            message = await self.store.get_message(job.message_id)
        except UnsafeCallbackUrl:
            self.counts["refused"] += 1
            log.warning("webhook refused: unsafe callback_url", extra=extra)
            await self._finish(job)
            return
        except StoreUnavailable:  # its lease passes, then it is tried again
            self.counts["failed"] += 1
            log.warning("webhook not sent now: no secret available", extra=extra)
            return
        except Exception:  # the secret or the message cannot be read: it never will
            self.counts["failed"] += 1
            log.warning("webhook not sent: its secret or message is unreadable", extra=extra)
            await self._finish(job)
            return
        if secret is None:
            self.counts["no_secret"] += 1
            log.warning("webhook not sent: the client has no webhook secret", extra=extra)
            await self._finish(job)
            return
        if message is not None and message.erased:  # erased since it was queued
            self.counts["erased"] += 1
            await self._finish(job)
            return
        attempt = job.attempts + 1
        outcome = await self._post(url, job, secret)
        self.counts[outcome] += 1
        if outcome == "retry":
            if attempt < self.settings.max_attempts:
                await self._retry(job, attempt)
                return
            self.counts["gave_up"] += 1
            log.warning("webhook given up after retries", extra=extra)
        elif outcome != "delivered":
            log.warning("webhook refused by the receiver or the SSRF rules", extra=extra)
        await self._finish(job)

    async def _retry(self, job: WebhookJob, attempt: int) -> None:
        delay = self.settings.backoff_base * 2 ** (attempt - 1)
        delay *= 0.5 + self._rng.random() / 2
        due = self.clock.now() + timedelta(seconds=delay)
        try:
            kept = await self.store.retry_webhook(job.id, self.owner, due, attempt)
        except Exception:  # its lease passes and it is taken again
            log.warning(
                "webhook retry not recorded; retried after its lease", extra=self._extra(job)
            )
            return
        if kept:
            soon = time.monotonic() + delay
            self._backoff[job.id] = (soon, soon + self.lease + self.settings.poll_seconds)

    async def _finish(self, job: WebhookJob) -> None:
        try:
            await self.store.finish_webhook(job.id)
        except Exception:  # it is sent again after its lease (at least once)
            log.warning("webhook done but not removed from the store", extra=self._extra(job))

    async def _post(self, url: URL, job: WebhookJob, secret: str) -> str:
        assert self._session is not None  # noqa: S101 - started before the loop sends
        stamp = int(self.clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            signature.HEADER: signature.sign(secret, stamp, job.body),
        }
        try:
            async with self._session.post(
                url, data=job.body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
        except aiohttp.ClientConnectorError as exc:
            return "unsafe" if isinstance(exc.os_error, UnsafeAddress) else "retry"
        except (aiohttp.ClientError, TimeoutError):
            return "retry"
        if 200 <= status < 300:
            return "delivered"
        return "retry" if status in (408, 429) or status >= 500 else "rejected"
