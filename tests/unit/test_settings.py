"""Settings: the TOML file, LENDSMS_* overrides, env:/file: secrets, masking,
and one clear SettingsError (``key: reason``) for every bad value."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any

import pytest

from config.settings import (
    Secret,
    Settings,
    SettingsError,
    key_bytes,
    load_settings,
    settings_from_mapping,
)
from tests.conftest import random_key

OUTBOX = """
[providers.outbox]
type = "outbox"
path = "var/outbox.jsonl"
"""
CATCH_ALL = """
[[routes]]
providers = ["outbox"]
"""


def keys_table(**keys: str | None) -> str:
    """A [keys] table with fresh random keys; pass ``data=None`` to leave one out."""
    values: dict[str, str | None] = {"data": random_key(), "index": random_key()}
    values["audit"] = random_key()
    values.update(keys)
    lines = [f'{name} = "{value}"' for name, value in values.items() if value is not None]
    return "[keys]\n" + "\n".join(lines) + "\n"


def write_config(folder: Path, text: str, name: str = "lendsms.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def config_text(*, keys: str | None = None, routes: str = CATCH_ALL, extra: str = "") -> str:
    return (keys if keys is not None else keys_table()) + OUTBOX + routes + extra


# ---------------------------------------------------------------- loading


def test_loads_values_from_toml_file(tmp_path: Path) -> None:
    data, index, audit = random_key(), random_key(), random_key()
    text = f"""
[server]
host = "10.1.2.3"
port = 8123

[store]
path = "db/main.db"

[audit]
dir = "/srv/lendsms-audit"
fsync = "always"

[keys]
data = "{data}"
index = "{index}"
audit = "{audit}"

[dispatch]
workers = 2

[messages.ttl]
verification_code = 120

[log]
level = "debug"

[providers.outbox]
type = "outbox"
path = "var/outbox.jsonl"

[[routes]]
match = {{ country = "CN", purpose = "overdue_notice" }}
providers = ["outbox"]

[[routes]]
providers = ["outbox"]

