"""Settings: one TOML file plus ``LENDSMS_*`` environment overrides.

Loaded once at start, validated, frozen. A bad value fails with one
:class:`SettingsError` line naming the key and the reason. Secret values may be
written as ``"env:NAME"`` or ``"file:PATH"``; they are held as :class:`Secret`,
whose ``repr`` never shows the value.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

PURPOSES = (
    "verification_code",
    "repayment_reminder",
    "overdue_notice",
    "service",
    "marketing",
)
# Policy packs a client may choose (`clients add --policy`); the packs' rules
# themselves arrive with the content- and contact-policy stages.
POLICY_PACKS = ("cn-collection", "us-fdcpa")
# What a template may declare about itself (``[templates.ID] attests``); the
# content policy allows wording that only an attested template may carry
# (compliance.md §3: legal action, court listing, visits, fees); ``time_barred``
# declares the debt past the limitations period: legal-action wording blocks
# (Reg F §1006.26(b)).
ATTESTATIONS = (
    "legal_action_authorized",
    "court_listed",
    "visit_consented",
    "fee_contractual",
    "time_barred",
)
ENV_PREFIX = "LENDSMS_"
DEFAULT_CONFIG = "lendsms.toml"


class SettingsError(ValueError):
    """A settings problem, phrased as one line: ``key: reason``."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class Secret:
    """A secret value; ``repr`` and ``str`` are masked."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 64 * 1024
    shutdown_timeout: float = 10.0
    # seconds a client may take to send a whole request body (slow bodies: 408)
    body_timeout: float = 10.0
    # failed authentications one source IP may make per minute before 429
    auth_failures_per_minute: int = 20


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """``sqlite`` (one file, ``path``) or ``redis`` (``redis_url``, a secret: it
    may carry a password; keys start with ``redis_prefix`` and are spread over
    ``redis_shards`` hash tags; ``redis_cluster``: the URL names a node of a
    Redis Cluster). ``require_durable``: refuse to start on a Redis whose
    persistence could lose an acknowledged message. ``lookup_cache_seconds``:
    redis: how long a process keeps an API key or client it read (0: never);
    a revocation or client change reaches every process at once over pub/sub,
    this is the bound when that channel fails silently."""

    backend: str = "sqlite"
    path: Path = Path("var/lendsms.db")
    redis_url: Secret = field(default_factory=lambda: Secret("redis://127.0.0.1:6379/0"))
    require_durable: bool = False
    redis_prefix: str = "lendsms"
    redis_shards: int = 16
    redis_cluster: bool = False
    lookup_cache_seconds: float = 2.0


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """Where contact-policy state lives (caps, opt-outs, consents): ``sqlite``
    (its own file, ``path``) or ``redis`` (shared by replicas; keys start with
    ``redis_prefix``); ``auto`` in the file: the store's backend, and
    ``redis_url`` defaults to the store's. ``timeout``: seconds for one call
    before the request fails closed with 503."""

    backend: str = "sqlite"
    path: Path = Path("var/policy.db")
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "lendsms:"
    timeout: float = 1.0


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """``checkpoint_records`` / ``checkpoint_seconds``: a signed checkpoint of
    the chain head after that many records or seconds (and at shutdown).
    ``min_retention_days``: ``audit prune`` refuses anything younger."""

    dir: Path = Path("var/audit")
    fsync: str = "batch"
    checkpoint_records: int = 1000
    checkpoint_seconds: float = 60.0
    min_retention_days: int = 1825


@dataclass(frozen=True, slots=True)
class KeySettings:
    """Secret keys. ``data`` encrypts personal fields at rest; ``index`` keys
    the blind index (HMAC of phone numbers and borrower ids); ``audit`` keys
    the audit log's hash chain and sealing."""

    data: Secret
    index: Secret
    audit: Secret


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    enabled: bool = True
    workers: int = 64
    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    poll_interval: float = 0.25
    lease_seconds: float = 60.0
    provider_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class MessageSettings:
    default_policy: str = "cn-collection"
    max_text_chars: int = 1000
    # time-to-live per purpose, seconds, counted from the scheduled send time
    ttl: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType(
            {
                "verification_code": 300,
                "repayment_reminder": 86400,
                "overdue_notice": 86400,
                "service": 86400,
                "marketing": 86400,
            }
        )
    )
    idempotency_ttl: int = 86400


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str = "INFO"


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    name: str
    type: str
    options: Mapping[str, Any]  # everything but `type`; secrets resolved to Secret


