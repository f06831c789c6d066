"""The pure parts of the /review page: sealed sessions (every way a cookie is
refused), the CSRF token check, language choice, the SVG chart."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from config.settings import SettingsError, settings_from_mapping
from gateway.review.chart import Bar, Series, nice_ceiling, stacked_bars
from gateway.review.csrf import token_ok
from gateway.review.i18n import Labels, from_accept_language
from gateway.review.sessions import LIFETIME_SECONDS, SessionCodec
from tests.conftest import base_config

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def codec(idle: int = 900, key: bytes | None = None) -> SessionCodec:
    return SessionCodec(key or secrets.token_bytes(32), idle)


def test_a_sealed_session_opens_and_hides_its_content() -> None:
    c = codec()
    session = c.new("张审核", NOW)
    token = c.seal(session)
    assert c.open(token, NOW + timedelta(seconds=10)) == session
    assert "张审核" not in token and session.csrf not in token
    assert c.seal(session) != token  # a fresh nonce every time
    assert "张" not in repr(session) and session.csrf not in repr(session)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # tampered
        lambda t: "s2" + t[2:],  # unknown version
        lambda t: t.split(".")[0] + ".",  # no body
        lambda t: "s1.!!!",  # not base64
        lambda t: "s1." + base64.urlsafe_b64encode(b"short").decode(),  # too short
        lambda t: t + "A" * 2000,  # too long
        lambda t: "",
    ],
)
def test_a_damaged_cookie_is_refused(mangle: Callable[[str], str]) -> None:
    c = codec()
    token = c.seal(c.new("alice", NOW))
    assert c.open(mangle(token), NOW) is None


def test_a_cookie_sealed_under_another_key_is_refused() -> None:
    token = codec().seal(codec().new("alice", NOW))
    assert codec().open(token, NOW) is None
    assert codec().open(None, NOW) is None


def test_idle_timeout_lifetime_and_clock_skew() -> None:
    c = codec(idle=900)
    session = c.new("alice", NOW)
    token = c.seal(session)
    assert c.open(token, NOW + timedelta(seconds=900)) is not None
    assert c.open(token, NOW + timedelta(seconds=901)) is None
    # kept busy, a session still ends 12 hours after sign-in
    late = NOW + timedelta(seconds=LIFETIME_SECONDS + 1)
    busy = c.seal(c.touch(session, late - timedelta(seconds=5)))
    assert c.open(busy, late - timedelta(seconds=2)) is not None
    assert c.open(busy, late) is None
    assert c.open(token, NOW - timedelta(minutes=5)) is None  # seen "in the future"


def test_csrf_token_must_match_the_session() -> None:
    c = codec()
    session = c.new("", NOW)
    assert token_ok(session, {"csrf": session.csrf})
    assert not token_ok(session, {"csrf": session.csrf + "x"})
    assert not token_ok(session, {"csrf": ""})
    assert not token_ok(session, {})
    assert not token_ok(session, {"csrf": "é" * 43})
    assert not token_ok(None, {"csrf": session.csrf})
    assert c.new("", NOW).csrf != session.csrf


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("fr-FR, zh-TW;q=0.5", "zh"),
        ("zh;q=0.2, en;q=0.9", "en"),
        ("zh;q=0, de", "en"),
        ("zh;q=abc", "en"),
        ("", "en"),
    ],
)
def test_language_from_accept_language(header: str, lang: str) -> None:
    assert from_accept_language(header) == lang


def test_labels_fall_back_to_english_then_to_the_value() -> None:
    zh, en = Labels("zh"), Labels("xx")
    assert zh("approve") == "批准并发送" and en("approve") == "Approve and send"
    assert zh.of("cat", "legal_action") == "法律行动表述"
    assert zh.of("cat", "brand_new_category") == "brand_new_category"
    assert en("summary_period", days=7) == "Messages held or blocked in the last 7 days"


def test_chart_scale_and_escaping() -> None:
    assert [nice_ceiling(v) for v in (0, 3, 10, 11, 95)] == [2, 4, 10, 20, 100]
    svg = stacked_bars(
        [Bar("2026-11-27", (3, 1)), Bar("2026-11-28", (0, 0))],
        [Series("bar-held", "<held>"), Series("bar-blocked", "blocked")],
        'chart "x"',
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<held>" not in svg and "&lt;held&gt;" in svg
    assert 'aria-label="chart &#34;x&#34;"' in svg
    assert svg.count('class="bar-held"') == 2  # one bar part and the legend
    assert "style" not in svg


def test_review_settings_are_validated(tmp_path: Path) -> None:
    ok = settings_from_mapping({**base_config(), "review": {}}, base_dir=tmp_path)
    assert ok.review.idle_timeout_seconds == 900 and ok.review.secure_cookies == "auto"
    for bad in ({"idle_timeout_seconds": 5}, {"secure_cookies": "never"}, {"other": 1}):
        with pytest.raises(SettingsError):
            settings_from_mapping({**base_config(), "review": bad}, base_dir=tmp_path)
