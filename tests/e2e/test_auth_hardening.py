"""Authentication hardening: one 401 for every bad key (unknown, revoked,
wrong secret, malformed, missing), revocation takes effect at once, failed
attempts are rate-limited per source address, and API answers carry
``Cache-Control: no-store``, ``X-Content-Type-Options: nosniff`` and no server
version."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import aiohttp

from gateway.appkeys import STORE
from gateway.auth import hash_secret, parse_token
from gateway.ratelimit import AuthFailureLimiter
from tests.conftest import CN_MOBILE, auth

PROBLEM = "https://lendsms.dev/problems/"
BODY = {"to": CN_MOBILE, "borrower_id": "B-1", "purpose": "service", "text": "hello"}
VARYING = {"date", "x-request-id"}


def _shape(
    r: aiohttp.ClientResponse, body: bytes
) -> tuple[int, bytes, tuple[tuple[str, str], ...]]:
    headers = {k.lower(): v for k, v in r.headers.items() if k.lower() not in VARYING}
    return r.status, body, tuple(sorted(headers.items()))


async def test_unknown_revoked_wrong_and_malformed_keys_get_the_same_401(
    start_gateway: Any,
) -> None:
    gw = await start_gateway(dispatch=False)
    good = await gw.key()
    revoked = await gw.key()
    key_id, secret = parse_token(revoked) or ("", "")
    assert await gw.app[STORE].revoke_key(key_id, datetime.now(UTC))
    unknown = "lsk_" + "z" * 12 + "_" + secret
    wrong = revoked[:-4] + ("AAAA" if not revoked.endswith("AAAA") else "BBBB")
    stored = await gw.app[STORE].get_key(key_id)
    assert stored is not None and stored.secret_hash == hash_secret(secret)
    assert secret not in stored.secret_hash  # only a hash is kept

    shapes = set()
    for header in (
        f"Bearer {revoked}",
        f"Bearer {unknown}",
        f"Bearer {wrong}",
        "Bearer lsk_short",
        "Basic dXNlcjpwYXNz",
        None,
    ):
        headers = {} if header is None else {"Authorization": header}
        r = await gw.http.post("/v1/messages", json=BODY, headers=headers)
        shapes.add(_shape(r, await r.read()))
        r = await gw.http.get("/v1/messages/anything", headers=headers)
        shapes.add(_shape(r, await r.read()))
    # the two routes give the same answer too: one 401 shape for everything
    assert len(shapes) == 1, shapes
    status, body, header_items = shapes.pop()
    headers = dict(header_items)
    assert status == 401
    assert headers["www-authenticate"] == 'Bearer realm="lendsms"'
    assert json.loads(body)["type"] == PROBLEM + "unauthorized"
    # the good key still works: revocation hit only the revoked one, at once
    r = await gw.http.post("/v1/messages", json=BODY, headers=auth(good))
    assert r.status == 202


async def test_failed_attempts_are_rate_limited_per_source(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False, server={"auth_failures_per_minute": 5})
    good = await gw.key()
    bad = {"Authorization": "Bearer lsk_aaaaaaaaaaaa_wrong"}
    for _ in range(5):
        r = await gw.http.post("/v1/messages", json=BODY, headers=bad)
        assert r.status == 401
    r = await gw.http.post("/v1/messages", json=BODY, headers=bad)
    assert r.status == 429
    problem = await r.json()
    assert problem["type"] == PROBLEM + "rate-limited" and problem["rule"] == "auth_failures"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # once blocked, even a good key from that address waits: guessing gains nothing
    r = await gw.http.post("/v1/messages", json=BODY, headers=auth(good))
    assert r.status == 429
    r = await gw.http.get("/v1/messages/x", headers=auth(good))
    assert r.status == 429
    # public endpoints are not affected
    assert (await gw.http.get("/healthz")).status == 200


def test_auth_failure_limiter_windows_and_bounded_memory() -> None:
    now = [1000.0]
    limiter = AuthFailureLimiter(3, max_sources=100, monotonic=lambda: now[0])
    for _ in range(3):
        limiter.check("10.0.0.1")
        limiter.failed("10.0.0.1")
    try:
        limiter.check("10.0.0.1")
    except Exception as exc:
        assert getattr(exc, "status", None) == 429
        assert exc.headers["Retry-After"] == "60"  # type: ignore[attr-defined]
    else:
        raise AssertionError("the fourth attempt was not limited")
    limiter.check("10.0.0.2")  # other sources are unaffected
    now[0] += 30
    try:
        limiter.check("10.0.0.1")
    except Exception as exc:
        assert exc.headers["Retry-After"] == "30"  # type: ignore[attr-defined]
    now[0] += 30  # the window is over
    limiter.check("10.0.0.1")
    # an address-rotating attacker cannot grow the table past max_sources
    for n in range(10_000):
        limiter.failed(f"192.0.2.{n}")
        assert len(limiter) <= 100
    assert len(limiter) == 100


async def test_security_headers_and_no_server_version(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await gw.key()
    answers = [
        await gw.http.post("/v1/messages", json=BODY, headers=auth(token)),  # 202
        await gw.http.post("/v1/messages", data=b"{", headers=auth(token)),  # 415
        await gw.http.get("/v1/messages/none", headers=auth(token)),  # 404
        await gw.http.get("/v1/messages/none"),  # 401
        await gw.http.delete("/v1/messages"),  # 405
        await gw.http.get("/nowhere"),  # 404
        await gw.http.get("/healthz"),
        await gw.http.get("/openapi.json"),
        await gw.http.get("/metrics"),
    ]
    for r in answers:
        assert r.headers["X-Content-Type-Options"] == "nosniff", r.url
        assert r.headers["Server"] == "lendsms", r.url  # no aiohttp/Python version
        assert "aiohttp" not in str(r.headers).lower() and "python" not in str(r.headers).lower()
        if r.url.path.startswith("/v1/"):
            assert r.headers["Cache-Control"] == "no-store", r.url
    assert [r.status for r in answers[:6]] == [202, 415, 404, 401, 405, 404]