@dataclass(frozen=True, slots=True)
class RouteSettings:
    providers: tuple[str, ...]
    country: str | None = None
    purpose: str | None = None
    client: str | None = None
    weights: Mapping[str, int] | None = None

    def matches(self, *, country: str, purpose: str, client: str) -> bool:
        return (
            (self.country is None or self.country == country)
            and (self.purpose is None or self.purpose == purpose)
            and (self.client is None or self.client == client)
        )


@dataclass(frozen=True, slots=True)
class TemplateSettings:
    id: str
    purpose: str
    text: str
    codes: Mapping[str, str]
    attests: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """Client status webhooks (``callback_url``). ``allow_networks``: CIDRs exempt
    from the SSRF block on loopback, private, link-local and metadata addresses
    (tests, private deployments); ``ca_file``: extra CA certificates to trust.
    Deliveries wait in the store: ``lease_seconds`` is how long a process holds
    one it took (at least twice ``timeout``; a crashed process's deliveries are
    taken over after it), ``poll_seconds`` how often each process looks for due
    ones that other processes queued."""

    allow_networks: tuple[str, ...] = ()
    ca_file: Path | None = None
    timeout: float = 5.0
    max_attempts: int = 6
    backoff_base: float = 1.0
    lease_seconds: float = 30.0
    poll_seconds: float = 1.0


@dataclass(frozen=True, slots=True)
class ReviewSettings:
    """The reviewers' web page (``/review``). ``idle_timeout_seconds``: a session
    left unused that long is signed out (sessions also end 12 hours after sign-in);
    ``secure_cookies``: ``auto`` (Secure when the request came over TLS) or
    ``always`` (behind a proxy that terminates TLS)."""

    idle_timeout_seconds: int = 900
    secure_cookies: str = "auto"


@dataclass(frozen=True, slots=True)
class BackpressureSettings:
    """When ``POST /v1/messages`` answers 503 with ``Retry-After`` instead of
    letting the dispatch queue grow without bound: more than ``max_queue_depth``
    messages in the queue (queued, scheduled, sending), or the oldest *due* one
    waiting longer than ``max_queue_age_seconds``. 0 turns a limit off. The
    accept path reads a snapshot refreshed every ``refresh_seconds``."""

    max_queue_depth: int = 100_000
    max_queue_age_seconds: float = 600.0
    refresh_seconds: float = 0.25
    retry_after_seconds: int = 5


@dataclass(frozen=True, slots=True)
class Settings:
    base_dir: Path
    keys: KeySettings
    server: ServerSettings = ServerSettings()
    store: StoreSettings = StoreSettings()
    policy: PolicySettings = PolicySettings()
    audit: AuditSettings = AuditSettings()
    dispatch: DispatchSettings = DispatchSettings()
    messages: MessageSettings = MessageSettings()
    log: LogSettings = LogSettings()
    providers: Mapping[str, ProviderSettings] = field(default_factory=dict)
    routes: tuple[RouteSettings, ...] = ()
    templates: Mapping[str, TemplateSettings] = field(default_factory=dict)
    source: Path | None = None
    webhooks: WebhookSettings = WebhookSettings()
    review: ReviewSettings = ReviewSettings()
    backpressure: BackpressureSettings = BackpressureSettings()


# --------------------------------------------------------------------- loading


