"""Contact policy of a policy pack: ``[quiet_hours]``, ``[caps]``, ``[opt_out]``.

The pack files are shared by several stages (``config.policies`` validates
the common keys); this module reads and validates the three contact-policy
tables. A problem is one :class:`config.policies.PolicyError` line naming the
file, the key and the reason.

``[quiet_hours]``: ``start``/``end`` ("HH:MM", local time of the recipient),
``exempt`` (purposes sent at any hour), ``spread_minutes`` (messages moved to
the next window start are spread over its first minutes), ``fallback_zones``
(IANA zones for a number whose zone phonenumbers does not know).

``[[caps.rules]]``: ``id``, ``purposes`` (list), ``limit``, ``window``
(``"day"``: the calendar day in the recipient's zone; or a rolling
``"<n>m"``, ``"<n>h"``, ``"<n>d"``) and ``per`` (``["borrower", "number"]``
by default: the rule is counted for the (client, borrower) and for the
(client, number)).

``[opt_out]``: ``keywords`` (an inbound reply that is exactly one of them,
or starts with one as its first word), ``phrases`` (contained anywhere),
``start_keywords`` (lift the opt-out), ``scope`` recorded for an inbound
opt-out, ``consent_required`` (purposes blocked without a recorded consent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time
from functools import cache
from types import MappingProxyType
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.policies import PolicyError, shipped_packs
from config.settings import PURPOSES

__all__ = [
    "OPT_OUT_SCOPES",
    "SCOPE_PURPOSES",
    "CapRule",
    "ContactPack",
    "OptOutRules",
    "QuietHoursRules",
    "Window",
    "contact_pack",
    "parse_contact",
    "shipped_contact_packs",
]

# scope -> the purposes an opt-out of that scope stops (verification codes: none)
SCOPE_PURPOSES: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "all": frozenset({"repayment_reminder", "overdue_notice", "service", "marketing"}),
        "marketing": frozenset({"marketing"}),
        "collection": frozenset({"repayment_reminder", "overdue_notice"}),
    }
)
OPT_OUT_SCOPES: Final = tuple(SCOPE_PURPOSES)
SUBJECTS: Final = ("borrower", "number")
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_WINDOW = re.compile(r"([1-9]\d{0,4})([mhd])")
_UNIT = {"m": 60, "h": 3600, "d": 86400}
_RULE_ID = re.compile(r"[a-z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True)
class Window:
    """``calendar``: the recipient's calendar day; else a rolling span."""

    calendar: bool
    seconds: int  # 86400 for a calendar day (its nominal length)

    @property
    def label(self) -> str:
        if self.calendar:
            return "day"
        for unit in ("d", "h", "m"):
            if self.seconds % _UNIT[unit] == 0:
                return f"{self.seconds // _UNIT[unit]}{unit}"
        return f"{self.seconds}s"  # pragma: no cover - windows are whole minutes


@dataclass(frozen=True, slots=True)
class CapRule:
    id: str
    purposes: frozenset[str]
    limit: int
    window: Window
    per: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QuietHoursRules:
    start: time
    end: time
    exempt: frozenset[str]
    spread_seconds: int
    fallback_zones: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OptOutRules:
    keywords: frozenset[str]
    phrases: tuple[str, ...]
    start_keywords: frozenset[str]
    scope: str
    consent_required: frozenset[str]


@dataclass(frozen=True, slots=True)
class ContactPack:
    name: str
    quiet_hours: QuietHoursRules
    caps: tuple[CapRule, ...]
    opt_out: OptOutRules

    def rules_for(self, purpose: str) -> tuple[CapRule, ...]:
        return tuple(r for r in self.caps if purpose in r.purposes)


def _table(data: Mapping[str, Any], name: str, source: str) -> Mapping[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, Mapping):
        raise PolicyError(source, name, "must be a table")
    return table


