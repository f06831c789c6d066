"""SSRF through ``callback_url`` at the API: a URL naming a loopback, private,
link-local, CGNAT, metadata or otherwise internal address is refused at
submission (400, nothing stored or sent). Names are checked when the webhook
connects (tests/providers/test_webhooks.py: names resolving inside, DNS
rebinding, ``localhost.``, redirects not followed); here the real resolver
is also shown refusing numeric spellings of internal addresses that are not
IP literals to ``ipaddress`` (decimal, hex, octal, short forms)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from gateway.webhooks import GuardedResolver, UnsafeAddress
from tests.conftest import CN_MOBILE, auth
from tests.e2e.test_hostile import assert_nothing_stored_or_sent, prove_pipeline_live

INTERNAL = [
    "https://127.0.0.1/hook",
    "https://127.0.0.1:8080/hook",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:7f00:1]/hook",
    "https://0.0.0.0/hook",
    "https://10.0.0.5/hook",
    "https://172.16.3.4/hook",
    "https://192.168.0.1/hook",
    "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://[fd00:ec2::254]/latest/meta-data/",
    "https://100.100.100.200/latest/meta-data/",
    "https://100.64.0.1/hook",
    "https://[fe80::1]/hook",
    "https://[fc00::1]/hook",
    "https://224.0.0.1/hook",
    "https://localhost/hook",
    "https://LOCALHOST./hook",
    "https://metadata.localhost/hook",
    "https://user:pw@example.com/hook",
    "http://example.com/hook",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "https:///hook",
]


async def test_internal_callback_urls_are_refused_at_submission(start_gateway: Any) -> None:
    gw = await start_gateway()
    token = await gw.key()
    for url in INTERNAL:
        body = {"to": CN_MOBILE, "borrower_id": "B", "purpose": "service", "text": "hi",
                "callback_url": url}  # fmt: skip
        r = await gw.http.post("/v1/messages", json=body, headers=auth(token))
        problem = await r.json()
        assert r.status == 400, (url, problem)
        assert [e["field"] for e in problem["errors"]] == ["callback_url"], (url, problem)
    assert_nothing_stored_or_sent(gw)
    await prove_pipeline_live(gw, token)


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0", "017700000001"]
)
async def test_numeric_spellings_of_loopback_are_refused_by_the_resolver(host: str) -> None:
    """getaddrinfo reads these as 127.0.0.1 / 0.0.0.0 (no network needed)."""
    guard = GuardedResolver()
    try:
        with pytest.raises(UnsafeAddress):
            await guard.resolve(host, 443, socket.AF_INET)
    finally:
        await guard.close()
