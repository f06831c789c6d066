"""Idempotency exactly as API.md says (DESIGN.md invariant 3)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gateway.appkeys import STORE
from tests.conftest import auth, wait_for
from tests.e2e.test_messages_api import MARKER_STAGES, TEXT, msg


async def test_ten_concurrent_duplicates_give_one_message_and_one_sms(start_gateway: Any) -> None:
    gw = await start_gateway()
    token = await gw.key()
    headers = {**auth(token), "Idempotency-Key": "order-77812-notice-3"}
    responses = await asyncio.gather(
        *(gw.http.post("/v1/messages", json=msg(), headers=headers) for _ in range(10))
    )
    bodies = [await r.json() for r in responses]
    assert {r.status for r in responses} == {202}
    assert len({b["id"] for b in bodies}) == 1
    replayed = [r.headers.get("Idempotent-Replayed") for r in responses]
    assert replayed.count(None) == 1 and replayed.count("true") == 9
    await wait_for(lambda: len(gw.outbox()) >= 1, what="the SMS")
    await asyncio.sleep(0.3)  # several dispatcher polls: no second SMS may follow
    assert [line["id"] for line in gw.outbox()] == [bodies[0]["id"]]


async def test_replay_same_body_any_key_order(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await gw.key()
    headers = {**auth(token), "Idempotency-Key": "k-1", "Content-Type": "application/json"}
    first = await gw.http.post("/v1/messages", data=json.dumps(msg()), headers=headers)
    reordered = json.dumps(dict(reversed(list(msg().items()))), indent=2)
    again = await gw.http.post("/v1/messages", data=reordered, headers=headers)
    assert first.status == again.status == 202
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await first.json() == await again.json()


async def test_same_key_other_body_is_409(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await gw.key()
    headers = {**auth(token), "Idempotency-Key": "k-2"}
    assert (await gw.http.post("/v1/messages", json=msg(), headers=headers)).status == 202
    r = await gw.http.post("/v1/messages", json=msg(borrower_id="B-2"), headers=headers)
    assert r.status == 409
    assert (await r.json())["type"].endswith("/idempotency-conflict")


async def test_keys_are_per_client(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    a, b = await gw.key("acme"), await gw.key("other")
    ra = await gw.http.post("/v1/messages", json=msg(), headers={**auth(a), "Idempotency-Key": "k"})
    rb = await gw.http.post("/v1/messages", json=msg(), headers={**auth(b), "Idempotency-Key": "k"})
    assert ra.status == rb.status == 202
    assert (await ra.json())["id"] != (await rb.json())["id"]
    assert "Idempotent-Replayed" not in rb.headers


async def test_blocked_answer_is_replayed(start_gateway: Any) -> None:
    gw = await start_gateway(stages=MARKER_STAGES, dispatch=False)
    token = await gw.key()
    headers = {**auth(token), "Idempotency-Key": "k-3"}
    body = msg(text=TEXT + "BLOCKME")
    first = await gw.http.post("/v1/messages", json=body, headers=headers)
    again = await gw.http.post("/v1/messages", json=body, headers=headers)
    assert first.status == again.status == 422
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await first.json() == await again.json()


async def test_400_is_not_kept(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await gw.key()
    headers = {**auth(token), "Idempotency-Key": "k-4"}
    assert (
        await gw.http.post("/v1/messages", json=msg(purpose="x"), headers=headers)
    ).status == 400
    r = await gw.http.post("/v1/messages", json=msg(), headers=headers)
    assert r.status == 202 and "Idempotent-Replayed" not in r.headers


async def test_503_is_not_kept_and_retry_succeeds(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await gw.key()
    store = gw.app[STORE]
    headers = {**auth(token), "Idempotency-Key": "k-5"}
    original = store.commit_acceptance
    failures = 0

    async def failing_once(*args: Any, **kwargs: Any) -> None:
        nonlocal failures
        failures += 1
        from gateway.errors import StoreUnavailable

        raise StoreUnavailable("disk full")

    store.commit_acceptance = failing_once
    r = await gw.http.post("/v1/messages", json=msg(), headers=headers)
    assert r.status == 503 and failures == 1
    store.commit_acceptance = original
    r = await gw.http.post("/v1/messages", json=msg(), headers=headers)
    assert r.status == 202 and "Idempotent-Replayed" not in r.headers
