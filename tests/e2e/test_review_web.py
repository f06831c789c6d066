"""The reviewers' web page (/review) through the real app, without a browser:
sign-in, cookie flags, idle timeout, sign-out everywhere (a copied cookie is
dead, on SQLite and on Redis), CSRF refusals, security headers, client
scoping, reveal, language switching (issue 8, acceptance 3)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse

from gateway.appkeys import STORE
from gateway.clock import FakeClock
from gateway.review.passwords import hash_password
from gateway.review.sessions import COOKIE, Session, revoked
from gateway.review.web_base import CSP
from gateway.store.review import Reviewer
from tests.conftest import CN_MOBILE, Gateway, auth
from tests.e2e.test_operations import BLOCKED, HELD
from tests.e2e.test_redis_store_e2e import on_redis, redis_prefix  # noqa: F401 (a fixture)

PASSWORD = "correct horse battery staple"
_PASSWORD_HASH = hash_password(PASSWORD)  # scrypt is slow: hash once per run
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
Start = Callable[..., Awaitable[Gateway]]


async def add_reviewer(
    gw: Gateway, name: str = "alice", *, clients: tuple[str, ...] = (), can_reveal: bool = False
) -> None:
    reviewer = Reviewer(name, can_reveal, clients, datetime.now(UTC))
    await gw.app[STORE].put_reviewer(reviewer, _PASSWORD_HASH, create=True)


async def csrf_of(gw: Gateway, path: str) -> str:
    resp = await gw.http.get(path)
    found = _CSRF.search(await resp.text())
    assert found is not None, f"no CSRF field on {path}"
    return found.group(1)


async def sign_in(gw: Gateway, name: str = "alice", password: str = PASSWORD) -> ClientResponse:
    token = await csrf_of(gw, "/review/login")
    return await gw.http.post(
        "/review/login",
        data={"csrf": token, "name": name, "password": password},
        allow_redirects=False,
    )


async def submit(gw: Gateway, token: str, text: str = HELD, **over: Any) -> str:
    body = {"to": CN_MOBILE, "borrower_id": "B-1", "purpose": "overdue_notice", "text": text}
    body.update(over)
    resp = await gw.http.post("/v1/messages", json=body, headers=auth(token))
    data = await resp.json()
    assert resp.status in (202, 422), data
    return str(data["id"])


async def status_of(gw: Gateway, token: str, message_id: str) -> str:
    resp = await gw.http.get(f"/v1/messages/{message_id}", headers=auth(token))
    return str((await resp.json())["status"])


def set_cookie_header(resp: ClientResponse) -> str:
    found = [v for v in resp.headers.getall("Set-Cookie", []) if v.startswith(COOKIE + "=")]
    assert found, "no session cookie was set"
    return found[-1]


@pytest.fixture
async def gw(start_gateway: Start) -> Gateway:
    return await start_gateway(dispatch=False)


# ---------------------------------------------------------------- sign-in


async def test_sign_in_then_queue_shows_held_message_highlighted(gw: Gateway) -> None:
    token = await gw.key()
    held = await submit(gw, token)
    await add_reviewer(gw)
    resp = await sign_in(gw)
    assert resp.status == 303 and resp.headers["Location"] == "/review"
    page = await gw.http.get("/review")
    html = await page.text()
    assert page.status == 200
    assert held in html
    assert '<mark class="f-hold"' in html and "legal_action" in html
    assert CN_MOBILE not in html and "13812345678" not in html
    assert page.headers["Content-Security-Policy"] == CSP
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert "<script>" not in html and "style=" not in html  # nothing inline for the CSP


async def test_wrong_password_and_unknown_name_get_the_same_answer(gw: Gateway) -> None:
    await add_reviewer(gw)
    wrong = await sign_in(gw, password="not the password at all")
    unknown = await sign_in(gw, name="mallory")
    assert wrong.status == unknown.status == 401
    assert "The name or the password is wrong." in await wrong.text()
    assert "The name or the password is wrong." in await unknown.text()
    queue = await gw.http.get("/review", allow_redirects=False)
    assert queue.status == 303 and queue.headers["Location"].startswith("/review/login")


async def test_repeated_sign_in_failures_are_throttled(start_gateway: Start) -> None:
    gw = await start_gateway(dispatch=False, server={"auth_failures_per_minute": 2})
    await add_reviewer(gw)
    for _ in range(2):
        assert (await sign_in(gw, password="wrong password here")).status == 401
    throttled = await sign_in(gw)  # even the right password waits for the window
    assert throttled.status == 429
    assert "Too many failed attempts" in await throttled.text()


async def test_cookie_flags(gw: Gateway) -> None:
    await add_reviewer(gw)
    cookie = set_cookie_header(await sign_in(gw)).lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/review" in cookie
    assert "secure" not in cookie.replace("samesite", "")  # plain HTTP, setting "auto"


async def test_cookie_is_secure_when_the_setting_forces_it(start_gateway: Start) -> None:
    gw = await start_gateway(dispatch=False, review={"secure_cookies": "always"})
    await add_reviewer(gw)
    cookie = set_cookie_header(await sign_in(gw)).lower()
    assert "; secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie


async def test_idle_timeout_signs_out_and_activity_extends_it(start_gateway: Start) -> None:
    clock = FakeClock(datetime.now(UTC))
    gw = await start_gateway(dispatch=False, clock=clock, review={"idle_timeout_seconds": 900})
    await add_reviewer(gw)
    await sign_in(gw)
    for _ in range(2):  # 1200 s in all, never 900 s idle
        clock.advance(600)
        assert (await gw.http.get("/review", allow_redirects=False)).status == 200
    clock.advance(901)
    resp = await gw.http.get("/review", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/review/login?done=session_ended"


async def test_a_disabled_reviewer_is_out_at_once(gw: Gateway) -> None:
    await add_reviewer(gw)
    await sign_in(gw)
    assert (await gw.http.get("/review", allow_redirects=False)).status == 200
    stored = await gw.app[STORE].get_reviewer("alice")
    assert stored is not None
    off = Reviewer("alice", False, (), stored.reviewer.created_at, datetime.now(UTC))
    await gw.app[STORE].put_reviewer(off, _PASSWORD_HASH, create=False)
    assert (await gw.http.get("/review", allow_redirects=False)).status == 303


async def test_sign_out_needs_the_token_and_ends_the_session(gw: Gateway) -> None:
    await add_reviewer(gw)
    await sign_in(gw)
    refused = await gw.http.post("/review/logout", data={}, allow_redirects=False)
    assert refused.status == 403
    token = await csrf_of(gw, "/review")
    out = await gw.http.post("/review/logout", data={"csrf": token}, allow_redirects=False)
    assert out.status == 303 and "max-age=0" in set_cookie_header(out).lower()
    assert (await gw.http.get("/review", allow_redirects=False)).status == 303


def cookie_value(resp: ClientResponse) -> str:
    """The session cookie's value as a browser (or a thief) would keep it."""
    return set_cookie_header(resp).split(";", 1)[0].split("=", 1)[1]


