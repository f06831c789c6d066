"""Issue 10, acceptance 4 and STYLE.md item 15: the whole dev corpus through
the running gateway (acceptance, dispatch to the outbox, reads) with every log
record captured as the JSON formatter writes it, at DEBUG. The logs hold one
line per request with request id, level, route, status, duration and message
id, and never a phone number, a body, an ID number or a key."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.logs import JsonFormatter, setup_logging
from gateway.models import Client
from tests.conftest import CN_MOBILE, US_MOBILE, Gateway, auth, wait_for
from tests.e2e.test_content_e2e import DEV, DEV_SIGNATURES, client_key


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[Capture]:
    """Logging as ``setup_logging`` sets it up (aiohttp's own access log, which
    would print raw paths, is off), at DEBUG, into a list."""
    root, aio = logging.getLogger(), logging.getLogger("aiohttp.access")
    handler, level, aio_disabled = Capture(), root.level, aio.disabled
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    aio.disabled = True
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)
    aio.disabled = aio_disabled


def forbidden(case: dict[str, Any]) -> list[str]:
    text = str(case["text"])
    out = [text, *case["pii"], *(k for k in case["keep"] if len(k) >= 5)]
    out += [text[i : i + 12] for i in range(0, max(1, len(text) - 12), 6)]  # any stretch
    return [s for s in out if s.strip()]


@pytest.mark.skipif(not DEV.exists(), reason="shared corpus not present")
async def test_dev_corpus_leaves_no_personal_data_in_the_logs(
    start_gateway: Any, captured: Capture
) -> None:
    gw: Gateway = await start_gateway()
    cn = await client_key(gw, Client("dev-cn", "cn-collection", signatures=DEV_SIGNATURES))
    us = await client_key(gw, Client("dev-us", "us-fdcpa"))
    cases = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line]
    assert len(cases) >= 40
    needles = [CN_MOBILE, CN_MOBILE[3:], US_MOBILE, US_MOBILE[2:], cn, us]
    needles += [token.split("_", 2)[2] for token in (cn, us)]  # the secrets alone
    keys = gw.settings.keys
    needles += [k.get() for k in (keys.data, keys.index, keys.audit)]
    answers: dict[str, tuple[int, dict[str, Any]]] = {}
    for case in cases:
        token, to = (cn, CN_MOBILE) if case["lang"] == "zh" else (us, US_MOBILE)
        borrower = f"BRW-{case['id']}-77310"
        needles += [borrower, *forbidden(case)]
        body = {"to": to, "borrower_id": borrower, "purpose": case["purpose"],
                "text": case["text"]}  # fmt: skip
        headers = {**auth(token), "X-Request-Id": f"corpus-{case['id']}"}
        r = await gw.http.post("/v1/messages", json=body, headers=headers)
        assert r.headers["X-Request-Id"] == f"corpus-{case['id']}"
        answers[case["id"]] = (r.status, await r.json(content_type=None))
        if r.status == 202:
            mid = answers[case["id"]][1]["id"]
            assert (await gw.http.get(f"/v1/messages/{mid}", headers=auth(token))).status == 200
    queued = sum(1 for s, a in answers.values() if s == 202 and a["status"] == "queued")
    assert queued >= 20
    await wait_for(lambda: len(gw.outbox()) == queued, what="the corpus sent")
    # an X-Request-Id that is not an id is replaced, never logged
    r = await gw.http.get("/healthz", headers={"X-Request-Id": f"to {CN_MOBILE}"})
    assert CN_MOBILE not in r.headers["X-Request-Id"]
    await gw.http.get("/metrics")

    logs = "\n".join(captured.lines)
    records = [json.loads(line) for line in captured.lines]
    access = [r for r in records if r["msg"] == "request"]
    assert len(access) >= len(cases) + queued
    for rec in access:
        assert {"ts", "level", "request_id", "method", "route", "status", "duration_ms"} <= set(rec)
    for cid, (status, answer) in answers.items():
        [line] = [r for r in access if r["request_id"] == f"corpus-{cid}"]
        assert (line["route"], line["status"], line["level"]) == ("/v1/messages", status, "info")
        if status in (202, 422):
            assert line["message_id"] == answer["id"]
    for needle in needles:
        assert needle not in logs, f"the logs hold {needle[:3]}…"
    # the raw paths of message reads are not logged, only the template
    assert '"/v1/messages/{id}"' in logs and "/v1/messages/msg_" not in logs


def test_every_log_field_is_allow_listed() -> None:
    """A field outside the allow-list passed as ``extra`` is dropped."""
    record = logging.LogRecord("lendsms.test", logging.INFO, __file__, 1, "hi", None, None)
    record.__dict__.update({"to": CN_MOBILE, "text": "secret body", "route": "/readyz"})
    line = json.loads(JsonFormatter().format(record))
    assert line["route"] == "/readyz" and "to" not in line and "text" not in line
    assert set(line) <= {"ts", "level", "logger", "msg", "route"}


def test_setup_logging_writes_json_and_silences_aiohttps_access_log() -> None:
    root, aio = logging.getLogger(), logging.getLogger("aiohttp.access")
    saved = (list(root.handlers), root.level, aio.disabled)
    try:
        setup_logging("WARNING")
        assert root.level == logging.WARNING and aio.disabled
        assert [type(h.formatter) for h in root.handlers] == [JsonFormatter]
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
        aio.disabled = saved[2]
