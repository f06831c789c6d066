"""The compliance-review API (API.md "Compliance review") through the real app,
store, contact policy, audit log and outbox: every endpoint and every refusal.

The pipeline is the real one with a marker stage in place of the content
filters (HOLDME holds, BLOCKME blocks), so that each test states plainly
why its messages stop; PII masking and the contact-policy stages are real."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from gateway.app import create_app
from gateway.appkeys import CONTACT, METRICS, STAGES, STORE
from gateway.clock import FakeClock
from gateway.models import Action, Decision, Finding
from gateway.pipeline import Draft, NormalizeStage, ScheduleStage, SegmentStage, StageResult
from gateway.review.passwords import hash_password_async
from gateway.review.service import REVIEWABLE, Actor, ReviewError, service_of
from gateway.stages.pii import PiiStage
from gateway.store.review import Reviewer, ReviewQuery
from tests.conftest import CN_MOBILE, Gateway, auth, wait_for
from tests.integration.test_audit_fail_closed import disk_full

DAYTIME = datetime(2026, 1, 15, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
NIGHT = datetime(2026, 1, 15, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai
PROBLEM = "https://lendsms.dev/problems/"
HOLD_TEXT = "【安心消费金融】张伟先生您好，HOLDME 请回电13912345678。"
BLOCK_TEXT = "【安心消费金融】BLOCKME 尊敬的客户，请尽快还款。"
PLAIN_TEXT = "【安心消费金融】尊敬的客户，您本期应还1,086.40元。"
OTHER_MOBILE = "+8613987654321"


class Marker:
    """HOLDME holds (category legal), BLOCKME blocks (category threat)."""

    name = "marker"

    async def __call__(self, draft: Draft) -> StageResult:
        text = draft.request.text
        for word, action, category in (("BLOCKME", Action.BLOCK, "threat"),
                                       ("HOLDME", Action.HOLD, "legal")):  # fmt: skip
            if (i := text.find(word)) >= 0:
                f = Finding("content", f"test.{category}", category, action, i, i + len(word))
                decision = Decision.BLOCK if action is Action.BLOCK else Decision.HOLD
                return StageResult(findings=(f,), decision=decision)
        return StageResult()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(DAYTIME)


@pytest.fixture
def review_gateway(
    aiohttp_client: Any, make_settings: Callable[..., Settings], clock: FakeClock
) -> Callable[..., Awaitable[Gateway]]:
    async def start(*, dispatch: bool = False) -> Gateway:
        settings = make_settings()
        app = create_app(settings, dispatch=dispatch, contact_policy=True, clock=clock)
        contact = app[CONTACT]
        assert contact is not None
        app[STAGES] = (NormalizeStage(), PiiStage(), Marker(), ScheduleStage(),
                       *contact.stages(), SegmentStage())  # fmt: skip
        return Gateway(await aiohttp_client(app), settings)

    return start


class Review:
    """A started gateway with keys: ``send`` for acme and globex, ``review``
    for acme, ``review`` + ``audit`` for acme, ``review`` + ``admin``."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.send: dict[str, str] = {}
        self.review = self.audit = self.admin = ""

    async def keys(self) -> Review:
        for client in ("acme", "globex"):
            self.send[client] = await self.gw.key(client, ("send",))
        self.review = await self.gw.key("acme", ("review",))
        self.audit = await self.gw.key("acme", ("review", "audit"))
        self.admin = await self.gw.key("acme", ("review", "admin"))
        return self

    async def submit(self, text: str, *, client: str = "acme", **over: Any) -> dict[str, Any]:
        body = {"to": CN_MOBILE, "borrower_id": "B-1", "purpose": "overdue_notice", "text": text}
        body.update(over)
        resp = await self.gw.http.post("/v1/messages", json=body, headers=auth(self.send[client]))
        assert resp.status in (202, 422), await resp.text()
        return dict(await resp.json())

    async def get(self, path: str, token: str, status: int = 200) -> Any:
        resp = await self.gw.http.get(path, headers=auth(token))
        assert resp.status == status, await resp.text()
        return await resp.json()

    async def post(self, path: str, token: str, body: Any, status: int = 200) -> Any:
        resp = await self.gw.http.post(path, json=body, headers=auth(token))
        assert resp.status == status, await resp.text()
        return await resp.json()

    async def listing(self, token: str, query: str = "") -> list[str]:
        page = await self.get(f"/v1/review/messages{query}", token)
        return [m["id"] for m in page["messages"]]

    def audit_records(self, message_id: str) -> list[dict[str, Any]]:
        out = []
        for segment in sorted((self.gw.settings.base_dir / "var" / "audit").glob("*.jsonl")):
            for raw in Path(segment).read_text(encoding="utf-8").splitlines():
                record = json.loads(raw)
                if record.get("message_id") == message_id:
                    out.append(record)
        return out