[templates.overdue_v1]
purpose = "overdue_notice"
text = "您的借款已逾期{{days}}天。"
codes = {{ outbox = "T1" }}
"""
    path = write_config(tmp_path, text)
    s = load_settings(path, env={})
    assert isinstance(s, Settings)
    assert s.source == path and s.base_dir == tmp_path.resolve()
    assert (s.server.host, s.server.port) == ("10.1.2.3", 8123)
    assert s.server.max_body_bytes == 65536  # a default from default.toml
    assert s.store.backend == "sqlite"
    assert s.store.path == tmp_path.resolve() / "db" / "main.db"
    assert s.audit.dir == Path("/srv/lendsms-audit") and s.audit.fsync == "always"
    assert key_bytes(s.keys.data) == base64.b64decode(data)
    assert s.keys.index.get() == index and s.keys.audit.get() == audit
    assert s.dispatch.workers == 2 and s.dispatch.max_attempts == 5
    assert s.messages.ttl["verification_code"] == 120
    assert s.messages.ttl["overdue_notice"] == 86400
    assert s.log.level == "DEBUG"
    outbox = s.providers["outbox"]
    assert outbox.type == "outbox" and outbox.options["path"] == "var/outbox.jsonl"
    assert [r.providers for r in s.routes] == [("outbox",), ("outbox",)]
    assert s.routes[0].matches(country="CN", purpose="overdue_notice", client="acme")
    assert not s.routes[0].matches(country="US", purpose="overdue_notice", client="acme")
    assert s.routes[1].matches(country="US", purpose="service", client="acme")
    assert s.templates["overdue_v1"].codes == {"outbox": "T1"}
    assert s.templates["overdue_v1"].text == "您的借款已逾期{days}天。"


def test_relative_paths_resolve_against_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "etc" / "lendsms"
    (conf / "secrets").mkdir(parents=True)
    data = random_key()
    (conf / "secrets" / "data.key").write_text(data + "\n", encoding="utf-8")
    keys = keys_table(data="file:secrets/data.key")
    write_config(conf, config_text(keys=keys, extra='[audit]\ndir = "logs/audit"\n'))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    s = load_settings("../etc/lendsms/lendsms.toml", env={})
    assert s.base_dir == conf.resolve()
    assert s.store.path == conf.resolve() / "var" / "lendsms.db"
    assert s.audit.dir == conf.resolve() / "logs" / "audit"
    assert s.keys.data.get() == data  # read from the config folder, trailing newline dropped


def test_config_path_from_env_then_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    via_env = write_config(tmp_path / "a", config_text(extra="[server]\nport = 1111\n"))
    write_config(tmp_path / "b", config_text(extra="[server]\nport = 2222\n"))
    monkeypatch.chdir(tmp_path / "b")
    assert load_settings(None, env={"LENDSMS_CONFIG": str(via_env)}).server.port == 1111
    assert load_settings(None, env={}).server.port == 2222  # ./lendsms.toml
    explicit = tmp_path / "b" / "lendsms.toml"
    assert load_settings(explicit, env={"LENDSMS_CONFIG": str(via_env)}).server.port == 2222


# ------------------------------------------------------ environment overrides


def test_env_overrides_store_path_and_port(tmp_path: Path) -> None:
    path = write_config(tmp_path, config_text(extra="[server]\nport = 8080\n"))
    db = tmp_path / "elsewhere" / "other.db"
    s = load_settings(path, env={"LENDSMS_STORE__PATH": str(db), "LENDSMS_SERVER__PORT": "9999"})
    assert s.store.path == db
    assert s.server.port == 9999 and isinstance(s.server.port, int)
    assert load_settings(path, env={}).server.port == 8080


def test_env_override_relative_path_resolves_against_config_folder(tmp_path: Path) -> None:
    path = write_config(tmp_path / "conf", config_text())
    s = load_settings(path, env={"LENDSMS_STORE__PATH": "data/x.db"})
    assert s.store.path == (tmp_path / "conf").resolve() / "data" / "x.db"


def test_env_override_of_a_string_setting_stays_a_string(tmp_path: Path) -> None:
    """A value that happens to look like a TOML number or date is still a path."""
    path = write_config(tmp_path, config_text())
    s = load_settings(path, env={"LENDSMS_STORE__PATH": "2024", "LENDSMS_AUDIT__DIR": "2026-01-01"})
    assert s.store.path == tmp_path.resolve() / "2024"
    assert s.audit.dir == tmp_path.resolve() / "2026-01-01"


def test_env_overrides_booleans_and_provider_options(tmp_path: Path) -> None:
    path = write_config(tmp_path, config_text())
    env = {
        "LENDSMS_DISPATCH__ENABLED": "false",
        "LENDSMS_PROVIDERS__OUTBOX__PATH": "other/outbox.jsonl",
        "LENDSMS_CONFIG": "ignored-no-double-underscore",
        "OTHER__VAR": "ignored-no-prefix",
    }
    s = load_settings(path, env=env)
    assert s.dispatch.enabled is False
    assert s.providers["outbox"].options["path"] == "other/outbox.jsonl"


def test_env_overrides_do_not_write_into_the_callers_mapping(tmp_path: Path) -> None:
    raw: dict[str, Any] = {
        "keys": {"data": random_key(), "index": random_key(), "audit": random_key()},
        "server": {"port": 8080},
    }
    before = {"keys": dict(raw["keys"]), "server": dict(raw["server"])}
    fresh = random_key()
    s = settings_from_mapping(
        raw, base_dir=tmp_path, env={"LENDSMS_KEYS__DATA": fresh, "LENDSMS_SERVER__PORT": "81"}
    )
    assert s.keys.data.get() == fresh and s.server.port == 81
    assert raw == before
    assert settings_from_mapping(raw, base_dir=tmp_path).keys.data.get() == before["keys"]["data"]


# -------------------------------------------------------------------- secrets


def test_env_and_file_secrets(tmp_path: Path) -> None:
    data, audit = random_key(), random_key()
    token = "tok-" + secrets.token_hex(16)
    (tmp_path / "audit.key").write_text(audit, encoding="utf-8")
    (tmp_path / "hook.secret").write_text(f"  {token}\n", encoding="utf-8")
    keys = keys_table(data="env:LENDSMS_TEST_DATA_KEY", audit="file:audit.key")
    hook = """