async def replay(gw: Gateway, value: str, path: str = "/review") -> ClientResponse:
    """``path`` with only this cookie (from another browser, say)."""
    gw.http.session.cookie_jar.clear()
    return await gw.http.get(path, headers={"Cookie": f"{COOKIE}={value}"}, allow_redirects=False)


async def sign_out(gw: Gateway) -> ClientResponse:
    token = await csrf_of(gw, "/review")
    return await gw.http.post("/review/logout", data={"csrf": token}, allow_redirects=False)


async def test_sign_out_kills_a_copied_cookie_everywhere(gw: Gateway) -> None:
    await _sign_out_kills_a_copied_cookie(gw)


async def test_sign_out_kills_a_copied_cookie_on_redis(
    redis_prefix: str,  # noqa: F811 (the fixture)
    start_gateway: Start,
) -> None:
    await _sign_out_kills_a_copied_cookie(
        await start_gateway(dispatch=False, store=on_redis(redis_prefix))
    )


async def _sign_out_kills_a_copied_cookie(gw: Gateway) -> None:
    await add_reviewer(gw)
    stolen = cookie_value(await sign_in(gw))
    second = await replay(gw, stolen)  # the copy works, in a "second browser"
    assert second.status == 200
    later_copy = cookie_value(second)  # re-issued with a fresh last use
    gw.http.session.cookie_jar.clear()
    await sign_in(gw)  # the reviewer's own browser
    out = await sign_out(gw)
    assert out.status == 303 and out.headers["Location"] == "/review/login?done=signed_out"
    signed_out = await gw.http.get(out.headers["Location"])
    assert "signed out, on every device" in await signed_out.text()
    for copy in (stolen, later_copy):
        resp = await replay(gw, copy)
        assert resp.status == 303
        assert resp.headers["Location"] == "/review/login?done=session_ended"
        assert "max-age=0" in set_cookie_header(resp).lower()
    # a copy is no session on the sign-in routes either: no redirect back in
    login = await replay(gw, stolen, "/review/login")
    assert login.status == 200 and 'name="password"' in await login.text()
    gw.http.session.cookie_jar.clear()
    again = await sign_in(gw)  # a session started after the sign-out works
    assert again.status == 303
    assert (await gw.http.get("/review", allow_redirects=False)).status == 200
    assert (await replay(gw, cookie_value(again))).status == 200
    stored = await gw.app[STORE].get_reviewer("alice")
    assert stored is not None and stored.reviewer.signed_out_at is not None


