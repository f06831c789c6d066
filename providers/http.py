"""The base class of the HTTP adapters: one ``aiohttp.ClientSession`` per provider with
an explicit ``ClientTimeout``; every send timed, logged and counted; every answer mapped
through the adapter's :class:`ErrorTable` into one :class:`Outcome`.

A request that may have reached the provider without an answer (a read timeout, a
dropped connection, a code the provider documents as "may have been sent") raises
:class:`ProviderError`: the dispatcher then asks the provider's status query instead of
resending (DESIGN.md invariant 9). A connection that was never made is a plain retry.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

import aiohttp
from yarl import URL

from providers.base import (
    CallbackRejected,
    CallbackRequest,
    Capabilities,
    OutboundSms,
    Outcome,
    ProviderConfigError,
    ProviderError,
    SendResult,
    StatusResult,
)
from providers.options import Network, Options

log = logging.getLogger("lendsms.providers")

AMBIGUOUS: Final = "ambiguous"
Classification = Outcome | Literal["ambiguous"]
COMMON_OPTIONS = frozenset(
    {"endpoint", "timeout", "callback_token", "callback_networks", "countries"}
)
MAX_RESPONSE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class ErrorTable:
    """A provider's codes -> outcomes. Exact codes first, then the longest matching
    prefix (``LimitExceeded.PhoneNumber``), then ``default``."""

    codes: Mapping[str, Classification]
    prefixes: Mapping[str, Classification] = field(default_factory=dict)
    default: Classification = Outcome.PERMANENT

    def classify(self, code: str) -> Classification:
        if code in self.codes:
            return self.codes[code]
        for prefix in sorted(self.prefixes, key=len, reverse=True):
            if code.startswith(prefix):
                return self.prefixes[prefix]
        return self.default


def http_status_class(status: int) -> Classification:
    """What an HTTP status alone says when the body names no known code."""
    if status == 429:
        return Outcome.RETRY
    if status in (502, 504):  # a gateway gave up: the backend may have taken it
        return AMBIGUOUS
    if status >= 500:
        return Outcome.RETRY
    if status in (401, 403):
        return Outcome.SWITCH_PROVIDER  # credentials or account: this provider cannot
    return Outcome.PERMANENT


def host_header(url: URL) -> str:
    """The ``Host`` value aiohttp sends for ``url`` (port only when not the default)."""
    host = url.raw_host or ""
    if ":" in host:
        host = f"[{host}]"
    if url.explicit_port and url.port != {"http": 80, "https": 443}.get(url.scheme):
        return f"{host}:{url.port}"
    return host


class HttpProvider(ABC):
    """Subclasses set ``type_name``, ``options_known``, ``default_endpoint`` and
    ``capabilities``, and implement :meth:`_send` (and :meth:`query_status`)."""

    type_name: ClassVar[str] = "http"
    options_known: ClassVar[frozenset[str]] = frozenset()
    default_endpoint: ClassVar[str] = ""
    default_timeout: ClassVar[float] = 5.0
    capabilities: Capabilities

    def __init__(self, name: str, options: Mapping[str, Any], *, base_dir: Path) -> None:
        self.name = name
        self.options = Options(name, self.type_name, options, COMMON_OPTIONS | self.options_known)
        self.endpoint = URL(self.options.text("endpoint", self._default_endpoint()))
        if self.endpoint.scheme not in ("http", "https") or not self.endpoint.host:
            raise ProviderConfigError(f"providers.{name}.endpoint: must be an http(s) URL")
        self.timeout = self.options.number("timeout", self.default_timeout, high=120.0)
        self.callback_token = self.options.optional_secret("callback_token")
        self.callback_networks = self.options.networks("callback_networks")
        countries = self.options.regions("countries")
        if countries is not None:  # an operator's restriction, e.g. countries = ["CN"]
            self.capabilities = replace(self.capabilities, countries=countries)
        self.counts: Counter[str] = Counter()
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def _default_endpoint(self) -> str | None:
        return self.default_endpoint or None

    # -- life cycle -------------------------------------------------------------------
    async def start(self) -> None:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.timeout, connect=min(self.timeout, 3.0))
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                timeout=timeout, connector=connector, raise_for_status=False, trust_env=False
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise ProviderError(f"{self.name}: not started")
        return self._session

    # -- sending ----------------------------------------------------------------------
    async def send(self, sms: OutboundSms) -> SendResult:
        started = time.perf_counter()
        label, code = AMBIGUOUS, None
        try:
            result = await self._send(sms)
            label, code = str(result.outcome), result.code
            return result
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            label = code = "connect_error"  # the request never left: safe to retry
            return SendResult(Outcome.RETRY, code=f"connect_error:{exc.__class__.__name__}")
        except ProviderError as exc:
            code = str(exc.args[0]) if exc.args else None
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            code = exc.__class__.__name__
            raise ProviderError(f"{self.name}: {code}") from None
        finally:
            self.counts[label] += 1
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "provider call",
                    extra={"provider": self.name, "outcome": label, "code": code,
                           "duration_ms": round((time.perf_counter() - started) * 1000, 1)},
                )  # fmt: skip

    @abstractmethod
    async def _send(self, sms: OutboundSms) -> SendResult:
        """The provider-specific request; :meth:`send` times, logs and counts it."""

    async def query_status(
        self, message_id: str, provider_message_id: str | None
    ) -> StatusResult | None:
        return None

    def result(
        self,
        classification: Classification,
        code: str,
        *,
        provider_message_id: str | None = None,
        retry_after: float | None = None,
    ) -> SendResult:
        """The SendResult for a mapped answer; AMBIGUOUS raises ProviderError."""
        if classification == AMBIGUOUS:
            raise ProviderError(code)
        outcome = Outcome(classification)
        if outcome is Outcome.RETRY_LATER and retry_after is None:
            retry_after = 60.0
        return SendResult(outcome, provider_message_id, code, retry_after)

    # -- callbacks --------------------------------------------------------------------
    def check_callback_token(self, request: CallbackRequest) -> None:
        """Unsigned pushes (Tencent, Alibaba): ``?token=`` must equal ``callback_token``
        (constant time) and the source must be in ``callback_networks`` when set."""
        if self.callback_token is None:
            raise CallbackRejected("no callback_token is configured")
        given = [value for name, value in request.query if name == "token"]
        if len(given) != 1 or not hmac.compare_digest(
            given[0].encode("utf-8"), self.callback_token.encode("utf-8")
        ):
            raise CallbackRejected("bad token")
        check_source(request.remote, self.callback_networks)


def check_source(remote: str | None, networks: Iterable[Network]) -> None:
    allowed = tuple(networks)
    if not allowed:
        return
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        raise CallbackRejected("unknown source address") from None
    if not any(address in net for net in allowed):
        raise CallbackRejected("source address not allowed")


async def read_limited(response: aiohttp.ClientResponse) -> bytes:
    """The response body, at most MAX_RESPONSE_BYTES."""
    body = await response.content.read(MAX_RESPONSE_BYTES + 1)
    return body[:MAX_RESPONSE_BYTES]


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None or not value.strip().isdigit():
        return None
    return float(min(int(value), 3600))
