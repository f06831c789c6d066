"""Provider registry: entry point lookup and provider construction."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from providers import registry
from providers.base import Provider, ProviderConfigError
from providers.outbox import OutboxProvider


class NotAProvider:
    """A broken plugin: its factory returns something without the protocol."""

    def __init__(self, name: str, options: Mapping[str, Any], *, base_dir: Path) -> None:
        self.name = name


NOT_CALLABLE = 42


def entry(name: str, target: str) -> EntryPoint:
    return EntryPoint(name=name, value=target, group=registry.ENTRY_POINT_GROUP)


@pytest.fixture
def fresh_cache() -> Iterator[None]:
    registry.clear_cache()
    yield
    registry.clear_cache()


@pytest.fixture
def fake_plugins(monkeypatch: pytest.MonkeyPatch, fresh_cache: None) -> None:
    plugins = {
        "outbox": [entry("outbox", "providers.outbox:OutboxProvider")],
        "broken": [entry("broken", f"{__name__}:NotAProvider")],
        "notcallable": [entry("notcallable", f"{__name__}:NOT_CALLABLE")],
        "missing": [entry("missing", "no_such_module_lendsms:Thing")],
        "twice": [entry("twice", "a:A"), entry("twice", "b:B")],
    }

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        assert group == registry.ENTRY_POINT_GROUP
        return [ep for eps in plugins.values() for ep in eps]

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)


def test_outbox_resolves_through_the_entry_point(fresh_cache: None) -> None:
    assert "outbox" in registry.available_types()
    assert registry.load_factory("outbox") is OutboxProvider
    assert registry.load_factory("outbox") is registry.load_factory("outbox")


def test_unknown_type_lists_the_known_ones(fresh_cache: None) -> None:
    with pytest.raises(ProviderConfigError) as caught:
        registry.load_factory("carrier-pigeon")
    message = str(caught.value)
    assert "carrier-pigeon" in message
    for known in registry.available_types():
        assert known in message


def test_build_provider_makes_a_provider(tmp_path: Path, fresh_cache: None) -> None:
    provider = registry.build_provider(
        "dev", "outbox", {"type": "outbox", "path": "var/o.jsonl"}, base_dir=tmp_path
    )
    assert isinstance(provider, Provider)
    assert isinstance(provider, OutboxProvider)
    assert provider.name == "dev"
    assert provider.path == tmp_path / "var" / "o.jsonl"


def test_build_provider_passes_option_errors_on(tmp_path: Path, fresh_cache: None) -> None:
    with pytest.raises(ProviderConfigError, match="colour"):
        registry.build_provider("dev", "outbox", {"path": "o", "colour": 1}, base_dir=tmp_path)


def test_conflicting_type_key_is_rejected(tmp_path: Path, fresh_cache: None) -> None:
    with pytest.raises(ProviderConfigError, match="'type'"):
        registry.build_provider("dev", "outbox", {"type": "twilio", "path": "o"}, base_dir=tmp_path)


def test_factory_result_must_be_a_provider(tmp_path: Path, fake_plugins: None) -> None:
    assert registry.available_types() == ["broken", "missing", "notcallable", "outbox", "twice"]
    with pytest.raises(ProviderConfigError, match="did not produce a provider"):
        registry.build_provider("x", "broken", {}, base_dir=tmp_path)


def test_plugin_load_problems_are_config_errors(fake_plugins: None) -> None:
    with pytest.raises(ProviderConfigError, match="not a callable"):
        registry.load_factory("notcallable")
    with pytest.raises(ProviderConfigError, match="failed to load"):
        registry.load_factory("missing")
    with pytest.raises(ProviderConfigError, match="more than once"):
        registry.load_factory("twice")
    with pytest.raises(ProviderConfigError, match="known: broken, missing"):
        registry.load_factory("nope")