@pytest.fixture
def review(review_gateway: Callable[..., Awaitable[Gateway]]) -> Callable[..., Awaitable[Review]]:
    async def start(**kwargs: Any) -> Review:
        return await Review(await review_gateway(**kwargs)).keys()

    return start


def url(message_id: str, action: str = "") -> str:
    return f"/v1/review/messages/{message_id}" + (f"/{action}" if action else "")


# -- authentication and scopes ------------------------------------------------------
async def test_every_endpoint_wants_a_key_and_the_right_scope(review: Any) -> None:
    r = await review()
    held = (await r.submit(HOLD_TEXT))["id"]
    gets = ["/v1/review/messages", url(held), "/v1/review/summary"]
    posts = [(url(held, "approve"), "comment"), (url(held, "reject"), "comment"),
             (url(held, "reveal"), "reason")]  # fmt: skip
    for path in gets:
        resp = await r.gw.http.get(path)
        assert resp.status == 401 and (await resp.json())["type"] == PROBLEM + "unauthorized"
        body = await r.get(path, r.send["acme"], status=403)
        assert body["type"] == PROBLEM + "forbidden"
    for path, field in posts:
        resp = await r.gw.http.post(path, json={field: "ok"})
        assert resp.status == 401
        body = await r.post(path, r.send["acme"], {field: "ok"}, status=403)
        assert body["type"] == PROBLEM + "forbidden"
    # reveal is scope audit: a review-only key may not
    body = await r.post(url(held, "reveal"), r.review, {"reason": "check"}, status=403)
    assert "audit" in body["detail"]
    assert (await r.get(url(held), r.review))["status"] == "held"  # nothing changed


# -- listing --------------------------------------------------------------------------
async def test_listing_filters_and_masks(review: Any, clock: FakeClock) -> None:
    r = await review()
    held = (await r.submit(HOLD_TEXT))["id"]
    clock.advance(60)
    blocked = (await r.submit(BLOCK_TEXT, purpose="repayment_reminder"))["id"]
    clock.advance(60)
    await r.post("/v1/opt-outs", r.send["acme"], {"to": OTHER_MOBILE, "scope": "all"}, 201)
    opted_out = (await r.submit(PLAIN_TEXT, to=OTHER_MOBILE))["id"]
    clock.advance(60)
    other = (await r.submit(HOLD_TEXT, client="globex"))["id"]
    await r.submit(PLAIN_TEXT, borrower_id="B-2")  # queued: never in review

    # default: content holds and blocks of the key's own client, newest first
    assert await r.listing(r.review) == [blocked, held]
    assert await r.listing(r.review, "?source=policy") == [opted_out]
    assert await r.listing(r.review, "?source=all") == [opted_out, blocked, held]
    assert await r.listing(r.review, "?status=held") == [held]
    assert await r.listing(r.review, "?status=blocked&source=all") == [opted_out, blocked]
    assert await r.listing(r.review, "?purpose=repayment_reminder") == [blocked]
    assert await r.listing(r.review, "?category=legal") == [held]
    assert await r.listing(r.review, "?category=mobile") == [held]  # a PII finding's category
    since = (DAYTIME + timedelta(seconds=30)).isoformat()
    until = (DAYTIME + timedelta(seconds=90)).isoformat()
    assert await r.listing(r.review, f"?after={since.replace('+', '%2B')}") == [blocked]
    assert await r.listing(r.review, f"?before={until.replace('+', '%2B')}") == [blocked, held]
    # a client filter is clamped to the key's client; admin sees every client
    assert await r.listing(r.review, "?client=globex") == []
    assert await r.listing(r.admin) == [other, blocked, held]
    assert await r.listing(r.admin, "?client=globex") == [other]

    page = await r.get("/v1/review/messages?status=held", r.review)
    [item] = page["messages"]
    raw = json.dumps(page, ensure_ascii=False)
    for secret in (CN_MOBILE, CN_MOBILE[1:], "13912345678", "张伟", "B-1"):
        assert secret not in raw
    assert item["body"] == "【安心消费金融】张*先生您好，HOLDME 请回电139****5678。"
    assert item["to_masked"] == "+86 138****5678" and item["client_id"] == "acme"
    legal = next(f for f in item["findings"] if f["rule"] == "test.legal")
    assert legal["description"] and legal["action"] == "hold"
    assert page["next_cursor"] is None