def config_path(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """``--config``, else ``$LENDSMS_CONFIG``, else ``./lendsms.toml``."""
    if explicit:
        return Path(explicit)
    return Path(env.get("LENDSMS_CONFIG") or DEFAULT_CONFIG)


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read the defaults, the TOML file and the environment; validate; freeze."""
    env = os.environ if env is None else env
    file = config_path(path, env)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(
            str(file), "no such settings file (run `lendsms init` or pass --config)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(str(file), f"not valid TOML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(str(file), f"cannot read ({exc.__class__.__name__})") from None
    return settings_from_mapping(raw, base_dir=file.resolve().parent, env=env, source=file)


def settings_from_mapping(
    raw: Mapping[str, Any],
    *,
    base_dir: Path,
    env: Mapping[str, str] | None = None,
    source: Path | None = None,
) -> Settings:
    env = {} if env is None else env
    # a deep copy: environment overrides must not write into the caller's mapping
    merged = _deep_merge(_defaults(), copy.deepcopy(dict(raw)))
    _apply_env(merged, env)
    return _Builder(merged, base_dir, env).build(source)


def _defaults() -> dict[str, Any]:
    text = resources.files("config").joinpath("default.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _apply_env(tree: dict[str, Any], env: Mapping[str, str]) -> None:
    """``LENDSMS_STORE__BACKEND=redis`` sets ``store.backend``. Values are parsed
    as TOML literals when they parse (numbers, booleans, arrays), else kept as
    strings; a setting whose current value is a string always stays a string."""
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        if not all(parts):
            raise SettingsError(name, "empty part in environment override name")
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SettingsError(".".join(parts), "cannot override inside a non-table value")
            node = child
        parsed = _parse_env_value(value)
        if isinstance(node.get(parts[-1]), str) and not isinstance(parsed, str):
            # a string setting stays a string: LENDSMS_STORE__PATH=2024 or a
            # numeric secret must not turn into a number or a date
            parsed = value
        node[parts[-1]] = parsed


def _parse_env_value(value: str) -> Any:
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


_SECTION_KEYS: dict[str, frozenset[str]] = {
    "server": frozenset(
        {
            "host",
            "port",
            "max_body_bytes",
            "shutdown_timeout",
            "body_timeout",
            "auth_failures_per_minute",
        }
    ),
    "store": frozenset(
        {
            "backend",
            "path",
            "redis_url",
            "require_durable",
            "redis_prefix",
            "redis_shards",
            "redis_cluster",
            "lookup_cache_seconds",
        }
    ),
    "policy": frozenset({"backend", "path", "redis_url", "redis_prefix", "timeout"}),
    "audit": frozenset(
        {"dir", "fsync", "checkpoint_records", "checkpoint_seconds", "min_retention_days"}
    ),
    "keys": frozenset({"data", "index", "audit"}),
    "dispatch": frozenset(
        {
            "enabled",
            "workers",
            "max_attempts",
            "backoff_base",
            "backoff_max",
            "poll_interval",
            "lease_seconds",
            "provider_timeout",
        }
    ),
    "messages": frozenset({"default_policy", "max_text_chars", "ttl", "idempotency_ttl"}),
    "log": frozenset({"level"}),
    "webhooks": frozenset(
        {
            "allow_networks",
            "ca_file",
            "timeout",
            "max_attempts",
            "backoff_base",
            "lease_seconds",
            "poll_seconds",
        }
    ),
    "review": frozenset({"idle_timeout_seconds", "secure_cookies"}),
    "backpressure": frozenset(
        {"max_queue_depth", "max_queue_age_seconds", "refresh_seconds", "retry_after_seconds"}
    ),
}
_TOP_KEYS = frozenset(_SECTION_KEYS) | {"providers", "routes", "templates"}
_SECRET_OPTION_NAMES = frozenset(
    {
        "secret",
        "secret_key",
        "secret_id",
        "auth_token",
        "access_key_secret",
        "secret_access_key",
        "access_key_id",
        "account_sid",
        "callback_token",
        "password",
        "token",
        "api_key",
    }
)


class _Builder:
    def __init__(self, tree: dict[str, Any], base_dir: Path, env: Mapping[str, str]) -> None:
        self.tree = tree
        self.base_dir = base_dir
        self.env = env

    # -- typed getters -------------------------------------------------------
    def _section(self, name: str) -> dict[str, Any]:
        section = self.tree.get(name, {})
        if not isinstance(section, dict):
            raise SettingsError(name, "must be a table")
        unknown = sorted(set(section) - _SECTION_KEYS[name])
        if unknown:
            raise SettingsError(f"{name}.{unknown[0]}", "unknown setting")
        return section

    @staticmethod
    def _typed(key: str, value: Any, kind: type, default: Any) -> Any:
        if value is None:
            return default
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is int and isinstance(value, bool):
            raise SettingsError(key, "must be an integer")
        if not isinstance(value, kind):
            raise SettingsError(key, f"must be {_kind_name(kind)}, got {_kind_name(type(value))}")
        return value

    def _path(self, key: str, value: Any, default: Path) -> Path:
        if value is None:
            return default if default.is_absolute() else self.base_dir / default
        if not isinstance(value, str) or not value:
            raise SettingsError(key, "must be a non-empty path string")
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def secret(self, key: str, value: Any) -> Secret:
        if not isinstance(value, str) or not value:
            raise SettingsError(key, "must be a non-empty string (or env:NAME / file:PATH)")
        if value.startswith("env:"):
            name = value[4:]
            if name not in self.env or not self.env[name]:
                raise SettingsError(key, f"environment variable {name} is not set")
            return Secret(self.env[name])
        if value.startswith("file:"):
            path = self._path(key, value[5:], Path())
            try:
                text = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SettingsError(
                    key, f"cannot read secret file {path} ({exc.strerror})"
                ) from None
            if not text:
                raise SettingsError(key, f"secret file {path} is empty")
            return Secret(text)
        return Secret(value)

    # -- sections ------------------------------------------------------------
    def build(self, source: Path | None) -> Settings:
        unknown = sorted(set(self.tree) - _TOP_KEYS)
        if unknown:
            raise SettingsError(unknown[0], "unknown section")
        providers = self.providers()
        return Settings(
            base_dir=self.base_dir,
            keys=self.keys(),
            server=self.server(),
            store=self.store(),
            policy=self.policy(),
            audit=self.audit(),
            dispatch=self.dispatch(),
            messages=self.messages(),
            log=self.log(),
            webhooks=self.webhooks(),
            review=self.review(),
            backpressure=self.backpressure(),
            providers=providers,
            routes=self.routes(providers),
            templates=self.templates(providers),
            source=source,
        )

    def server(self) -> ServerSettings:
        s, d = self._section("server"), ServerSettings()
        port = self._typed("server.port", s.get("port"), int, d.port)
        if not 0 <= port <= 65535:
            raise SettingsError("server.port", "must be between 0 and 65535")
        limit = self._typed("server.max_body_bytes", s.get("max_body_bytes"), int, d.max_body_bytes)
        if not 1024 <= limit <= 1024 * 1024:
            raise SettingsError("server.max_body_bytes", "must be between 1024 and 1048576")
        body_timeout = self._typed(
            "server.body_timeout", s.get("body_timeout"), float, d.body_timeout
        )
        if not 0.1 <= body_timeout <= 300:
            raise SettingsError("server.body_timeout", "must be between 0.1 and 300 seconds")
        auth_failures = self._typed(
            "server.auth_failures_per_minute",
            s.get("auth_failures_per_minute"),
            int,
            d.auth_failures_per_minute,
        )
        if not 1 <= auth_failures <= 100_000:
            raise SettingsError("server.auth_failures_per_minute", "must be between 1 and 100000")
        return ServerSettings(
            host=self._typed("server.host", s.get("host"), str, d.host),
            port=port,
            max_body_bytes=limit,
            shutdown_timeout=self._typed(
                "server.shutdown_timeout", s.get("shutdown_timeout"), float, d.shutdown_timeout
            ),
            body_timeout=body_timeout,
            auth_failures_per_minute=auth_failures,
        )

    def store(self) -> StoreSettings:
        s, d = self._section("store"), StoreSettings()
        backend = self._typed("store.backend", s.get("backend"), str, d.backend)
        if backend not in ("sqlite", "redis"):
            raise SettingsError("store.backend", f"must be sqlite or redis, got {backend!r}")
        prefix = self._typed("store.redis_prefix", s.get("redis_prefix"), str, d.redis_prefix)
        if not 1 <= len(prefix) <= 64 or set(prefix) & set("{} "):
            raise SettingsError("store.redis_prefix", "must be 1-64 characters, no {, } or space")
        shards = self._typed("store.redis_shards", s.get("redis_shards"), int, d.redis_shards)
        if not 1 <= shards <= 256:
            raise SettingsError("store.redis_shards", "must be between 1 and 256")
        url = s.get("redis_url")
        return StoreSettings(
            backend=backend,
            path=self._path("store.path", s.get("path"), d.path),
            redis_url=d.redis_url if url is None else self.secret("store.redis_url", url),
            require_durable=self._typed(
                "store.require_durable", s.get("require_durable"), bool, d.require_durable
            ),
            redis_prefix=prefix,
            redis_shards=shards,
            redis_cluster=self._typed(
                "store.redis_cluster", s.get("redis_cluster"), bool, d.redis_cluster
            ),
            lookup_cache_seconds=self._lookup_cache_seconds(s, d),
        )

    def _lookup_cache_seconds(self, s: dict[str, Any], d: StoreSettings) -> float:
        key = "store.lookup_cache_seconds"
        value = self._typed(key, s.get("lookup_cache_seconds"), float, d.lookup_cache_seconds)
        if not 0 <= value <= 60:
            raise SettingsError(key, "must be between 0 and 60 seconds")
        return float(value)

    def policy(self) -> PolicySettings:
        s, d = self._section("policy"), PolicySettings()
        backend = self._typed("policy.backend", s.get("backend"), str, d.backend)
        if backend not in ("sqlite", "redis", "auto"):
            raise SettingsError("policy.backend", f"must be sqlite, redis or auto, got {backend!r}")
        store = self.store()
        if backend == "auto":  # the store's backend (redis: the store's server)
            backend = store.backend
        prefix = self._typed("policy.redis_prefix", s.get("redis_prefix"), str, d.redis_prefix)
        if not 1 <= len(prefix) <= 64 or set(prefix) & set("{} "):
            raise SettingsError("policy.redis_prefix", "must be 1-64 characters, no {, } or space")
        timeout = self._typed("policy.timeout", s.get("timeout"), float, d.timeout)
        if not 0 < timeout <= 30:
            raise SettingsError("policy.timeout", "must be between 0 and 30 seconds")
        return PolicySettings(
            backend=backend,
            path=self._path("policy.path", s.get("path"), d.path),
            redis_url=self._typed(
                "policy.redis_url", s.get("redis_url"), str, store.redis_url.get()
            ),
            redis_prefix=prefix,
            timeout=timeout,
        )

    def audit(self) -> AuditSettings:
        s, d = self._section("audit"), AuditSettings()
        fsync = self._typed("audit.fsync", s.get("fsync"), str, d.fsync)
        if fsync not in ("batch", "always"):
            raise SettingsError("audit.fsync", f"must be batch or always, got {fsync!r}")
        records = self._typed(
            "audit.checkpoint_records", s.get("checkpoint_records"), int, d.checkpoint_records
        )
        seconds = self._typed(
            "audit.checkpoint_seconds", s.get("checkpoint_seconds"), float, d.checkpoint_seconds
        )
        retention = self._typed(
            "audit.min_retention_days", s.get("min_retention_days"), int, d.min_retention_days
        )
        if records < 1:
            raise SettingsError("audit.checkpoint_records", "must be at least 1")
        if seconds <= 0:
            raise SettingsError("audit.checkpoint_seconds", "must be positive")
        if retention < 0:
            raise SettingsError("audit.min_retention_days", "must not be negative")
        return AuditSettings(
            dir=self._path("audit.dir", s.get("dir"), d.dir),
            fsync=fsync,
            checkpoint_records=records,
            checkpoint_seconds=seconds,
            min_retention_days=retention,
        )

    def keys(self) -> KeySettings:
        s = self._section("keys")
        out: dict[str, Secret] = {}
        for name in ("data", "index", "audit"):
            if name not in s:
                raise SettingsError(f"keys.{name}", "missing (run `lendsms init` to generate keys)")
            secret = self.secret(f"keys.{name}", s[name])
            if len(_decode_key(f"keys.{name}", secret)) != 32:
                raise SettingsError(f"keys.{name}", "must be 32 bytes, base64-encoded")
            out[name] = secret
        return KeySettings(**out)

    def dispatch(self) -> DispatchSettings:
        s, d = self._section("dispatch"), DispatchSettings()
        out = DispatchSettings(
            enabled=self._typed("dispatch.enabled", s.get("enabled"), bool, d.enabled),
            workers=self._typed("dispatch.workers", s.get("workers"), int, d.workers),
            max_attempts=self._typed(
                "dispatch.max_attempts", s.get("max_attempts"), int, d.max_attempts
            ),
            backoff_base=self._typed(
                "dispatch.backoff_base", s.get("backoff_base"), float, d.backoff_base
            ),
            backoff_max=self._typed(
                "dispatch.backoff_max", s.get("backoff_max"), float, d.backoff_max
            ),
            poll_interval=self._typed(
                "dispatch.poll_interval", s.get("poll_interval"), float, d.poll_interval
            ),
            lease_seconds=self._typed(
                "dispatch.lease_seconds", s.get("lease_seconds"), float, d.lease_seconds
            ),
            provider_timeout=self._typed(
                "dispatch.provider_timeout", s.get("provider_timeout"), float, d.provider_timeout
            ),
        )
        if not 1 <= out.workers <= 256:
            raise SettingsError("dispatch.workers", "must be between 1 and 256")
        if out.max_attempts < 1:
            raise SettingsError("dispatch.max_attempts", "must be at least 1")
        for name in ("backoff_base", "backoff_max", "poll_interval", "provider_timeout"):
            if getattr(out, name) <= 0:
                raise SettingsError(f"dispatch.{name}", "must be positive")
        if out.lease_seconds <= out.provider_timeout:
            raise SettingsError("dispatch.lease_seconds", "must be longer than provider_timeout")
        return out

    def messages(self) -> MessageSettings:
        s, d = self._section("messages"), MessageSettings()
        ttl_raw = s.get("ttl", {})
        if not isinstance(ttl_raw, dict):
            raise SettingsError("messages.ttl", "must be a table of purpose = seconds")
        ttl = dict(d.ttl)
        for purpose, seconds in ttl_raw.items():
            if purpose not in PURPOSES:
                raise SettingsError(f"messages.ttl.{purpose}", "unknown purpose")
            ttl[purpose] = self._typed(f"messages.ttl.{purpose}", seconds, int, None)
            if ttl[purpose] <= 0:
                raise SettingsError(f"messages.ttl.{purpose}", "must be positive")
        max_chars = self._typed(
            "messages.max_text_chars", s.get("max_text_chars"), int, d.max_text_chars
        )
        if not 1 <= max_chars <= 5000:
            raise SettingsError("messages.max_text_chars", "must be between 1 and 5000")
        policy = self._typed(
            "messages.default_policy", s.get("default_policy"), str, d.default_policy
        )
        if policy not in POLICY_PACKS:
            raise SettingsError(
                "messages.default_policy", f"must be one of {', '.join(POLICY_PACKS)}"
            )
        return MessageSettings(
            default_policy=policy,
            max_text_chars=max_chars,
            ttl=MappingProxyType(ttl),
            idempotency_ttl=self._typed(
                "messages.idempotency_ttl", s.get("idempotency_ttl"), int, d.idempotency_ttl
            ),
        )

    def webhooks(self) -> WebhookSettings:
        s, d = self._section("webhooks"), WebhookSettings()
        nets = s.get("allow_networks", [])
        if not isinstance(nets, list) or not all(isinstance(n, str) for n in nets):
            raise SettingsError("webhooks.allow_networks", "must be a list of CIDR strings")
        try:
            for net in nets:
                ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise SettingsError("webhooks.allow_networks", "not a valid network") from None
        timeout = self._typed("webhooks.timeout", s.get("timeout"), float, d.timeout)
        out = WebhookSettings(
            allow_networks=tuple(nets),
            ca_file=self._path("webhooks.ca_file", s["ca_file"], Path())
            if s.get("ca_file")
            else None,
            timeout=timeout,
            max_attempts=self._typed(
                "webhooks.max_attempts", s.get("max_attempts"), int, d.max_attempts
            ),
            backoff_base=self._typed(
                "webhooks.backoff_base", s.get("backoff_base"), float, d.backoff_base
            ),
            lease_seconds=self._typed(  # by default long enough for a slow timeout
                "webhooks.lease_seconds",
                s.get("lease_seconds"),
                float,
                max(d.lease_seconds, 2 * timeout),
            ),
            poll_seconds=self._typed(
                "webhooks.poll_seconds", s.get("poll_seconds"), float, d.poll_seconds
            ),
        )
        if not 0 < out.timeout <= 60 or not 1 <= out.max_attempts <= 20 or out.backoff_base <= 0:
            raise SettingsError("webhooks", "timeout 0-60 s, max_attempts 1-20, backoff positive")
        if out.lease_seconds < 2 * out.timeout or not 0 < out.poll_seconds <= 60:
            raise SettingsError(
                "webhooks", "lease_seconds at least twice timeout, poll_seconds 0-60 s"
            )
        return out

    def review(self) -> ReviewSettings:
        s, d = self._section("review"), ReviewSettings()
        idle = self._typed(
            "review.idle_timeout_seconds",
            s.get("idle_timeout_seconds"),
            int,
            d.idle_timeout_seconds,
        )
        if not 60 <= idle <= 43200:
            raise SettingsError("review.idle_timeout_seconds", "must be between 60 and 43200")
        secure = self._typed(
            "review.secure_cookies", s.get("secure_cookies"), str, d.secure_cookies
        )
        if secure not in ("auto", "always"):
            raise SettingsError("review.secure_cookies", f"must be auto or always, got {secure!r}")
        return ReviewSettings(idle_timeout_seconds=idle, secure_cookies=secure)

    def backpressure(self) -> BackpressureSettings:
        s, d = self._section("backpressure"), BackpressureSettings()
        out = BackpressureSettings(
            max_queue_depth=self._typed(
                "backpressure.max_queue_depth", s.get("max_queue_depth"), int, d.max_queue_depth
            ),
            max_queue_age_seconds=self._typed(
                "backpressure.max_queue_age_seconds",
                s.get("max_queue_age_seconds"),
                float,
                d.max_queue_age_seconds,
            ),
            refresh_seconds=self._typed(
                "backpressure.refresh_seconds", s.get("refresh_seconds"), float, d.refresh_seconds
            ),
            retry_after_seconds=self._typed(
                "backpressure.retry_after_seconds",
                s.get("retry_after_seconds"),
                int,
                d.retry_after_seconds,
            ),
        )
        if out.max_queue_depth < 0 or out.max_queue_age_seconds < 0:
            raise SettingsError("backpressure", "limits must not be negative (0 turns one off)")
        if not 0.01 <= out.refresh_seconds <= 60:
            raise SettingsError("backpressure.refresh_seconds", "must be between 0.01 and 60")
        if not 1 <= out.retry_after_seconds <= 3600:
            raise SettingsError("backpressure.retry_after_seconds", "must be between 1 and 3600")
        return out

    def log(self) -> LogSettings:
        s, d = self._section("log"), LogSettings()
        level = self._typed("log.level", s.get("level"), str, d.level).upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError("log.level", "must be DEBUG, INFO, WARNING or ERROR")
        return LogSettings(level=level)

    def providers(self) -> Mapping[str, ProviderSettings]:
        raw = self.tree.get("providers", {})
        if not isinstance(raw, dict):
            raise SettingsError("providers", "must be a table of [providers.NAME] tables")
        out: dict[str, ProviderSettings] = {}
        for name, table in raw.items():
            key = f"providers.{name}"
            if not _is_name(name):
                raise SettingsError(key, "name must be 1-64 of a-z, 0-9, _ and -")
            if not isinstance(table, dict):
                raise SettingsError(key, "must be a table")
            kind = table.get("type")
            if not isinstance(kind, str) or not kind:
                raise SettingsError(f"{key}.type", "missing (the adapter to use, e.g. outbox)")
            options: dict[str, Any] = {}
            for opt, value in table.items():
                if opt == "type":
                    continue
                if opt in _SECRET_OPTION_NAMES or (
                    isinstance(value, str) and value.startswith(("env:", "file:"))
                ):
                    options[opt] = self.secret(f"{key}.{opt}", value)
                else:
                    options[opt] = value
            out[name] = ProviderSettings(name=name, type=kind, options=MappingProxyType(options))
        return MappingProxyType(out)

    def routes(self, providers: Mapping[str, ProviderSettings]) -> tuple[RouteSettings, ...]:
        raw = self.tree.get("routes", [])
        if not isinstance(raw, list):
            raise SettingsError("routes", "must be an array of [[routes]] tables")
        out = []
        for i, table in enumerate(raw):
            key = f"routes[{i}]"
            if not isinstance(table, dict):
                raise SettingsError(key, "must be a table")
            unknown = sorted(set(table) - {"match", "providers", "weights"})
            if unknown:
                raise SettingsError(f"{key}.{unknown[0]}", "unknown setting")
            match = table.get("match", {})
            if not isinstance(match, dict) or set(match) - {"country", "purpose", "client"}:
                raise SettingsError(f"{key}.match", "may only hold country, purpose and client")
            for mk, mv in match.items():
                if not isinstance(mv, str) or not mv:
                    raise SettingsError(f"{key}.match.{mk}", "must be a non-empty string")
            if match.get("purpose") not in (None, *PURPOSES):
                raise SettingsError(f"{key}.match.purpose", "unknown purpose")
            weights = table.get("weights")
            names: list[str]
            if weights is not None:
                if not isinstance(weights, dict) or not weights:
                    raise SettingsError(f"{key}.weights", "must be a table of provider = weight")
                for wn, wv in weights.items():
                    if not isinstance(wv, int) or isinstance(wv, bool) or wv <= 0:
                        raise SettingsError(f"{key}.weights.{wn}", "must be a positive integer")
                names = list(weights)
            else:
                plist = table.get("providers")
                if not isinstance(plist, list) or not plist:
                    raise SettingsError(f"{key}.providers", "must be a non-empty list of names")
                names = plist
            for pname in names:
                if not isinstance(pname, str) or pname not in providers:
                    raise SettingsError(f"{key}.providers", f"unknown provider {pname!r}")
            out.append(
                RouteSettings(
                    providers=tuple(names),
                    country=match.get("country"),
                    purpose=match.get("purpose"),
                    client=match.get("client"),
                    weights=MappingProxyType(dict(weights)) if weights else None,
                )
            )
        if providers and not out:
            raise SettingsError("routes", "at least one [[routes]] table is needed")
        return tuple(out)

    def templates(
        self, providers: Mapping[str, ProviderSettings]
    ) -> Mapping[str, TemplateSettings]:
        raw = self.tree.get("templates", {})
        if not isinstance(raw, dict):
            raise SettingsError("templates", "must be a table of [templates.ID] tables")
        out: dict[str, TemplateSettings] = {}
        for tid, table in raw.items():
            key = f"templates.{tid}"
            if not isinstance(table, dict):
                raise SettingsError(key, "must be a table")
            purpose = table.get("purpose")
            if purpose not in PURPOSES:
                raise SettingsError(f"{key}.purpose", "missing or unknown purpose")
            text = table.get("text")
            if not isinstance(text, str) or not text:
                raise SettingsError(f"{key}.text", "missing")
            codes = table.get("codes", {})
            if not isinstance(codes, dict) or not all(isinstance(v, str) for v in codes.values()):
                raise SettingsError(f"{key}.codes", "must be a table of provider = code")
            for pname in codes:
                if pname not in providers:
                    raise SettingsError(f"{key}.codes.{pname}", "unknown provider")
            attests = table.get("attests", [])
            if not isinstance(attests, list) or not set(attests) <= set(ATTESTATIONS):
                raise SettingsError(
                    f"{key}.attests", f"must be a list of: {', '.join(ATTESTATIONS)}"
                )
            out[tid] = TemplateSettings(
                id=tid,
                purpose=purpose,
                text=text,
                codes=MappingProxyType(dict(codes)),
                attests=frozenset(attests),
            )
        return MappingProxyType(out)


def _is_name(name: str) -> bool:
    return 1 <= len(name) <= 64 and all(c.isascii() and (c.isalnum() or c in "_-") for c in name)


def _kind_name(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        kind, kind.__name__
    )


def _decode_key(key: str, secret: Secret) -> bytes:
    import base64
    import binascii

    try:
        return base64.b64decode(secret.get(), validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError(key, "must be base64") from None


def key_bytes(secret: Secret) -> bytes:
    """The raw bytes of a base64 key from [keys]."""
    return _decode_key("keys", secret)
