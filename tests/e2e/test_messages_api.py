"""POST /v1/messages, GET /v1/messages/{id}, cancel: every status code API.md
lists for them, through the real app, store, audit log and outbox."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.appkeys import STORE
from gateway.models import Action, Decision, Finding
from gateway.pipeline import Draft, NormalizeStage, SegmentStage, StageResult
from tests.conftest import CN_MOBILE, US_MOBILE, auth, wait_for

PROBLEM = "https://lendsms.dev/problems/"
TEXT = "【安心消费金融】尊敬的客户，您本期应还1,086.40元，最后还款日12月8日。"


def msg(**over: Any) -> dict[str, Any]:
    body = {"to": CN_MOBILE, "borrower_id": "B-1", "purpose": "repayment_reminder", "text": TEXT}
    body.update(over)
    return body


class BlockMarker:
    """A test stage: blocks texts containing BLOCKME, holds HOLDME."""

    name = "test-marker"

    async def __call__(self, draft: Draft) -> StageResult:
        text = draft.request.text
        if (i := text.find("BLOCKME")) >= 0:
            f = Finding("content", "test.block", "threat", Action.BLOCK, i, i + 7)
            return StageResult(findings=(f,), decision=Decision.BLOCK)
        if (i := text.find("HOLDME")) >= 0:
            f = Finding("content", "test.hold", "legal", Action.HOLD, i, i + 6)
            return StageResult(findings=(f,), decision=Decision.HOLD)
        return StageResult()


MARKER_STAGES = [NormalizeStage(), BlockMarker(), SegmentStage()]


async def test_accepted_message_reaches_outbox(start_gateway: Any) -> None:
    gw = await start_gateway()
    token = await gw.key()
    resp = await gw.http.post("/v1/messages", json=msg(), headers=auth(token))
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    assert body["status"] == "queued"
    assert body["to_masked"] == "+86 138****5678"
    assert body["body"] == TEXT
    assert body["segments"] == 1 and body["encoding"] == "UCS-2"
    assert body["findings"] == [] and body["scheduled_at"] is None
    assert resp.headers["Cache-Control"] == "no-store"
    await wait_for(lambda: len(gw.outbox()) == 1, what="outbox line")
    line = gw.outbox()[0]
    assert line["id"] == body["id"] and line["to"] == CN_MOBILE and line["body"] == TEXT
    assert line["provider"] == "outbox"

    async def sent() -> bool:
        r = await gw.http.get(f"/v1/messages/{body['id']}", headers=auth(token))
        return bool((await r.json())["status"] == "sent")

    await wait_for(sent, what="status sent")
    view = await (await gw.http.get(f"/v1/messages/{body['id']}", headers=auth(token))).json()
    assert [e["status"] for e in view["events"]] == ["queued", "sending", "sent"]
    assert view["provider"] == "outbox" and view["attempts"] == 1


async def test_segments_follow_destination(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await gw.key()
    long_cn = "【安心消费金融】" + "您" * 100  # 108 characters
    r = await gw.http.post("/v1/messages", json=msg(text=long_cn), headers=auth(token))
    assert (await r.json())["segments"] == 2  # mainland: ceil(108 / 67)
    gsm = "Your payment of $120.00 is due on Dec 8. " * 4  # 164 GSM-7 chars
    r = await gw.http.post("/v1/messages", json=msg(to=US_MOBILE, text=gsm), headers=auth(token))
    body = await r.json()
    assert (body["encoding"], body["segments"]) == ("GSM-7", 2)


async def test_national_number_with_region(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await gw.key()
    r = await gw.http.post(
        "/v1/messages", json=msg(to="138 1234 5678", region="CN"), headers=auth(token)
    )
    assert r.status == 202
    assert (await r.json())["to_masked"] == "+86 138****5678"


async def test_scheduled_message(start_gateway: Any) -> None:
    gw = await start_gateway()
    token = await gw.key()
    when = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    r = await gw.http.post(
        "/v1/messages", json=msg(scheduled_at=when.isoformat()), headers=auth(token)
    )
    body = await r.json()
    assert r.status == 202 and body["status"] == "scheduled"
    assert datetime.fromisoformat(body["scheduled_at"]) == when
    await asyncio.sleep(0.2)  # give the dispatcher several polls: it must not send early
    assert gw.outbox() == []


async def test_held_and_blocked(start_gateway: Any) -> None:
    gw = await start_gateway(stages=MARKER_STAGES)
    token = await gw.key()
    r = await gw.http.post("/v1/messages", json=msg(text=TEXT + "HOLDME"), headers=auth(token))
    held = await r.json()
    assert r.status == 202 and held["status"] == "held"
    assert held["findings"][0]["rule"] == "test.hold"

    r = await gw.http.post("/v1/messages", json=msg(text=TEXT + "BLOCKME"), headers=auth(token))
    assert r.status == 422
    assert r.content_type == "application/problem+json"
    blocked = await r.json()
    assert blocked["type"] == PROBLEM + "blocked" and blocked["status"] == "blocked"
    assert blocked["findings"][0]["start"] == len(TEXT)
    assert TEXT not in json.dumps(blocked, ensure_ascii=False)
    # the blocked message is kept, readable, terminal
    view = await (await gw.http.get(f"/v1/messages/{blocked['id']}", headers=auth(token))).json()
    assert view["status"] == "blocked"
    await asyncio.sleep(0.2)
    assert gw.outbox() == []


async def test_bad_requests_are_400(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await gw.key()
    h = {**auth(token), "Content-Type": "application/json"}
    cases: list[tuple[bytes, str]] = [
        (b"{not json", ""),
        (b"[1, 2]", ""),
        (json.dumps(msg(purpose="spam")).encode(), "purpose"),
        (json.dumps(msg(to="+8610123")).encode(), "to"),
        (json.dumps(msg(to="+861062345678")).encode(), "to"),  # Beijing landline
        (json.dumps(msg(to="13812345678")).encode(), "to"),  # national without region
        (json.dumps(msg(extra=1)).encode(), "extra"),
        (json.dumps(msg(template="x")).encode(), "text"),
        (json.dumps(msg(text="")).encode(), "text"),
        (json.dumps(msg(text="a\x00b")).encode(), "text"),
        (b'{"to": "+8613812345678", "borrower_id": "B", "purpose": "service", "text": "\\ud800"}',
         "text"),
        (json.dumps(msg(scheduled_at="tomorrow")).encode(), "scheduled_at"),
        (json.dumps(msg(scheduled_at="2026-12-01T10:00:00")).encode(), "scheduled_at"),
        (json.dumps(msg(callback_url="http://example.com/x")).encode(), "callback_url"),
        (json.dumps(msg(recipient_role="boss")).encode(), "recipient_role"),
        (b"\xff\xfe", ""),
        (b'{"a": NaN}', ""),
    ]  # fmt: skip
    for raw, field in cases:
        r = await gw.http.post("/v1/messages", data=raw, headers=h)
        assert r.status == 400, (raw, await r.text())
        problem = await r.json()
        assert problem["type"] == PROBLEM + "invalid"
        if field:
            assert field in {e["field"] for e in problem["errors"]}, problem
        assert "13812345678" not in await r.text()


async def test_idempotency_key_format(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await gw.key()
    for bad in ("", "x" * 256, "naïve"):
        r = await gw.http.post(
            "/v1/messages", json=msg(), headers={**auth(token), "Idempotency-Key": bad}
        )
        assert r.status == 400, bad


async def test_auth_401_and_403(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await gw.key()
    review = await gw.key(scopes=("review",))
    answers = []
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer lsk_nope"},
        {"Authorization": "Bearer " + token[:-2] + "xx"},
        {"Authorization": "Bearer lsk_aaaaaaaaaaaa_secret"},
    ):
        r = await gw.http.post("/v1/messages", json=msg(), headers=headers)
        assert r.status == 401
        answers.append(await r.json())
    assert all(a == answers[0] for a in answers)  # one answer for every kind of bad key
    r = await gw.http.post("/v1/messages", json=msg(), headers=auth(review))
    assert r.status == 403
    assert (await r.json())["type"] == PROBLEM + "forbidden"


async def test_revoked_key_is_401_at_once(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await gw.key()
    assert (await gw.http.post("/v1/messages", json=msg(), headers=auth(token))).status == 202
    key_id = token.split("_")[1]
    assert await gw.app[STORE].revoke_key(key_id, datetime.now(UTC))
    assert (await gw.http.post("/v1/messages", json=msg(), headers=auth(token))).status == 401


async def test_413_and_415(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await gw.key()
    big = json.dumps(msg(reference="x" * 70_000))
    r = await gw.http.post(
        "/v1/messages", data=big, headers={**auth(token), "Content-Type": "application/json"}
    )
    assert r.status == 413 and (await r.json())["type"] == PROBLEM + "payload-too-large"

    async def chunks() -> Any:
        for _ in range(80):
            yield b"x" * 1024

    r = await gw.http.post(
        "/v1/messages", data=chunks(), headers={**auth(token), "Content-Type": "application/json"}
    )
    assert r.status == 413
    r = await gw.http.post(
        "/v1/messages",
        data=json.dumps(msg()),
        headers={**auth(token), "Content-Type": "text/plain"},
    )
    assert r.status == 415 and (await r.json())["type"] == PROBLEM + "unsupported-media-type"


async def test_other_clients_message_is_404(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    acme, other = await gw.key("acme"), await gw.key("other")
    mid = (await (await gw.http.post("/v1/messages", json=msg(), headers=auth(acme))).json())["id"]
    for path in (f"/v1/messages/{mid}", f"/v1/messages/{mid}/cancel"):
        method = gw.http.get if path.endswith(mid) else gw.http.post
        r = await method(path, headers=auth(other))
        assert r.status == 404 and (await r.json())["type"] == PROBLEM + "not-found"
    r = await gw.http.get("/v1/messages/msg_doesnotexist", headers=auth(acme))
    assert r.status == 404


async def test_cancel(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await gw.key()
    mid = (await (await gw.http.post("/v1/messages", json=msg(), headers=auth(token))).json())["id"]
    r = await gw.http.post(f"/v1/messages/{mid}/cancel", headers=auth(token))
    assert r.status == 200 and (await r.json())["status"] == "cancelled"
    r = await gw.http.post(f"/v1/messages/{mid}/cancel", headers=auth(token))
    assert r.status == 409 and (await r.json())["type"] == PROBLEM + "conflict"


async def test_cancel_sent_message_is_409(start_gateway: Any) -> None:
    gw = await start_gateway()
    token = await gw.key()
    mid = (await (await gw.http.post("/v1/messages", json=msg(), headers=auth(token))).json())["id"]

    async def sent() -> bool:
        view = await (await gw.http.get(f"/v1/messages/{mid}", headers=auth(token))).json()
        return bool(view["status"] == "sent")

    await wait_for(sent, what="sent")
    assert (await gw.http.post(f"/v1/messages/{mid}/cancel", headers=auth(token))).status == 409


async def test_store_down_is_503_and_nothing_sent(start_gateway: Any) -> None:
    gw = await start_gateway()
    token = await gw.key()
    store = gw.app[STORE]
    await store._run(lambda db: db.close())  # the database goes away underneath
    r = await gw.http.post("/v1/messages", json=msg(), headers=auth(token))
    assert r.status == 503 and (await r.json())["type"] == PROBLEM + "unavailable"
    assert (await gw.http.get("/readyz")).status == 503
    await asyncio.sleep(0.1)
    assert gw.outbox() == []


async def test_unknown_route_and_method(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    r = await gw.http.get("/v1/nothing")
    assert r.status == 404 and r.content_type == "application/problem+json"
    r = await gw.http.delete("/v1/messages")
    assert r.status == 405 and r.content_type == "application/problem+json"
    assert "aiohttp" not in r.headers.get("Server", "")


async def test_client_throughput_limit_is_429(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await gw.key("slow")
    store = gw.app[STORE]
    client = await store.get_client("slow")
    await store.put_client(
        type(client)(id="slow", policy=client.policy, rate=2.0), webhook_secret=None, create=False
    )
    statuses = []
    for n in range(4):
        r = await gw.http.post(
            "/v1/messages", json=msg(), headers={**auth(token), "Idempotency-Key": f"r{n}"}
        )
        statuses.append(r.status)
    assert statuses == [202, 202, 429, 429]  # a burst of two, then the limit
    problem = await r.json()
    assert problem["type"] == PROBLEM + "rate-limited" and problem["rule"] == "client_rate"
    assert int(r.headers["Retry-After"]) >= 1
    # a 429 is not kept: once the bucket refills, the same key is accepted
    await asyncio.sleep(0.6)
    r = await gw.http.post(
        "/v1/messages", json=msg(), headers={**auth(token), "Idempotency-Key": "r3"}
    )
    assert r.status == 202 and "Idempotent-Replayed" not in r.headers
