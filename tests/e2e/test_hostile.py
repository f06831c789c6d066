"""Hostile input against the real app (dispatch on, real SQLite store, real
outbox): every case gets its exact 4xx, nothing crashes, and nothing is
stored, queued or sent. A valid message at the end of each test proves the
pipeline was live all along (it is stored and reaches the outbox)."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from tests.conftest import CN_MOBILE, Gateway, auth, wait_for

PROBLEM = "https://lendsms.dev/problems/"
TEXT = "【安心消费金融】尊敬的客户，您本期应还1,086.40元，最后还款日12月8日。"
TABLES = ("messages", "events", "queue", "attempts", "idempotency")


def msg(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "to": CN_MOBILE,
        "borrower_id": "B-1",
        "purpose": "repayment_reminder",
        "text": TEXT,
    }
    body.update(over)
    return body


def raw(**over: Any) -> bytes:
    return json.dumps(msg(**over), ensure_ascii=False).encode()


TEMPLATES = {
    "reminder": {
        "purpose": "repayment_reminder",
        "text": "【安心消费金融】{name}您好，您本期应还{amount}元。",
    }
}


def tmpl(params: Any) -> bytes:
    body = msg(template="reminder", params=params)
    del body["text"]
    return json.dumps(body, ensure_ascii=False).encode()


def counts(gw: Gateway) -> dict[str, int]:
    db = sqlite3.connect(gw.settings.store.path)
    try:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}  # noqa: S608
    finally:
        db.close()


def assert_nothing_stored_or_sent(gw: Gateway) -> None:
    assert counts(gw) == dict.fromkeys(TABLES, 0)
    assert gw.outbox() == []


async def prove_pipeline_live(gw: Gateway, token: str) -> None:
    """One good message is stored and sent, and it is the only one."""
    r = await gw.http.post("/v1/messages", json=msg(), headers=auth(token))
    assert r.status == 202, await r.text()
    await wait_for(lambda: len(gw.outbox()) == 1, what="the control message to be sent")
    assert counts(gw)["messages"] == 1
    assert len(gw.outbox()) == 1


async def post_all(
    gw: Gateway, token: str, cases: Iterable[tuple[str, bytes, str | None]], status: int, slug: str
) -> None:
    """Each case: a name, the body, and the field the problem must name (None:
    the body as a whole is refused)."""
    h = {**auth(token), "Content-Type": "application/json"}
    for name, body, field in cases:
        r = await gw.http.post("/v1/messages", data=body, headers=h)
        text = await r.text()
        assert r.status == status, (name, r.status, text)
        assert r.content_type == "application/problem+json", name
        problem = json.loads(text)
        assert problem["type"] == PROBLEM + slug, (name, text)
        named = {e["field"] for e in problem.get("errors", ())}
        assert named == ({field} if field else set()), (name, text)
        assert "13812345678" not in text, name
        assert_nothing_stored_or_sent(gw)


async def test_encoding_attacks_are_400(start_gateway: Any) -> None:
    gw = await start_gateway(templates=TEMPLATES)
    token = await gw.key()
    lone = "\\ud800"
    cases = [
        ("invalid UTF-8", b'{"to": "\xff\xfe", "text": "\xc3\x28"}', None),
        ("overlong UTF-8", b'{"to": "\xc0\xaf"}', None),
        ("UTF-16 body", json.dumps(msg()).encode("utf-16"), None),
        ("NUL byte outside strings", b'{"to":\x00 "x"}', None),
        ("NUL in text", raw(text="hello\x00world"), "text"),
        ("NUL in borrower_id", raw(borrower_id="B\x00-1"), "borrower_id"),
        ("NUL in to", raw(to="+86138\x0012345678"), "to"),
        ("NUL in reference", raw(reference="r\x00"), "reference"),
        ("NUL in param", tmpl({"name": "\x00", "amount": "1"}), "params"),
        ("lone surrogate in text", raw(text="X").replace(b'"X"', f'"{lone}"'.encode()), "text"),
        ("lone surrogate in to", raw(to="X").replace(b'"X"', f'"{lone}"'.encode()), "to"),
        (
            "lone surrogate in borrower_id",
            raw(borrower_id="X").replace(b'"X"', b'"\\udfff"'),
            "borrower_id",
        ),
        (
            "lone surrogate in reference",
            raw(reference="X").replace(b'"X"', b'"a\\udc00"'),
            "reference",
        ),
        (
            "lone surrogate in a param",
            tmpl({"name": "X", "amount": "1"}).replace(b'"X"', f'"{lone}"'.encode()),
            "params",
        ),
        (
            "lone surrogate in a param key",
            tmpl({"name": "n", "amount": "1", "X": "v"}).replace(b'"X"', f'"{lone}"'.encode()),
            "params",
        ),
        ("RTL override in text", raw(text="还款金额 \u202e00.01\u202c 元"), "text"),
        ("RTL isolate in text", raw(text="请点击 \u2067moc.evil\u2069"), "text"),
        ("bidi override in a param", tmpl({"name": "\u202e张三", "amount": "1"}), "params"),
        ("bidi embedding in borrower_id", raw(borrower_id="B\u202b1"), "borrower_id"),
    ]
    await post_all(gw, token, cases, 400, "invalid")
    await prove_pipeline_live(gw, token)


async def test_json_structure_attacks_are_400(start_gateway: Any) -> None:
    # the largest body limit allowed, so 100,000 levels of nesting reach the parser
    gw = await start_gateway(server={"max_body_bytes": 1024 * 1024}, templates=TEMPLATES)
    token = await gw.key()
    deep = 100_000
    big_int = b"9" * 5000
    cases = [
        ("100,000 nested arrays", b"[" * deep + b"]" * deep, None),
        ("100,000 nested objects", b'{"a":' * deep + b"1" + b"}" * deep, None),
        ("nested inside a field", tmpl("X").replace(b'"X"', b"[" * 5000 + b"]" * 5000), None),
        ("duplicate key", b'{"to": "+8613812345678", "to": "+8613812345679", "borrower_id": "B",'
         b' "purpose": "repayment_reminder", "text": "hi"}', None),
        ("duplicate key deep", tmpl({"name": "a", "amount": "1"}).replace(
            b'"name": "a"', b'"name": "a", "name": "b"'), None),
        ("5000-digit integer", raw(borrower_id=1).replace(b": 1,", b": " + big_int + b","), None),
        ("65-digit integer", raw(borrower_id=1).replace(b": 1,", b": " + b"9" * 65 + b","), None),
        ("64-digit integer", raw(borrower_id=1).replace(b": 1,", b": " + b"9" * 64 + b","),
         "borrower_id"),
        ("float overflow", raw(borrower_id=1).replace(b": 1,", b": 1e999,"), None),
        ("negative float overflow", raw(borrower_id=1).replace(b": 1,", b": -1.5e400,"), None),
        ("NaN", raw(borrower_id=1).replace(b": 1,", b": NaN,"), None),
        ("Infinity", raw(borrower_id=1).replace(b": 1,", b": -Infinity,"), None),
        ("truncated", raw()[:-5], None),
        ("trailing garbage", raw() + b"{}", None),
        ("empty body", b"", None),
        ("whitespace body", b"   \n", None),
        ("BOM", b"\xef\xbb\xbf" + raw(), None),
    ]  # fmt: skip
    await post_all(gw, token, cases, 400, "invalid")
    await prove_pipeline_live(gw, token)


async def test_wrong_types_are_400(start_gateway: Any) -> None:
    gw = await start_gateway(templates=TEMPLATES)
    token = await gw.key()
    bodies: list[tuple[str, Any, str | None]] = [
        ("array body", [msg()], None),
        ("string body", "hello", None),
        ("number body", 42, None),
        ("null body", None, None),
        ("true body", True, None),
        ("to as number", msg(to=8613812345678), "to"),
        ("to as list", msg(to=[CN_MOBILE]), "to"),
        ("to as object", msg(to={"e164": CN_MOBILE}), "to"),
        ("borrower_id as bool", msg(borrower_id=True), "borrower_id"),
        ("borrower_id as float", msg(borrower_id=1.5), "borrower_id"),
        ("purpose as null", msg(purpose=None), "purpose"),
        ("purpose as list", msg(purpose=["repayment_reminder"]), "purpose"),
        ("text as object", msg(text={"zh": TEXT}), "text"),
        ("text as number", msg(text=1086.40), "text"),
        ("params as list", json.loads(tmpl(["a"])), "params"),
        ("param value as number", json.loads(tmpl({"name": "a", "amount": 1086.4})), "params"),
        ("param value as null", json.loads(tmpl({"name": "a", "amount": None})), "params"),
        ("region as number", msg(to="+8613812345678", region=86), "region"),
        ("scheduled_at as epoch", msg(scheduled_at=1767225600), "scheduled_at"),
        ("callback_url as list", msg(callback_url=["https://a.example/"]), "callback_url"),
        ("recipient_role as bool", msg(recipient_role=True), "recipient_role"),
        ("reference as object", msg(reference={}), "reference"),
        ("unknown field", msg(admin=True), "admin"),
    ]
    cases = [(name, json.dumps(body).encode(), field) for name, body, field in bodies]
    await post_all(gw, token, cases, 400, "invalid")
    await prove_pipeline_live(gw, token)


async def test_odd_phone_numbers(start_gateway: Any) -> None:
    """Refused: anything but digits (any script) with spaces, dots, dashes and
    brackets; extensions; national numbers without a region; landlines;
    impossible numbers. Accepted: the same mobile number however it is
    punctuated, in full-width or Arabic-Indic digits (one E.164 in the end)."""
    gw = await start_gateway(dispatch=False)
    token = await gw.key()
    refused = [
        "", "+", "++8613812345678", "+8613812345678;ext=12", "+86 138 1234 5678 x123",
        "tel:+8613812345678", "+8613812345678\u200b", "+86\u200d13812345678",
        "+86\u202e13812345678", " +8613812345678", "+8613812345678\n", "+86-138-1234-5678-",
        "8613812345678", "008613812345678", "13812345678", "＋８６１３８１２３４５６７８",
        "+86138123456789999", "+86 1381234567", "+999 1234567", "+861062345678",
        "+86一三八一二三四五六七八", "+8613812345678" + "0" * 20, "1e10", "+86 138 1234 5678 ",
        "+86%2013812345678", "+86/13812345678", "+86\t13812345678",
    ]  # fmt: skip
    h = {**auth(token), "Content-Type": "application/json"}
    for to in refused:
        r = await gw.http.post("/v1/messages", data=raw(to=to), headers=h)
        problem = await r.json()
        assert r.status == 400, (to, problem)
        assert "to" in {e["field"] for e in problem["errors"]}, (to, problem)
    assert_nothing_stored_or_sent(gw)

    accepted = [
        ("+86 138-1234-5678", None), ("+86 (138) 1234 5678", None), ("+86.138.1234.5678", None),
        ("+86１３８１２３４５６７８", None), ("+٨٦١٣٨١٢٣٤٥٦٧٨", None), ("13812345678", "CN"),
        ("0086 138 1234 5678", "CN"), ("138 1234 5678", "CN"),
    ]  # fmt: skip
    for n, (to, region) in enumerate(accepted):
        body = msg(to=to, borrower_id=f"B-{n}", **({"region": region} if region else {}))
        r = await gw.http.post("/v1/messages", json=body, headers=auth(token))
        answer = await r.json()
        assert r.status == 202, (to, answer)
        assert answer["to_masked"] == "+86 138****5678", (to, answer)
    assert counts(gw)["messages"] == len(accepted)


async def test_zero_width_characters_do_not_hide_blocked_words(start_gateway: Any) -> None:
    """Zero-width characters are allowed in text (emoji sequences need ZWJ) but
    the content filter reads through them: an abusive text spelled with them is
    still blocked (422). A blocked message is kept as a terminal ``blocked``
    record for the audit trail; it is never queued or sent."""
    gw = await start_gateway()
    token = await gw.key()
    hidden = "【安心消费金融】你这个老\u200b赖，再不还钱就曝\u200d光\ufeff你"
    r = await gw.http.post(
        "/v1/messages", json=msg(purpose="overdue_notice", text=hidden), headers=auth(token)
    )
    answer = await r.json()
    assert r.status == 422, answer
    assert answer["type"] == PROBLEM + "blocked"
    assert counts(gw)["queue"] == 0
    await asyncio.sleep(0.2)  # the dispatcher polls every 0.02 s
    assert gw.outbox() == []
    db = sqlite3.connect(gw.settings.store.path)
    try:
        assert db.execute("SELECT status FROM messages").fetchall() == [("blocked",)]
    finally:
        db.close()


async def test_10_mb_bodies_are_413(start_gateway: Any) -> None:
    gw = await start_gateway()
    token = await gw.key()
    big = b'{"text": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    h = {**auth(token), "Content-Type": "application/json"}
    r = await gw.http.post("/v1/messages", data=io.BytesIO(big), headers=h)
    assert r.status == 413
    assert (await r.json())["type"] == PROBLEM + "payload-too-large"

    async def chunks() -> Any:  # no Content-Length: chunked transfer encoding
        for _ in range(160):
            yield b"x" * 65536

    r = await gw.http.post("/v1/messages", data=chunks(), headers=h)
    assert r.status == 413
    assert (await r.json())["type"] == PROBLEM + "payload-too-large"
    assert_nothing_stored_or_sent(gw)
    await prove_pipeline_live(gw, token)


async def test_10_mb_bodies_to_contact_policy_endpoints_are_413(start_gateway: Any) -> None:
    policy_gw = await start_gateway(contact_policy=True, dispatch=False)
    big = b'{"to": "' + b"1" * (10 * 1024 * 1024) + b'"}'
    h = {**auth(await policy_gw.key()), "Content-Type": "application/json"}
    r = await policy_gw.http.post("/v1/opt-outs", data=io.BytesIO(big), headers=h)
    assert r.status == 413
    assert (await r.json())["type"] == PROBLEM + "payload-too-large"
    assert_nothing_stored_or_sent(policy_gw)


async def _raw_request(gw: Gateway, head: bytes, body_parts: list[bytes], pause: float) -> bytes:
    reader, writer = await asyncio.open_connection(gw.http.host, gw.http.port)
    try:
        writer.write(head)
        for part in body_parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(pause)
        return await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()


async def test_slow_bodies_are_cut_off_with_408(start_gateway: Any) -> None:
    gw = await start_gateway(server={"body_timeout": 0.5})
    token = await gw.key()
    body = raw()
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    started = loop.time()
    # slowloris: one byte, then silence (well past the 0.5 s deadline)
    answer = await _raw_request(gw, head, [body[:1]], 0)
    elapsed = loop.time() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"request-timeout" in answer
    assert elapsed < 5
    # trickle: a byte every 0.1 s, never finishing within the deadline
    answer = await _raw_request(gw, head, [bytes([b]) for b in body[:20]], 0.1)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert_nothing_stored_or_sent(gw)
    await prove_pipeline_live(gw, token)


async def test_many_concurrent_hostile_connections(start_gateway: Any) -> None:
    gw = await start_gateway()
    token = await gw.key()
    h = {**auth(token), "Content-Type": "application/json"}
    bad = [b"{", raw(to="x"), b'{"a":1,"a":1}', b"[" * 10_000, raw(text="\u202e")]

    async def one(n: int) -> int:
        r = await gw.http.post("/v1/messages", data=bad[n % len(bad)], headers=h)
        await r.read()
        return r.status

    statuses = await asyncio.gather(*(one(n) for n in range(300)))
    assert set(statuses) == {400}
    # idle connections held open do not stop the service answering
    conns = [await asyncio.open_connection(gw.http.host, gw.http.port) for _ in range(200)]
    try:
        r = await gw.http.get("/healthz")
        assert r.status == 200
    finally:
        for _, writer in conns:
            writer.close()
    assert_nothing_stored_or_sent(gw)
    await prove_pipeline_live(gw, token)


async def test_unauthenticated_hostile_bodies_are_401_before_reading(start_gateway: Any) -> None:
    gw = await start_gateway()
    token = await gw.key()
    h = {"Authorization": "Bearer lsk_aaaaaaaaaaaa_nope", "Content-Type": "application/json"}
    for body in (b"[" * 100_000, b"\xff", b"x" * (1024 * 1024)):
        r = await gw.http.post("/v1/messages", data=body, headers=h)
        assert r.status == 401
        assert (await r.json())["type"] == PROBLEM + "unauthorized"
    assert_nothing_stored_or_sent(gw)
    await prove_pipeline_live(gw, token)


async def test_slow_provider_callbacks_are_cut_off_with_408(start_gateway: Any) -> None:
    gw = await start_gateway(
        dispatch=False,
        server={"body_timeout": 0.5},
        providers={
            "outbox": {"type": "outbox", "path": "var/outbox.jsonl"},
            "tw": {
                "type": "twilio",
                "account_sid": "AC" + "0" * 32,
                "auth_token": "t" * 32,
                "from": "+12015550100",
            },
        },
    )
    head = (
        b"POST /callbacks/tw/status HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
    )
    answer = await _raw_request(gw, head, [b"MessageSid=SM"], 0)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert_nothing_stored_or_sent(gw)