[providers.hook]
type = "webhook"
url = "https://hooks.example/sms"
secret = "file:hook.secret"
api_key = "env:HOOK_API_KEY"
"""
    routes = '[[routes]]\nproviders = ["outbox", "hook"]\n'
    path = write_config(tmp_path, config_text(keys=keys, routes=routes, extra=hook))
    s = load_settings(path, env={"LENDSMS_TEST_DATA_KEY": data, "HOOK_API_KEY": "k-123456"})
    assert s.keys.data == Secret(data) and s.keys.audit.get() == audit
    options = s.providers["hook"].options
    assert isinstance(options["secret"], Secret) and options["secret"].get() == token
    assert options["api_key"].get() == "k-123456"
    assert options["url"] == "https://hooks.example/sms"


def test_secrets_never_appear_in_repr(tmp_path: Path) -> None:
    data, index, audit = random_key(), random_key(), random_key()
    inline = "inline-" + secrets.token_urlsafe(24)
    from_env = "envsecret-" + secrets.token_urlsafe(24)
    from_file = "filesecret-" + secrets.token_urlsafe(24)
    (tmp_path / "index.key").write_text(index, encoding="utf-8")
    (tmp_path / "tc.key").write_text(from_file, encoding="utf-8")
    keys = keys_table(data=data, index="file:index.key", audit="env:AUDIT_KEY")
    tencent = f"""
[providers.tc]
type = "tencent"
secret_id = "{inline}"
secret_key = "file:tc.key"
sdk_app_id = "1400000000"
region = "ap-guangzhou"