async def test_listing_refuses_bad_filters(review: Any) -> None:
    r = await review()
    for query in (
        "status=rejected",
        "status=queued",
        "source=everything",
        "purpose=loans",
        "limit=0",
        "limit=201",
        "limit=x",
        "after=yesterday",
        "before=2026-01-01T00:00:00",
        "cursor=nonsense",
        "category=" + "c" * 65,
    ):
        body = await r.get(f"/v1/review/messages?{query}", r.review, status=400)
        assert body["type"] == PROBLEM + "invalid", query  # fmt: skip


async def test_pagination_walks_every_message_once(review: Any, clock: FakeClock) -> None:
    r = await review()
    made = []
    for n in range(5):
        made.append((await r.submit(HOLD_TEXT, purpose="service"))["id"])  # no caps
        clock.advance(1 if n % 2 else 0)  # some share a created_at
    seen: list[str] = []
    cursor = ""
    for _ in range(3):
        page = await r.get(f"/v1/review/messages?limit=2{cursor}", r.review)
        seen += [m["id"] for m in page["messages"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert page["next_cursor"] is None
    assert sorted(seen) == sorted(made) and len(seen) == 5
    assert seen == sorted(made, reverse=True)  # ids are time-ordered: newest first


# -- one message ----------------------------------------------------------------------
async def test_detail_highlights_the_masked_body(review: Any) -> None:
    r = await review()
    held = (await r.submit(HOLD_TEXT))["id"]
    item = await r.get(url(held), r.review)
    assert "".join(s["text"] for s in item["highlights"]) == item["body"]
    marked = {s["text"]: [item["findings"][i]["rule"] for i in s["findings"]]
              for s in item["highlights"] if s["findings"]}  # fmt: skip
    assert marked == {"张*": ["pii.person_name"], "HOLDME": ["test.legal"],
                      "139****5678": ["pii.mobile"]}  # fmt: skip
    assert item["events"][0]["status"] == "held"
    assert CN_MOBILE not in json.dumps(item) and "13912345678" not in json.dumps(item)


async def test_messages_out_of_review_or_of_other_clients_are_404(review: Any) -> None:
    r = await review()
    other = (await r.submit(HOLD_TEXT, client="globex"))["id"]
    queued = (await r.submit(PLAIN_TEXT))["id"]
    for mid in (other, queued, "msg_unknown", "x" * 65):
        body = await r.get(url(mid), r.review, status=404)
        assert body["type"] == PROBLEM + "not-found"
        for action, field in (("approve", "comment"), ("reject", "comment"),
                              ("reveal", "reason")):  # fmt: skip
            await r.post(url(mid, action), r.audit, {field: "looked"}, status=404)
    assert (await r.get(url(other), r.admin))["id"] == other


# -- approve --------------------------------------------------------------------------
async def test_approve_sends_through_the_normal_path(review: Any) -> None:
    r = await review(dispatch=True)
    held = (await r.submit(HOLD_TEXT))["id"]
    item = await r.post(url(held, "approve"), r.review, {"comment": "  context is fine  "})
    assert item["status"] == "queued"
    await wait_for(lambda: any(line["id"] == held for line in r.gw.outbox()), what="outbox")
    line = next(line for line in r.gw.outbox() if line["id"] == held)
    assert line["to"] == CN_MOBILE and line["body"] == item["body"]
    # approving again, or rejecting now, is 409 not_held
    again = await r.post(url(held, "approve"), r.review, {"comment": "again"}, status=409)
    assert again["type"] == PROBLEM + "conflict" and again["reason"] == "not_held"
    await r.post(url(held, "reject"), r.review, {"comment": "late"}, status=409)
    [approved] = [x for x in r.audit_records(held) if x["event"] == "review_approved"]
    key_id = r.review.split("_")[1]
    assert approved["clear"] == {"client": "acme", "reviewer": f"key:{key_id}",
                                 "status": "queued"}  # fmt: skip
    assert "context is fine" not in json.dumps(approved)  # the comment is sealed
    assert r.gw.app[METRICS].review_actions.labels("approved")._value.get() == 1


async def test_approve_or_reject_a_blocked_message_is_409(review: Any) -> None:
    r = await review()
    blocked = (await r.submit(BLOCK_TEXT))["id"]
    for action in ("approve", "reject"):
        body = await r.post(url(blocked, action), r.review, {"comment": "no"}, status=409)
        assert body["reason"] == "not_held"
    assert (await r.get(url(blocked), r.review))["status"] == "blocked"
    assert [x["event"] for x in r.audit_records(blocked)] == ["accepted"]


async def test_comment_is_required(review: Any) -> None:
    r = await review()
    held = (await r.submit(HOLD_TEXT))["id"]
    for body in (
        {},
        {"comment": ""},
        {"comment": "   "},
        {"comment": "x" * 1001},
        {"comment": 5},
        {"comment": "ok", "extra": 1},
        ["comment"],
    ):
        answer = await r.post(url(held, "approve"), r.review, body, status=400)
        assert answer["type"] == PROBLEM + "invalid"  # fmt: skip
    resp = await r.gw.http.post(
        url(held, "reject"),
        data="comment=x",
        headers={**auth(r.review), "Content-Type": "text/plain"},
    )
    assert resp.status == 415  # fmt: skip
    assert (await r.get(url(held), r.review))["status"] == "held"


async def test_approve_over_a_cap_is_409_and_stays_held(review: Any, clock: FakeClock) -> None:
    r = await review()
    reminder = {"purpose": "repayment_reminder"}  # 2 a day per borrower
    held = (await r.submit(HOLD_TEXT, **reminder))["id"]
    clock.advance(24 * 3600)  # the next day: the held one's reservation was yesterday's
    for _ in range(2):
        assert (await r.submit(PLAIN_TEXT, **reminder))["status"] == "queued"
    body = await r.post(url(held, "approve"), r.review, {"comment": "fine"}, status=409)
    assert body["rule"] == "cap.repayment_reminder.day" and body["reason"] == "policy"
    assert (await r.get(url(held), r.review))["status"] == "held"
    events = [x["event"] for x in r.audit_records(held)]
    assert "review_approved" not in events and "review_refused" in events
    # the next day the cap has room again
    clock.advance(24 * 3600)
    assert (await r.post(url(held, "approve"), r.review, {"comment": "ok"}))["status"] == "queued"


async def test_approve_after_an_opt_out_is_409(review: Any) -> None:
    r = await review()
    held = (await r.submit(HOLD_TEXT))["id"]
    await r.post("/v1/opt-outs", r.send["acme"], {"to": CN_MOBILE, "scope": "all"}, 201)
    body = await r.post(url(held, "approve"), r.review, {"comment": "fine"}, status=409)
    assert body["rule"] == "opt_out"
    assert (await r.get(url(held), r.review))["status"] == "held"


async def test_approve_in_quiet_hours_schedules(review: Any, clock: FakeClock) -> None:
    r = await review()
    held = (await r.submit(HOLD_TEXT))["id"]
    clock.set(NIGHT)
    item = await r.post(url(held, "approve"), r.review, {"comment": "fine"})
    assert item["status"] == "scheduled"
    when = datetime.fromisoformat(item["scheduled_at"])
    opening = datetime(2026, 1, 16, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    assert opening <= when < opening + timedelta(minutes=10)


# -- reject ---------------------------------------------------------------------------
async def test_reject_ends_rejected_and_gives_the_cap_back(review: Any) -> None:
    r = await review()
    overdue = {"purpose": "overdue_notice"}  # 3 a day per borrower
    held = [(await r.submit(HOLD_TEXT, **overdue))["id"] for _ in range(3)]
    resp = await r.gw.http.post("/v1/messages", headers=auth(r.send["acme"]), json={
        "to": CN_MOBILE, "borrower_id": "B-1", "text": PLAIN_TEXT, **overdue})  # fmt: skip
    assert resp.status == 429  # the held ones hold the day's three
    item = await r.post(url(held[0], "reject"), r.review, {"comment": "tone"})
    assert item["status"] == "rejected"
    assert (await r.submit(PLAIN_TEXT, **overdue))["status"] == "queued"
    again = await r.post(url(held[0], "reject"), r.review, {"comment": "x"}, status=409)
    assert again["reason"] == "not_held"
    assert (await r.get(url(held[0]), r.review))["status"] == "rejected"  # still reviewable
    [rejected] = [x for x in r.audit_records(held[0]) if x["event"] == "review_rejected"]
    assert rejected["clear"]["status"] == "rejected"
    assert rejected["clear"]["reviewer"].startswith("key:")


# -- reveal ---------------------------------------------------------------------------
async def test_reveal_is_audited_and_not_cached(review: Any) -> None:
    r = await review()
    held = (await r.submit(HOLD_TEXT))["id"]
    for bad in ({}, {"reason": " "}, {"reason": "x" * 501}):
        await r.post(url(held, "reveal"), r.audit, bad, status=400)
    assert [x["event"] for x in r.audit_records(held)] == ["accepted"]
    resp = await r.gw.http.post(url(held, "reveal"), json={"reason": "complaint 77"},
                                headers=auth(r.audit))  # fmt: skip
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    shown = await resp.json()
    assert shown == {"id": held, "to": CN_MOBILE, "text": HOLD_TEXT,
                     "body": "【安心消费金融】张*先生您好，HOLDME 请回电139****5678。"}  # fmt: skip
    [record] = [x for x in r.audit_records(held) if x["event"] == "review_revealed"]
    assert record["clear"]["reviewer"] == "key:" + r.audit.split("_")[1]
    assert "complaint 77" not in json.dumps(record)


# -- summary --------------------------------------------------------------------------
async def test_summary_counts_by_category_and_day(review: Any, clock: FakeClock) -> None:
    r = await review()
    held = (await r.submit(HOLD_TEXT))["id"]
    await r.submit(BLOCK_TEXT)
    await r.post(url(held, "reject"), r.review, {"comment": "no"})
    clock.advance(24 * 3600)
    await r.submit(HOLD_TEXT, borrower_id="B-9")
    await r.submit(HOLD_TEXT, client="globex")  # not the key's client
    since = (DAYTIME - timedelta(hours=1)).isoformat().replace("+", "%2B")
    body = await r.get(f"/v1/review/summary?since={since}", r.review)
    assert body["by_category"] == {"legal": 2, "threat": 1}
    assert body["by_day"] == [
        {"day": "2026-01-15", "held": 0, "blocked": 1, "rejected": 1, "approved": 0},
        {"day": "2026-01-16", "held": 1, "blocked": 0, "rejected": 0, "approved": 0},
    ]
    for query in (
        "since=yesterday",
        f"since={since}&until={since}",
        "since=2020-01-01T00:00:00Z&until=2026-01-01T00:00:00Z",
    ):
        await r.get(f"/v1/review/summary?{query}", r.review, status=400)  # fmt: skip


# -- a reviewer (a person, as the /review page signs them in) ------------------------
async def test_a_signed_in_reviewer_acts_under_their_name(review: Any) -> None:
    r = await review()
    held = (await r.submit(HOLD_TEXT))["id"]
    other = (await r.submit(HOLD_TEXT, client="globex"))["id"]
    store, service = r.gw.app[STORE], service_of(r.gw.app)
    password = "a long enough secret"
    ana = Reviewer("Ana Li", can_reveal=False, clients=("acme",), created_at=DAYTIME)
    await store.put_reviewer(ana, await hash_password_async(password), create=True)
    assert await service.authenticate("Ana Li", password) == ana
    for name, pw in (("Ana Li", password + "!"), ("Nobody", password), ("", password)):
        assert await service.authenticate(name, pw) is None
    actor = Actor.of_reviewer(ana)
    assert [m.id for m in (await service.list(actor, ReviewQuery(REVIEWABLE))).messages] == [held]
    with pytest.raises(ReviewError) as refused:
        await service.get(actor, other)
    assert refused.value.status == 404
    with pytest.raises(ReviewError) as refused:
        await service.reveal(actor, held, "curious")
    assert refused.value.status == 403
    item = await service.get(actor, held)
    assert item.message.id == held and any(s.findings for s in item.highlights)
    assert (await service.reject(actor, held, "wording")).status == "rejected"
    [record] = [x for x in r.audit_records(held) if x["event"] == "review_rejected"]
    assert record["clear"]["reviewer"] == "Ana Li"
    disabled = replace(ana, disabled_at=DAYTIME)
    await store.put_reviewer(disabled, await hash_password_async(password), create=False)
    assert await service.authenticate("Ana Li", password) is None


async def test_no_audit_record_no_action(review: Any) -> None:
    r = await review()
    held = (await r.submit(HOLD_TEXT))["id"]
    repair = disk_full(r.gw)  # a real ENOSPC on the audit segment
    try:
        for action, field in (("approve", "comment"), ("reject", "comment"),
                              ("reveal", "reason")):  # fmt: skip
            body = await r.post(url(held, action), r.audit, {field: "now"}, status=503)
            assert body["type"] == PROBLEM + "unavailable"
            assert CN_MOBILE not in json.dumps(body) and "HOLDME" not in json.dumps(body)
        assert (await r.get(url(held), r.review))["status"] == "held"
    finally:
        repair()