async def test_a_session_in_the_same_instant_as_the_sign_out_is_dead(start_gateway: Start) -> None:
    clock = FakeClock(datetime.now(UTC))  # frozen: sign-in and sign-out share the instant
    gw = await start_gateway(dispatch=False, clock=clock)
    await add_reviewer(gw)
    await sign_in(gw)
    copy = cookie_value(await gw.http.get("/review"))
    assert (await sign_out(gw)).status == 303
    assert (await replay(gw, copy)).status == 303
    gw.http.session.cookie_jar.clear()
    await sign_in(gw)  # issued at the very instant of the sign-out: refused too
    assert (await gw.http.get("/review", allow_redirects=False)).status == 303
    clock.advance(0.001)
    await sign_in(gw)
    assert (await gw.http.get("/review", allow_redirects=False)).status == 200


def test_revoked_compares_to_the_microsecond() -> None:
    at = datetime(2026, 11, 28, 12, 0, 0, 500_000, tzinfo=UTC)
    session = Session("alice", at.timestamp(), at.timestamp(), "t")
    assert not revoked(session, None)
    assert revoked(session, at)  # at: refused
    assert revoked(session, at + timedelta(microseconds=1))
    assert not revoked(session, at - timedelta(microseconds=1))  # after it: fine
    same_second = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
    assert not revoked(session, same_second)  # issued half a second after it
    earlier = Session("alice", same_second.timestamp() + 0.2, same_second.timestamp() + 0.2, "t")
    assert revoked(earlier, at)  # same second, 0.3 s before the sign-out