[providers.tw]
type = "twilio"
account_sid = "AC0000"
auth_token = "env:TWILIO_TOKEN"
"""
    routes = '[[routes]]\nproviders = ["tc", "tw", "outbox"]\n'
    path = write_config(tmp_path, config_text(keys=keys, routes=routes, extra=tencent))
    s = load_settings(path, env={"AUDIT_KEY": audit, "TWILIO_TOKEN": from_env})
    shown = [repr(s), str(s), repr(s.keys), str(s.keys.data), f"{s.keys.index}"]
    for provider in s.providers.values():
        shown += [repr(provider), str(provider.options), repr(dict(provider.options))]
    assert s.providers["tc"].options["sdk_app_id"] == "1400000000"  # not a secret: shown
    assert "1400000000" in repr(s)
    for text in shown:
        for value in (data, index, audit, inline, from_env, from_file):
            assert value not in text
    assert "********" in repr(s)
    # the values are there for those who ask
    assert s.providers["tc"].options["secret_key"].get() == from_file
    assert s.providers["tw"].options["auth_token"].get() == from_env


def test_errors_do_not_show_secret_values(tmp_path: Path) -> None:
    short = base64.b64encode(secrets.token_bytes(16)).decode()
    path = write_config(tmp_path, config_text(keys=keys_table(index=short)))
    with pytest.raises(SettingsError) as caught:
        load_settings(path, env={})
    assert caught.value.key == "keys.index"
    assert short not in str(caught.value)


# -------------------------------------------------------------- bad settings

SHORT_KEY = base64.b64encode(b"k" * 16).decode()
BAD_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown-section", {"extra": "[nope]\nx = 1\n"}, "nope", "unknown section"),
    ("unknown-key", {"extra": "[server]\nbogus = 1\n"}, "server.bogus", "unknown setting"),
    ("port-string", {"extra": '[server]\nport = "x"\n'}, "server.port", "must be an integer"),
    ("port-bool", {"extra": "[server]\nport = true\n"}, "server.port", "must be an integer"),
    ("port-high", {"extra": "[server]\nport = 65536\n"}, "server.port", "between 0 and 65535"),
    ("port-negative", {"extra": "[server]\nport = -1\n"}, "server.port", "between 0 and 65535"),
    ("keys-data-missing", {"keys": keys_table(data=None)}, "keys.data", "missing"),
    ("keys-not-table", {"keys": 'keys = "x"\n'}, "keys", "must be a table"),
    ("key-not-base64", {"keys": keys_table(data="not base64!")}, "keys.data", "base64"),
    ("key-wrong-length", {"keys": keys_table(audit=SHORT_KEY)}, "keys.audit", "32 bytes"),
    (
        "env-unset",
        {"keys": keys_table(data="env:LENDSMS_TEST_NEVER_SET")},
        "keys.data",
        "environment variable LENDSMS_TEST_NEVER_SET is not set",
    ),
    (
        "secret-file-missing",
        {"keys": keys_table(index="file:secrets/missing.key")},
        "keys.index",
        "cannot read secret file",
    ),
    (
        "route-unknown-provider",
        {"routes": '[[routes]]\nproviders = ["outbox", "ghost"]\n'},
        "routes[0].providers",
        "unknown provider 'ghost'",
    ),
    (
        "route-unknown-weight",
        {"routes": "[[routes]]\nweights = { outbox = 1, ghost = 2 }\n"},
        "routes[0].providers",
        "unknown provider 'ghost'",
    ),
    ("no-routes", {"routes": ""}, "routes", "at least one"),
    ("fsync", {"extra": '[audit]\nfsync = "never"\n'}, "audit.fsync", "must be batch or always"),
    (
        "redis-shards",
        {"extra": '[store]\nbackend = "redis"\nredis_shards = 0\n'},
        "store.redis_shards",
        "between 1 and 256",
    ),
    ("backend", {"extra": '[store]\nbackend = "mongo"\n'}, "store.backend", "sqlite or redis"),
    (
        "provider-type",
        {"extra": '[providers.x]\npath = "y"\n'},
        "providers.x.type",
        "missing",
    ),
    (
        "template-provider",
        {"extra": '[templates.t]\npurpose = "service"\ntext = "hi"\ncodes = { ghost = "1" }\n'},
        "templates.t.codes.ghost",
        "unknown provider",
    ),
    (
        "lease",
        {"extra": "[dispatch]\nlease_seconds = 1.0\nprovider_timeout = 5.0\n"},
        "dispatch.lease_seconds",
        "longer than provider_timeout",
    ),
]


@pytest.mark.parametrize(
    ("parts", "key", "reason"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES]
)
def test_bad_settings_fail_with_one_clear_error(
    tmp_path: Path, parts: dict[str, Any], key: str, reason: str
) -> None:
    path = write_config(tmp_path, config_text(**parts))
    with pytest.raises(SettingsError) as caught:
        load_settings(path, env={})
    err = caught.value
    assert (err.key, str(err)) == (key, f"{key}: {err.reason}")
    assert reason in err.reason
    assert "\n" not in str(err)


@pytest.mark.parametrize(
    ("env", "key", "reason"),
    [
        ({"LENDSMS_SERVER__PORT": "abc"}, "server.port", "must be an integer"),
        ({"LENDSMS_SERVER__PORT": "70000"}, "server.port", "between 0 and 65535"),
        ({"LENDSMS_STORE__REDIS_PREFIX": "a{b}"}, "store.redis_prefix", "no {, }"),
        ({"LENDSMS_NOPE__X": "1"}, "nope", "unknown section"),
        ({"LENDSMS_SERVER__NOPE": "1"}, "server.nope", "unknown setting"),
        ({"LENDSMS_SERVER__PORT__X": "1"}, "server.port.x", "non-table"),
        ({"LENDSMS_SERVER__": "1"}, "LENDSMS_SERVER__", "empty part"),
    ],
)
def test_bad_env_overrides_fail_with_one_clear_error(
    tmp_path: Path, env: dict[str, str], key: str, reason: str
) -> None:
    path = write_config(tmp_path, config_text())
    with pytest.raises(SettingsError) as caught:
        load_settings(path, env=env)
    assert caught.value.key == key
    assert reason in str(caught.value) and str(caught.value).startswith(f"{key}: ")


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[server\nport = 8080\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(path, env={})
    assert caught.value.key == str(path)
    assert str(caught.value).startswith(f"{path}: not valid TOML")
    assert "\n" not in str(caught.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "lendsms.toml"
    with pytest.raises(SettingsError) as caught:
        load_settings(path, env={})
    assert caught.value.key == str(path)
    assert "no such settings file" in caught.value.reason


def test_missing_default_file_names_lendsms_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError) as caught:
        load_settings(None, env={})
    assert caught.value.key == "lendsms.toml"
