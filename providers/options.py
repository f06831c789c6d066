"""Typed access to one ``[providers.NAME]`` section's options.

Secrets arrive as :class:`config.settings.Secret` (``env:``/``file:`` values and the
known secret names); an adapter reads them with :meth:`Options.secret` and keeps the
value out of every message, ``repr`` and log line.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from config.settings import Secret
from providers.base import ProviderConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Options:
    def __init__(
        self, provider: str, type_name: str, raw: Mapping[str, Any], known: Iterable[str]
    ) -> None:
        self.provider = provider
        self.type_name = type_name
        self.raw = dict(raw)
        allowed = frozenset(known)
        unknown = sorted(str(key) for key in self.raw if key not in allowed)
        if unknown:
            raise ProviderConfigError(
                f"providers.{provider}: unknown option {unknown[0]!r} for type {type_name!r}"
                f" (known: {', '.join(sorted(allowed))})"
            )

    def _key(self, key: str) -> str:
        return f"providers.{self.provider}.{key}"

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def text(self, key: str, default: str | None = None) -> str:
        value = self.raw.get(key, default)
        if isinstance(value, Secret):
            value = value.get()
        if not isinstance(value, str) or not value:
            raise ProviderConfigError(f"{self._key(key)}: must be a non-empty string")
        return value

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if self.has(key) else None

    def secret(self, key: str) -> str:
        """A credential: required, never echoed."""
        value = self.raw.get(key)
        if isinstance(value, Secret):
            return value.get()
        if isinstance(value, str) and value:
            return value
        raise ProviderConfigError(f"{self._key(key)}: missing (a secret, or env:NAME / file:PATH)")

    def optional_secret(self, key: str) -> str | None:
        return self.secret(key) if self.has(key) else None

    def number(self, key: str, default: float, *, low: float = 0.0, high: float = 1e9) -> float:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ProviderConfigError(f"{self._key(key)}: must be a number")
        if not low < float(value) <= high:
            raise ProviderConfigError(f"{self._key(key)}: must be above {low} and at most {high}")
        return float(value)

    def choice(self, key: str, default: str, allowed: Iterable[str]) -> str:
        value = self.text(key, default)
        options = tuple(allowed)
        if value not in options:
            raise ProviderConfigError(f"{self._key(key)}: must be one of {', '.join(options)}")
        return value

    def regions(self, key: str) -> frozenset[str] | None:
        """A list of two-letter region codes, or None when the key is absent."""
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(
            isinstance(v, str) and len(v) == 2 and v.isalpha() and v.isupper() for v in value
        ):
            raise ProviderConfigError(f"{self._key(key)}: must be a list of codes such as CN")
        return frozenset(value)

    def networks(self, key: str) -> tuple[Network, ...]:
        value = self.raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ProviderConfigError(f"{self._key(key)}: must be a list of CIDR strings")
        try:
            return tuple(ipaddress.ip_network(v, strict=False) for v in value)
        except ValueError:
            raise ProviderConfigError(f"{self._key(key)}: not a valid network") from None
