"""Settings of the contact policy ([policy]) and the contact tables of the
policy packs: defaults, the shipped packs, and one clear line per mistake."""

from __future__ import annotations

from collections.abc import Callable
from datetime import time
from pathlib import Path
from typing import Any

import pytest

from config.contact import contact_pack, parse_contact, shipped_contact_packs
from config.policies import PolicyError
from config.settings import Settings, SettingsError, settings_from_mapping
from tests.conftest import base_config


def test_policy_settings_default_and_env(make_settings: Callable[..., Settings]) -> None:
    s = make_settings()
    assert s.policy.backend == "sqlite" and s.policy.path.name == "policy.db"
    env = {"LENDSMS_POLICY__BACKEND": "redis", "LENDSMS_POLICY__REDIS_PREFIX": "x:"}
    s = settings_from_mapping(base_config(), base_dir=Path("/tmp"), env=env)
    assert (s.policy.backend, s.policy.redis_prefix) == ("redis", "x:")


@pytest.mark.parametrize(
    ("policy", "key"),
    [
        ({"backend": "memcached"}, "policy.backend"),
        ({"redis_prefix": "a{b}"}, "policy.redis_prefix"),
        ({"timeout": 0}, "policy.timeout"),
        ({"timeout": "fast"}, "policy.timeout"),
        ({"colour": 1}, "policy.colour"),
    ],
)
def test_bad_policy_settings_name_the_key(
    make_settings: Callable[..., Settings], policy: dict[str, Any], key: str
) -> None:
    with pytest.raises(SettingsError) as err:
        make_settings(policy=policy)
    assert str(err.value).startswith(f"{key}: ") and "\n" not in str(err.value)


def test_shipped_packs_carry_the_issue_defaults() -> None:
    assert set(shipped_contact_packs()) == {"cn-collection", "us-fdcpa"}
    cn = contact_pack("cn-collection")
    assert (cn.quiet_hours.start, cn.quiet_hours.end) == (time(8), time(21))
    limits = {r.id: (r.limit, r.window.label, r.per) for r in cn.caps}
    assert limits == {
        "overdue_notice.day": (3, "day", ("borrower", "number")),
        "repayment_reminder.day": (2, "day", ("borrower", "number")),
        "marketing.day": (1, "day", ("borrower", "number")),
        "marketing.30d": (4, "30d", ("borrower", "number")),
        "non_exempt.day": (5, "day", ("borrower", "number")),
        "verification_code.1m": (1, "1m", ("number",)),
        "verification_code.1h": (5, "1h", ("number",)),
        "verification_code.day": (10, "day", ("number",)),
    }
    assert cn.opt_out.consent_required == {"marketing"}
    assert {"退订", "TD", "T", "N", "R", "STOP"} <= cn.opt_out.keywords
    assert "开通" in cn.opt_out.start_keywords
    us = contact_pack("us-fdcpa")
    assert {r.id: (r.limit, r.window.label) for r in us.caps} == {
        "collection.day": (1, "day"),
        "collection.7d": (5, "7d"),
    }
    assert {"STOP", "QUIT", "END", "REVOKE", "OPT OUT", "CANCEL", "UNSUBSCRIBE"} <= (
        us.opt_out.keywords
    )


def test_missing_tables_get_conservative_defaults() -> None:
    pack = parse_contact("x", {}, "x.toml")
    assert pack.quiet_hours.exempt == {"verification_code", "service"}
    assert pack.caps == () and pack.opt_out.scope == "all"


@pytest.mark.parametrize(
    ("tables", "key"),
    [
        ({"quiet_hours": {"start": "8:00"}}, "quiet_hours.start"),
        ({"quiet_hours": {"start": "21:00", "end": "08:00"}}, "quiet_hours.end"),
        ({"quiet_hours": {"exempt": ["sms"]}}, "quiet_hours.exempt"),
        ({"quiet_hours": {"fallback_zones": ["Mars/Base"]}}, "quiet_hours.fallback_zones"),
        ({"quiet_hours": {"spread_minutes": 90}}, "quiet_hours.spread_minutes"),
        ({"quiet_hours": {"colour": 1}}, "quiet_hours.colour"),
        ({"caps": {"rules": [{"id": "a", "purposes": ["marketing"], "limit": 1,
                              "window": "week"}]}}, "caps.rules[0].window"),
        ({"caps": {"rules": [{"id": "A!", "purposes": ["marketing"], "limit": 1,
                              "window": "day"}]}}, "caps.rules[0].id"),
        ({"caps": {"rules": [{"id": "a", "purposes": ["marketing"], "limit": 0,
                              "window": "day"}]}}, "caps.rules[0].limit"),
        ({"caps": {"rules": [{"id": "a", "purposes": ["marketing"], "limit": 1,
                              "window": "day", "per": ["lender"]}]}}, "caps.rules[0].per"),
        ({"caps": {"rules": [{"id": "a", "purposes": ["marketing"], "limit": 1, "window": "day"},
                             {"id": "a", "purposes": ["marketing"], "limit": 1,
                              "window": "day"}]}}, "caps.rules[1].id"),
        ({"opt_out": {"scope": "sometimes"}}, "opt_out.scope"),
        ({"opt_out": {"keywords": "STOP"}}, "opt_out.keywords"),
    ],
)  # fmt: skip
def test_pack_mistakes_are_one_line_naming_the_key(tables: dict[str, Any], key: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_contact("x", tables, "x.toml")
    assert err.value.key == key and "\n" not in str(err.value)