async def test_signing_out_a_session_already_ended_elsewhere(gw: Gateway) -> None:
    await add_reviewer(gw)
    await sign_in(gw)
    page = await gw.http.get("/review")  # a tab left open in this browser
    token = _CSRF.search(await page.text())
    assert token is not None
    mine = cookie_value(page)
    gw.http.session.cookie_jar.clear()
    await sign_in(gw)  # another browser signs out everywhere
    assert (await sign_out(gw)).status == 303
    gw.http.session.cookie_jar.clear()
    resp = await gw.http.post(
        "/review/logout",
        data={"csrf": token.group(1)},
        headers={"Cookie": f"{COOKIE}={mine}"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/review/login?done=session_ended"


# ---------------------------------------------------------------- CSRF and actions


async def test_form_posts_without_a_good_token_are_refused(gw: Gateway) -> None:
    token = await gw.key()
    held = await submit(gw, token)
    await add_reviewer(gw)
    await sign_in(gw)
    good = await csrf_of(gw, f"/review/messages/{held}")
    url = f"/review/messages/{held}/approve"
    for data, headers in (
        ({"comment": "fine"}, {}),
        ({"comment": "fine", "csrf": "forged"}, {}),
        ({"comment": "fine", "csrf": good}, {"Origin": "https://evil.example"}),
        ({"comment": "fine", "csrf": good}, {"Sec-Fetch-Site": "cross-site"}),
    ):
        resp = await gw.http.post(url, data=data, headers=headers, allow_redirects=False)
        assert resp.status == 403
        assert "Nothing was changed" in await resp.text()
    assert await status_of(gw, token, held) == "held"
    rejected = await gw.http.post(
        f"/review/messages/{held}/reject", data={"comment": "x"}, allow_redirects=False
    )
    assert rejected.status == 403 and await status_of(gw, token, held) == "held"
    # Referrer-Policy no-referrer makes browsers send "Origin: null" on the
    # page's own forms: the token decides then
    resp = await gw.http.post(
        url,
        data={"comment": "fine", "csrf": good},
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
        allow_redirects=False,
    )
    assert resp.status == 303 and await status_of(gw, token, held) == "queued"


async def test_sign_in_form_needs_its_token(gw: Gateway) -> None:
    await add_reviewer(gw)
    resp = await gw.http.post(
        "/review/login", data={"name": "alice", "password": PASSWORD}, allow_redirects=False
    )
    assert resp.status == 403
    assert (await gw.http.get("/review", allow_redirects=False)).status == 303


async def test_approve_and_reject_with_a_comment(gw: Gateway) -> None:
    token = await gw.key()
    first, second = await submit(gw, token), await submit(gw, token, borrower_id="B-2")
    await add_reviewer(gw)
    await sign_in(gw)
    csrf = await csrf_of(gw, f"/review/messages/{first}")
    empty = await gw.http.post(
        f"/review/messages/{first}/approve", data={"csrf": csrf, "comment": "  "}
    )
    assert empty.status == 400 and await status_of(gw, token, first) == "held"
    ok = await gw.http.post(
        f"/review/messages/{first}/approve",
        data={"csrf": csrf, "comment": "lawful wording"},
        allow_redirects=False,
    )
    assert ok.status == 303 and ok.headers["Location"] == "/review?done=approved"
    assert await status_of(gw, token, first) == "queued"
    no = await gw.http.post(
        f"/review/messages/{second}/reject",
        data={"csrf": csrf, "comment": "threatening"},
        allow_redirects=False,
    )
    assert no.status == 303 and await status_of(gw, token, second) == "rejected"
    again = await gw.http.post(
        f"/review/messages/{second}/approve", data={"csrf": csrf, "comment": "oops"}
    )
    assert again.status == 409


async def test_blocked_messages_are_read_only(gw: Gateway) -> None:
    token = await gw.key()
    blocked = await submit(gw, token, BLOCKED)
    await add_reviewer(gw)
    await sign_in(gw)
    listing = await (await gw.http.get("/review?status=blocked")).text()
    assert blocked in listing
    html = await (await gw.http.get(f"/review/messages/{blocked}")).text()
    assert "blocked by policy" in html and "/approve" not in html


async def test_a_reviewer_sees_only_assigned_clients(gw: Gateway) -> None:
    mine, theirs = await gw.key("client-a"), await gw.key("client-b")
    visible, hidden = await submit(gw, mine), await submit(gw, theirs)
    await add_reviewer(gw, clients=("client-a",))
    await sign_in(gw)
    listing = await (await gw.http.get("/review")).text()
    assert visible in listing and hidden not in listing
    assert (await gw.http.get(f"/review/messages/{hidden}")).status == 404
    filtered = await (await gw.http.get("/review?client=client-b")).text()
    assert hidden not in filtered
    csrf = await csrf_of(gw, f"/review/messages/{visible}")
    resp = await gw.http.post(
        f"/review/messages/{hidden}/approve", data={"csrf": csrf, "comment": "sneaky"}
    )
    assert resp.status == 404 and await status_of(gw, theirs, hidden) == "held"


async def test_reveal_is_offered_only_to_those_allowed(gw: Gateway) -> None:
    token = await gw.key()
    held = await submit(gw, token)
    await add_reviewer(gw, "bob")
    await add_reviewer(gw, "carol", can_reveal=True)
    await sign_in(gw, "bob")
    html = await (await gw.http.get(f"/review/messages/{held}")).text()
    assert "/reveal" not in html
    csrf = _CSRF.search(html)
    assert csrf is not None
    refused = await gw.http.post(
        f"/review/messages/{held}/reveal", data={"csrf": csrf.group(1), "reason": "curious"}
    )
    assert refused.status == 403 and CN_MOBILE not in await refused.text()
    gw.http.session.cookie_jar.clear()
    await sign_in(gw, "carol")
    html = await (await gw.http.get(f"/review/messages/{held}")).text()
    assert "recorded in the audit log" in html
    csrf = _CSRF.search(html)
    assert csrf is not None
    shown = await gw.http.post(
        f"/review/messages/{held}/reveal", data={"csrf": csrf.group(1), "reason": "complaint 77"}
    )
    assert shown.status == 200 and shown.headers["Cache-Control"] == "no-store"
    text = await shown.text()
    assert CN_MOBILE in text and "依法提起诉讼" in text


# ---------------------------------------------------------------- language, summary, static


async def test_language_follows_the_browser_then_the_override(gw: Gateway) -> None:
    await add_reviewer(gw)
    await sign_in(gw)
    zh = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
    assert "审核队列" in await (await gw.http.get("/review", headers=zh)).text()
    english = await gw.http.get("/review?lang=en", headers=zh)
    assert "Queue" in await english.text() and "审核队列" not in await english.text()
    later = await (await gw.http.get("/review/summary", headers=zh)).text()
    assert "Summary" in later and "统计" not in later  # the cookie remembers the choice
    back = await (await gw.http.get("/review?lang=zh")).text()
    assert "审核队列" in back


async def test_summary_draws_an_svg_chart_without_inline_style(gw: Gateway) -> None:
    token = await gw.key()
    await submit(gw, token)
    await submit(gw, token, BLOCKED)
    await add_reviewer(gw)
    await sign_in(gw)
    resp = await gw.http.get("/review/summary?days=7")
    html = await resp.text()
    assert resp.status == 200 and "<svg" in html and 'class="bar-held"' in html
    assert "legal_action" in html and "style=" not in html and "<style" not in html


async def test_static_files_have_hashed_names_and_long_cache(gw: Gateway) -> None:
    await add_reviewer(gw)
    await sign_in(gw)
    html = await (await gw.http.get("/review")).text()
    names = re.findall(r'(/review/static/review\.[0-9a-f]{12}\.(?:css|js))"', html)
    assert len(names) == 2
    for name in names:
        resp = await gw.http.get(name)
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert (await gw.http.get("/review/static/review.css")).status == 404
    slash = await gw.http.get("/review/", allow_redirects=False)
    assert slash.status == 303 and slash.headers["Location"] == "/review"
