"""Client status webhooks: when a message has ``callback_url``, each status the
dispatcher or a delivery receipt gives it is POSTed there as JSON::

    {"id", "status", "at", "detail", "reference"}

signed ``Lendsms-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`` with
the client's webhook secret, and retried with exponential backoff and jitter on
timeouts, 408, 429 and 5xx. Deliveries are in-process: a restart loses those still
pending (at-least-once only while the process lives).

SSRF: the URL must be https, carry no credentials, and every address its host
resolves to must be public — loopback, private, link-local, shared (CGNAT), cloud
metadata, multicast and reserved addresses are refused unless a network in
``[webhooks] allow_networks`` covers them. Addresses are checked in the resolver the
connection itself uses, so a name cannot pass the check and then resolve elsewhere;
redirects are not followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import random
import socket
import ssl
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from config.settings import WebhookSettings
from gateway.clock import Clock, rfc3339
from gateway.models import Message
from gateway.store.delivery import DeliveryStore
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
MAX_PENDING = 10_000


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


@dataclass(frozen=True, slots=True)
class Delivery:
    message_id: str
    client_id: str
    url: str
    body: bytes


class WebhookNotifier:
    def __init__(self, settings: WebhookSettings, store: DeliveryStore, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.allow = tuple(ipaddress.ip_network(n, strict=False) for n in settings.allow_networks)
        self.counts: Counter[str] = Counter()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
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

    async def close(self, grace: float = 5.0) -> None:
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def idle(self) -> None:
        """Wait until every delivery under way has finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def notify(self, message: Message) -> None:
        """Queue the message's current status for its callback_url (never blocks)."""
        if not message.callback_url or message.erased or self._session is None:
            return  # an erased message's callback_url is erased too
        if len(self._tasks) >= MAX_PENDING:
            self.counts["dropped"] += 1
            log.warning(
                "webhook backlog full; status not delivered", extra={"client": message.client_id}
            )
            return
        last = message.events[-1] if message.events else None
        body = json.dumps(
            {"id": message.id, "status": str(message.status), "at": rfc3339(message.updated_at),
             "detail": last.detail if last else None, "reference": message.reference},
            ensure_ascii=False,
        ).encode("utf-8")  # fmt: skip
        delivery = Delivery(message.id, message.client_id, message.callback_url, body)
        task = asyncio.create_task(self._deliver(delivery), name=f"webhook-{message.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, delivery: Delivery) -> None:
        extra = {"client": delivery.client_id, "message_id_field": delivery.message_id}
        try:
            url = check_callback_url(delivery.url, self.allow)
            secret = await self.store.get_webhook_secret(delivery.client_id)
        except UnsafeCallbackUrl:
            self.counts["refused"] += 1
            log.warning("webhook refused: unsafe callback_url", extra=extra)
            return
        except Exception:  # the store is down: nothing to sign with
            self.counts["failed"] += 1
            log.warning("webhook not sent: no secret available", extra=extra)
            return
        if secret is None:
            self.counts["no_secret"] += 1
            log.warning("webhook not sent: the client has no webhook secret", extra=extra)
            return
        for attempt in range(1, self.settings.max_attempts + 1):
            outcome = await self._post(url, delivery, secret)
            self.counts[outcome] += 1
            if outcome != "retry":
                if outcome != "delivered":
                    log.warning("webhook refused by the receiver or the SSRF rules", extra=extra)
                return
            if attempt < self.settings.max_attempts:
                delay = self.settings.backoff_base * 2 ** (attempt - 1)
                await asyncio.sleep(delay * (0.5 + self._rng.random() / 2))
        self.counts["gave_up"] += 1
        log.warning("webhook given up after retries", extra=extra)

    async def _post(self, url: URL, delivery: Delivery, secret: str) -> str:
        assert self._session is not None  # noqa: S101 - started before notify() sends
        stamp = int(self.clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            signature.HEADER: signature.sign(secret, stamp, delivery.body),
        }
        try:
            async with self._session.post(
                url, data=delivery.body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
        except aiohttp.ClientConnectorError as exc:
            return "unsafe" if isinstance(exc.os_error, UnsafeAddress) else "retry"
        except (aiohttp.ClientError, TimeoutError):
            return "retry"
        if 200 <= status < 300:
            return "delivered"
        return "retry" if status in (408, 429) or status >= 500 else "rejected"
