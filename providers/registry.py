"""Find provider adapters by type name.

Adapters register under the entry point group ``lendsms.providers``; the
settings pick one per ``[providers.NAME]`` section with ``type = "..."``. The
built-in adapters are registered the same way as third-party plugins, so the
gateway has one path for both.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, cast

from providers.base import Capabilities, Provider, ProviderConfigError, ProviderFactory
from providers.limits import DISPATCH_OPTIONS, ProviderLimits

__all__ = [
    "ENTRY_POINT_GROUP",
    "available_types",
    "build_provider",
    "clear_cache",
    "load_factory",
    "provider_limits",
]

ENTRY_POINT_GROUP = "lendsms.providers"


@functools.cache
def _discover() -> dict[str, list[EntryPoint]]:
    """Installed entry points of the group by name (read once per process)."""
    found: dict[str, list[EntryPoint]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        candidates = found.setdefault(entry.name, [])
        if all(entry.value != known.value for known in candidates):
            candidates.append(entry)
    return found


def clear_cache() -> None:
    """Forget what was discovered and loaded (after installing a plugin; tests)."""
    _discover.cache_clear()
    load_factory.cache_clear()


def available_types() -> list[str]:
    """The provider type names that are installed, sorted."""
    return sorted(_discover())


@functools.cache
def load_factory(type_name: str) -> ProviderFactory:
    """The factory registered as ``type_name``; raises ProviderConfigError."""
    candidates = _discover().get(type_name, [])
    if not candidates:
        known = ", ".join(available_types()) or "none installed"
        raise ProviderConfigError(f"unknown provider type {type_name!r} (known: {known})")
    if len(candidates) > 1:
        # Two packages claim the same name: refuse rather than let one silently win.
        targets = ", ".join(sorted(entry.value for entry in candidates))
        raise ProviderConfigError(
            f"provider type {type_name!r} is registered more than once ({targets})"
        )
    entry = candidates[0]
    try:
        loaded = entry.load()
    except Exception as exc:  # an import error inside a plugin is a set-up problem
        raise ProviderConfigError(
            f"provider type {type_name!r} ({entry.value}) failed to load:"
            f" {exc.__class__.__name__}: {exc}"
        ) from exc
    if not callable(loaded):
        raise ProviderConfigError(
            f"provider type {type_name!r} ({entry.value}) is not a callable factory"
        )
    return cast(ProviderFactory, loaded)


def build_provider(
    name: str, type_name: str, options: Mapping[str, Any], *, base_dir: Path
) -> Provider:
    """Create the provider for one ``[providers.NAME]`` section.

    ``options`` are the section's keys; a ``type`` key among them, if present,
    must agree with ``type_name``. Neither it nor the dispatcher's own keys
    (:data:`providers.limits.DISPATCH_OPTIONS`) are passed on to the adapter.
    ``base_dir`` is the folder relative paths in the settings refer to.
    """
    declared = options.get("type", type_name)
    if declared != type_name:
        raise ProviderConfigError(
            f"providers.{name}: 'type' is {declared!r} but {type_name!r} was requested"
        )
    provider_limits(name, options)  # bad limits fail at start, like bad adapter options
    adapter_options = {
        key: value
        for key, value in options.items()
        if key != "type" and key not in DISPATCH_OPTIONS
    }
    factory = load_factory(type_name)
    provider = factory(name, adapter_options, base_dir=base_dir)
    if not isinstance(provider, Provider) or not isinstance(
        getattr(provider, "capabilities", None), Capabilities
    ):
        raise ProviderConfigError(
            f"providers.{name}: type {type_name!r} did not produce a provider"
            f" (got {type(provider).__name__})"
        )
    if provider.name != name:
        raise ProviderConfigError(
            f"providers.{name}: type {type_name!r} named its provider {provider.name!r}"
        )
    return provider


def provider_limits(name: str, options: Mapping[str, Any]) -> ProviderLimits:
    """The dispatcher's limits for one ``[providers.NAME]`` section."""
    return ProviderLimits.from_options(name, options)
