"""Settings schema and loader, and the data lendsms ships (default.toml, policy packs)."""

from config.settings import (
    PURPOSES,
    ProviderSettings,
    RouteSettings,
    Secret,
    Settings,
    SettingsError,
    TemplateSettings,
    load_settings,
    settings_from_mapping,
)

__all__ = [
    "PURPOSES",
    "ProviderSettings",
    "RouteSettings",
    "Secret",
    "Settings",
    "SettingsError",
    "TemplateSettings",
    "load_settings",
    "settings_from_mapping",
]
