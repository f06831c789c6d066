"""Policy packs: ``config/policies/<name>.toml``, loaded and validated.

A pack is shared by several stages, each reading its own tables; this module
validates the keys every pack has (``name``, ``language``) and the ``[pii]``
tables, and keeps every other top-level table, unread, in
:attr:`PolicyPack.tables` for the stages that own them.

``[pii.<entity>]``: ``action`` is ``"mask"`` or ``"block"``; ``mask`` is one
format string, or a table with a ``zh`` and/or ``en`` format (chosen by the
script of the message). An entity or a format the pack leaves out gets the
default below, so a pack can never switch masking off by omission. A problem
is one :class:`PolicyError` line naming the file, the key and the reason.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

__all__ = [
    "DEFAULT_MASKS",
    "PII_ACTIONS",
    "PII_ENTITIES",
    "PiiRule",
    "PolicyError",
    "PolicyPack",
    "default_rule",
    "load_pack",
    "load_pack_file",
    "parse_pack",
    "shipped_packs",
]

# Entity -> the placeholders its mask format may use.
PII_ENTITIES: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "cn_id": frozenset({"last4", "stars"}),
        "bank_card": frozenset({"last4", "stars"}),
        "mobile": frozenset({"first3", "last4", "stars"}),
        "email": frozenset({"first", "domain"}),
        "us_ssn": frozenset({"last4", "stars"}),
        "passport": frozenset({"last4", "stars"}),
        "person_name": frozenset({"surname"}),
    }
)
PII_ACTIONS: Final = ("mask", "block")
SCRIPTS: Final = ("zh", "en")
LANGUAGES: Final = ("zh", "en")

# Entity -> script -> format (compliance.md §4.2).
DEFAULT_MASKS: Final[Mapping[str, Mapping[str, str]]] = MappingProxyType(
    {
        "cn_id": MappingProxyType({"zh": "{stars}{last4}", "en": "{stars}{last4}"}),
        "bank_card": MappingProxyType({"zh": "尾号{last4}", "en": "ending {last4}"}),
        "mobile": MappingProxyType({"zh": "{first3}****{last4}", "en": "{first3}****{last4}"}),
        "email": MappingProxyType({"zh": "{first}***@{domain}", "en": "{first}***@{domain}"}),
        "us_ssn": MappingProxyType({"zh": "***-**-{last4}", "en": "***-**-{last4}"}),
        "passport": MappingProxyType({"zh": "{stars}{last4}", "en": "{stars}{last4}"}),
        "person_name": MappingProxyType({"zh": "{surname}*", "en": "{surname}*"}),
    }
)
_RULE_KEYS: Final = frozenset({"action", "mask"})


class PolicyError(ValueError):
    """A policy-pack problem, phrased as one line: ``source: key: reason``."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        super().__init__(f"{source}: {key}: {reason}")
        self.source = source
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PiiRule:
    entity: str
    action: str  # "mask" | "block"
    masks: Mapping[str, str]  # script ("zh" | "en") -> format

    def mask_format(self, script: str) -> str:
        return self.masks[script]


@dataclass(frozen=True, slots=True)
class PolicyPack:
    name: str
    language: str
    pii: Mapping[str, PiiRule]  # one rule for every entity of PII_ENTITIES
    tables: Mapping[str, Any]  # the other top-level keys, for the stages that own them


def default_rule(entity: str) -> PiiRule:
    return PiiRule(entity, "mask", DEFAULT_MASKS[entity])


def parse_pack(data: Mapping[str, Any], source: str) -> PolicyPack:
    """Validate a parsed pack; ``source`` names it in error messages."""
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise PolicyError(source, "name", "is required (a non-empty string)")
    language = data.get("language")
    if language not in LANGUAGES:
        raise PolicyError(source, "language", f"must be one of {', '.join(LANGUAGES)}")
    raw_pii = data.get("pii", {})
    if not isinstance(raw_pii, Mapping):
        raise PolicyError(source, "pii", "must be a table of [pii.<entity>] tables")
    for entity in raw_pii:
        if entity not in PII_ENTITIES:
            known = ", ".join(PII_ENTITIES)
            raise PolicyError(source, f"pii.{entity}", f"unknown entity (known: {known})")
    pii = {
        entity: _rule(entity, raw_pii[entity], source)
        if entity in raw_pii
        else default_rule(entity)
        for entity in PII_ENTITIES
    }
    tables = {k: v for k, v in data.items() if k not in ("name", "language", "pii")}
    return PolicyPack(
        name=name,
        language=str(language),
        pii=MappingProxyType(pii),
        tables=MappingProxyType(tables),
    )


def _rule(entity: str, raw: Any, source: str) -> PiiRule:
    key = f"pii.{entity}"
    if not isinstance(raw, Mapping):
        raise PolicyError(source, key, "must be a table")
    extras = sorted(set(raw) - _RULE_KEYS)
    if extras:
        raise PolicyError(source, f"{key}.{extras[0]}", "unknown key (known: action, mask)")
    action = raw.get("action")
    if action not in PII_ACTIONS:
        raise PolicyError(source, f"{key}.action", "must be mask or block")
    masks = dict(DEFAULT_MASKS[entity])
    mask = raw.get("mask")
    if isinstance(mask, str):
        masks = dict.fromkeys(SCRIPTS, _format(entity, mask, source, f"{key}.mask"))
    elif isinstance(mask, Mapping):
        for script, fmt in mask.items():
            where = f"{key}.mask.{script}"
            if script not in SCRIPTS:
                raise PolicyError(source, where, f"unknown script (known: {', '.join(SCRIPTS)})")
            if not isinstance(fmt, str):
                raise PolicyError(source, where, "must be a string")
            masks[script] = _format(entity, fmt, source, where)
    elif mask is not None:
        raise PolicyError(source, f"{key}.mask", "must be a string or a table of zh/en strings")
    return PiiRule(entity, str(action), MappingProxyType(masks))


def _format(entity: str, fmt: str, source: str, key: str) -> str:
    allowed = PII_ENTITIES[entity]
    try:
        parts = list(string.Formatter().parse(fmt))
    except ValueError as exc:
        raise PolicyError(source, key, f"is not a valid format ({exc})") from None
    for _literal, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in allowed or spec or conversion:
            raise PolicyError(
                source,
                key,
                f"placeholder {{{field}}} is not allowed here "
                f"(allowed: {', '.join('{' + a + '}' for a in sorted(allowed))})",
            )
    if not fmt.strip():
        raise PolicyError(source, key, "must not be empty")
    return fmt


def load_pack_file(path: Path) -> PolicyPack:
    """Load one pack file; its ``name`` must match the file name."""
    source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(source, "file", f"cannot be read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(source, "file", f"is not valid TOML ({exc})") from None
    pack = parse_pack(data, source)
    if pack.name != path.stem:
        raise PolicyError(source, "name", f"must match the file name ({path.stem})")
    return pack


def load_pack(name: str) -> PolicyPack:
    """A pack shipped with lendsms (``config/policies/<name>.toml``)."""
    packs = shipped_packs()
    if name not in packs:
        raise PolicyError("config/policies", name, f"no such pack (known: {', '.join(packs)})")
    return packs[name]


@cache
def shipped_packs() -> Mapping[str, PolicyPack]:
    """Every pack shipped with lendsms, by name (read once per process)."""
    folder = resources.files("config") / "policies"
    packs: dict[str, PolicyPack] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            with resources.as_file(entry) as path:
                pack = load_pack_file(Path(path))
            packs[pack.name] = pack
    return MappingProxyType(packs)