def _strings(value: Any, source: str, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PolicyError(source, key, "must be a list of non-empty strings")
    return [str(v) for v in value]


def _purposes(value: Any, source: str, key: str) -> frozenset[str]:
    names = _strings(value, source, key)
    unknown = sorted(set(names) - set(PURPOSES))
    if unknown:
        raise PolicyError(source, key, f"unknown purpose {unknown[0]!r}")
    return frozenset(names)


def _clock_time(value: Any, source: str, key: str) -> time:
    match = _HHMM.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise PolicyError(source, key, 'must be "HH:MM"')
    return time(int(match[1]), int(match[2]))


def _quiet_hours(data: Mapping[str, Any], source: str) -> QuietHoursRules:
    t = _table(data, "quiet_hours", source)
    extras = sorted(set(t) - {"start", "end", "exempt", "spread_minutes", "fallback_zones"})
    if extras:
        raise PolicyError(source, f"quiet_hours.{extras[0]}", "unknown key")
    start = _clock_time(t.get("start", "08:00"), source, "quiet_hours.start")
    end = _clock_time(t.get("end", "21:00"), source, "quiet_hours.end")
    if end <= start:
        raise PolicyError(source, "quiet_hours.end", "must be later than start")
    spread = t.get("spread_minutes", 10)
    if not isinstance(spread, int) or isinstance(spread, bool) or not 0 <= spread <= 60:
        raise PolicyError(source, "quiet_hours.spread_minutes", "must be an integer 0-60")
    zones = _strings(
        t.get("fallback_zones", ["Asia/Shanghai"]), source, "quiet_hours.fallback_zones"
    )
    for zone in zones:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise PolicyError(
                source, "quiet_hours.fallback_zones", f"unknown zone {zone!r}"
            ) from None
    exempt = _purposes(
        t.get("exempt", ["verification_code", "service"]), source, "quiet_hours.exempt"
    )
    return QuietHoursRules(start, end, exempt, spread * 60, tuple(zones))


def _window(value: Any, source: str, key: str) -> Window:
    if value == "day":
        return Window(calendar=True, seconds=86400)
    match = _WINDOW.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise PolicyError(source, key, 'must be "day" or a rolling span like "1m", "1h", "7d"')
    return Window(calendar=False, seconds=int(match[1]) * _UNIT[match[2]])


def _caps(data: Mapping[str, Any], source: str) -> tuple[CapRule, ...]:
    t = _table(data, "caps", source)
    if set(t) - {"rules"}:
        raise PolicyError(source, f"caps.{sorted(set(t) - {'rules'})[0]}", "unknown key")
    raw = t.get("rules", [])
    if not isinstance(raw, list):
        raise PolicyError(source, "caps.rules", "must be an array of [[caps.rules]] tables")
    rules: list[CapRule] = []
    for i, r in enumerate(raw):
        key = f"caps.rules[{i}]"
        if not isinstance(r, Mapping):
            raise PolicyError(source, key, "must be a table")
        extras = sorted(set(r) - {"id", "purposes", "limit", "window", "per"})
        if extras:
            raise PolicyError(source, f"{key}.{extras[0]}", "unknown key")
        rule_id = r.get("id")
        if not isinstance(rule_id, str) or not _RULE_ID.fullmatch(rule_id):
            raise PolicyError(source, f"{key}.id", "must be 1-64 of a-z, 0-9, '.', '_', '-'")
        if any(x.id == rule_id for x in rules):
            raise PolicyError(source, f"{key}.id", f"duplicate rule id {rule_id!r}")
        limit = r.get("limit")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 10000:
            raise PolicyError(source, f"{key}.limit", "must be an integer 1-10000")
        per = _strings(r.get("per", list(SUBJECTS)), source, f"{key}.per")
        if not per or set(per) - set(SUBJECTS):
            raise PolicyError(source, f"{key}.per", "must list borrower and/or number")
        rules.append(
            CapRule(
                id=rule_id,
                purposes=_purposes(r.get("purposes"), source, f"{key}.purposes"),
                limit=limit,
                window=_window(r.get("window"), source, f"{key}.window"),
                per=tuple(s for s in SUBJECTS if s in per),
            )
        )
    return tuple(rules)


def _keyword(value: str) -> str:
    return " ".join(value.upper().split())


def _opt_out(data: Mapping[str, Any], source: str) -> OptOutRules:
    t = _table(data, "opt_out", source)
    known = {"keywords", "phrases", "start_keywords", "scope", "consent_required"}
    extras = sorted(set(t) - known)
    if extras:
        raise PolicyError(source, f"opt_out.{extras[0]}", "unknown key")
    scope = t.get("scope", "all")
    if scope not in OPT_OUT_SCOPES:
        raise PolicyError(source, "opt_out.scope", f"must be one of {', '.join(OPT_OUT_SCOPES)}")
    default_keywords = ["STOP", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"]
    return OptOutRules(
        keywords=frozenset(
            _keyword(k)
            for k in _strings(t.get("keywords", default_keywords), source, "opt_out.keywords")
        ),
        phrases=tuple(
            _keyword(p) for p in _strings(t.get("phrases", []), source, "opt_out.phrases")
        ),
        start_keywords=frozenset(
            _keyword(k)
            for k in _strings(t.get("start_keywords", ["START"]), source, "opt_out.start_keywords")
        ),
        scope=str(scope),
        consent_required=_purposes(
            t.get("consent_required", []), source, "opt_out.consent_required"
        ),
    )


def parse_contact(name: str, tables: Mapping[str, Any], source: str) -> ContactPack:
    """The contact policy of one pack from its (already parsed) tables."""
    return ContactPack(
        name=name,
        quiet_hours=_quiet_hours(tables, source),
        caps=_caps(tables, source),
        opt_out=_opt_out(tables, source),
    )


@cache
def shipped_contact_packs() -> Mapping[str, ContactPack]:
    """The contact policy of every shipped pack, by name (read once per process)."""
    packs = shipped_packs()
    return MappingProxyType(
        {n: parse_contact(n, p.tables, f"config/policies/{n}.toml") for n, p in packs.items()}
    )


def contact_pack(name: str) -> ContactPack:
    packs = shipped_contact_packs()
    if name not in packs:
        raise PolicyError("config/policies", name, f"no such pack (known: {', '.join(packs)})")
    return packs[name]


def purposes_under(scopes: Sequence[str]) -> frozenset[str]:
    """Every purpose an opt-out with one of ``scopes`` stops."""
    out: set[str] = set()
    for scope in scopes:
        out |= SCOPE_PURPOSES.get(scope, frozenset())
    return frozenset(out)
