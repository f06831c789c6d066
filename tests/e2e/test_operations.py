"""Issue 10 (operations): the metric catalogue after a traffic mix (acceptance
1), /readyz (acceptance 3). The promtool checks are in test_promtool.py, the
log capture in test_log_capture.py."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway import __version__
from gateway.appkeys import CONTACT, DISPATCHER, STORE, WEBHOOKS
from gateway.clock import FakeClock
from gateway.errors import StoreUnavailable
from gateway.store.delivery import WebhookJob
from providers.circuit import CircuitState
from tests.conftest import CN_MOBILE, Gateway, auth, wait_for
from tests.integration.test_audit_fail_closed import disk_full
from tests.policy.conftest import DAYTIME, OVERDUE
from tests.providers.fake_cn import ALI_ID, ALI_SECRET, FakeAliyun, aliyun_error

OTP = "【安心消费金融】您的验证码是{code}，5分钟内有效。"
PHONE_FAIL, PHONE_OK = "+8613912345678", "+8615012345678"
BLOCKED = "【安心消费金融】你这个老 赖，再不还钱就曝光你"
HELD = "【安心消费金融】如持续逾期，我司将依法提起诉讼。"

CATALOGUE = (
    "lendsms_messages_total", "lendsms_findings_total", "lendsms_cap_rejections_total",
    "lendsms_provider_requests_total", "lendsms_provider_request_duration_seconds",
    "lendsms_deliveries_total", "lendsms_queue_messages", "lendsms_oldest_queued_age_seconds",
    "lendsms_circuit_open", "lendsms_audit_append_duration_seconds",
    "lendsms_audit_failures_total", "lendsms_http_request_duration_seconds",
    "lendsms_build_info", "lendsms_webhooks_pending", "lendsms_webhooks_due",
    "lendsms_webhooks_oldest_due_seconds",
)  # fmt: skip


class Scrape:
    """A parsed /metrics answer: sample values by name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = [s for f in self.families.values() for s in f.samples]

    def value(self, name: str, **labels: str) -> float:
        found = [s.value for s in self.samples if s.name == name and s.labels == labels]
        assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
        return float(found[0])

    def labelled(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {
            tuple(sorted(s.labels.items())): float(s.value) for s in self.samples if s.name == name
        }

    def family_names(self) -> set[str]:
        # the parser names counters without their _total suffix
        out = set()
        for name, family in self.families.items():
            out.add(name + "_total" if family.type == "counter" else name)
        return out


async def scrape(gw: Gateway) -> Scrape:
    r = await gw.http.get("/metrics")
    assert r.status == 200 and r.content_type == "text/plain"
    return Scrape(await r.text())


@pytest.fixture
async def aliyun() -> AsyncIterator[FakeAliyun]:
    fake = FakeAliyun()
    await fake.start()
    yield fake
    await fake.close()


def aliyun_settings(ali: FakeAliyun) -> dict[str, Any]:
    return {
        "providers": {
            "ali": {"type": "aliyun", "endpoint": ali.url, "access_key_id": ALI_ID,
                    "access_key_secret": ALI_SECRET, "signature": "v3", "timeout": 2.0,
                    "callback_token": "ali-callback-token"},
        },
        "routes": [{"match": {"country": "CN"}, "providers": ["ali", "outbox"]},
                   {"providers": ["outbox"]}],
        "templates": {"otp_v1": {"purpose": "verification_code", "text": OTP,
                                 "codes": {"ali": "SMS_100"}}},
    }  # fmt: skip


async def post(gw: Gateway, token: str, **body: Any) -> tuple[int, dict[str, Any]]:
    body.setdefault("to", CN_MOBILE)
    body.setdefault("borrower_id", "B-1")
    r = await gw.http.post("/v1/messages", json=body, headers=auth(token))
    return r.status, dict(await r.json(content_type=None))


def otp(to: str, borrower: str) -> dict[str, Any]:
    return {"to": to, "borrower_id": borrower, "purpose": "verification_code",
            "template": "otp_v1", "params": {"code": "482913"}}  # fmt: skip


async def until(gw: Gateway, token: str, mid: str, status: str) -> dict[str, Any]:
    async def view() -> dict[str, Any]:
        r = await gw.http.get(f"/v1/messages/{mid}", headers=auth(token))
        return dict(await r.json())

    async def reached() -> bool:
        return bool((await view())["status"] == status)

    await wait_for(reached, what=f"{mid} {status}")
    return await view()


async def test_metrics_after_a_traffic_mix(start_gateway: Any, aliyun: FakeAliyun) -> None:
    clock = FakeClock(DAYTIME)  # 10:00 in Shanghai: inside the quiet-hours window
    gw = await start_gateway(contact_policy=True, clock=clock, **aliyun_settings(aliyun))
    token = await gw.key()
    answers: list[dict[str, Any]] = []

    # failed: the provider refuses the number for good
    aliyun.script = [aliyun_error("isv.MOBILE_NUMBER_ILLEGAL")]
    status, failed = await post(gw, token, **otp(PHONE_FAIL, "B-7"))
    assert status == 202 and failed["status"] == "queued"
    answers.append(failed)
    await until(gw, token, failed["id"], "failed")
    # sent, then delivered by a receipt
    status, sent = await post(gw, token, **otp(PHONE_OK, "B-8"))
    assert status == 202 and sent["status"] == "queued"
    answers.append(sent)
    await until(gw, token, sent["id"], "sent")
    biz_id = aliyun.records[-1]["biz_id"]
    receipt = [{"phone_number": PHONE_OK[3:], "success": True, "err_code": "DELIVERED",
                "biz_id": biz_id, "out_id": sent["id"], "sms_size": "1",
                "send_time": "2026-01-15 10:00:00"}]  # fmt: skip
    r = await gw.http.post("/callbacks/ali/status?token=ali-callback-token", json=receipt)
    assert r.status == 200
    await until(gw, token, sent["id"], "delivered")
    # capped: a second code to that number within the minute
    status, capped = await post(gw, token, **otp(PHONE_OK, "B-9"))
    assert status == 429 and capped["rule"] == "cap.verification_code.1m"
    # blocked, held, scheduled
    status, blocked = await post(gw, token, purpose="overdue_notice", text=BLOCKED)
    assert status == 422 and blocked["status"] == "blocked"
    status, held = await post(gw, token, purpose="overdue_notice", text=HELD)
    assert status == 202 and held["status"] == "held"
    later = (DAYTIME + timedelta(days=1)).isoformat()
    status, scheduled = await post(
        gw, token, purpose="overdue_notice", text=OVERDUE, scheduled_at=later
    )
    assert status == 202 and scheduled["status"] == "scheduled"
    answers += [blocked, held, scheduled]

    m = await scrape(gw)
    assert m.family_names() >= set(CATALOGUE)
    assert m.labelled("lendsms_messages_total") == {
        (("client", "acme"), ("outcome", "queued"), ("purpose", "verification_code")): 2.0,
        (("client", "acme"), ("outcome", "capped"), ("purpose", "verification_code")): 1.0,
        (("client", "acme"), ("outcome", "blocked"), ("purpose", "overdue_notice")): 1.0,
        (("client", "acme"), ("outcome", "held"), ("purpose", "overdue_notice")): 1.0,
        (("client", "acme"), ("outcome", "scheduled"), ("purpose", "overdue_notice")): 1.0,
    }
    expected_findings = Counter(
        (f["kind"], f["category"], f["action"]) for a in answers for f in a["findings"]
    )
    assert m.labelled("lendsms_findings_total") == {
        (("action", a), ("category", c), ("kind", k)): float(n)
        for (k, c, a), n in expected_findings.items()
    }
    assert any(f["action"] == "block" for f in blocked["findings"])
    assert any(f["action"] == "hold" for f in held["findings"])
    assert m.value("lendsms_cap_rejections_total", rule="cap.verification_code.1m") == 1
    assert m.value("lendsms_provider_requests_total", provider="ali", result="permanent") == 1
    assert m.value("lendsms_provider_requests_total", provider="ali", result="sent") == 1
    assert m.value("lendsms_provider_request_duration_seconds_count", provider="ali") == 2
    assert m.value("lendsms_deliveries_total", provider="ali", status="delivered") == 1
    assert m.value("lendsms_dispatch_outcomes_total", status="sent") == 1
    assert m.value("lendsms_dispatch_outcomes_total", status="failed") == 1
    assert m.value("lendsms_queue_messages", state="scheduled") == 1
    assert m.value("lendsms_queue_messages", state="queued") == 0
    assert m.value("lendsms_queue_messages", state="sending") == 0
    assert m.value("lendsms_oldest_queued_age_seconds") == 0  # the scheduled one is not due
    assert m.value("lendsms_circuit_open", provider="ali") == 0
    assert m.value("lendsms_circuit_open", provider="outbox") == 0
    # accepted x5, sending x2, sent, failed, receipt: each append timed, none failed
    assert m.value("lendsms_audit_append_duration_seconds_count") >= 10
    assert m.value("lendsms_audit_failures_total") == 0
    http = "lendsms_http_request_duration_seconds_count"
    assert m.value(http, route="/v1/messages", method="POST", status="202") == 4
    assert m.value(http, route="/v1/messages", method="POST", status="422") == 1
    assert m.value(http, route="/v1/messages", method="POST", status="429") == 1
    assert m.value(http, route="/callbacks/{name}/status", method="POST", status="200") == 1
    assert m.value(http, route="/v1/messages/{id}", method="GET", status="200") >= 3
    assert m.value("lendsms_build_info", version=__version__) == 1
    assert m.value("lendsms_ready") == 1
    # bounded labels: no number, borrower, message id or text anywhere in the scrape
    labels = json.dumps([s.labels for s in m.samples], ensure_ascii=False)
    for secret in (CN_MOBILE, PHONE_OK, PHONE_FAIL, "13812345678", "B-1", "B-7", "B-8",
                   "msg_", "逾期", "老 赖", biz_id, "ali-callback-token"):  # fmt: skip
        assert secret not in labels and secret not in m.text


async def test_queue_gauges_read_from_the_store(start_gateway: Any) -> None:
    clock = FakeClock(DAYTIME)
    gw = await start_gateway(dispatch=False, clock=clock)
    token = await gw.key()
    for n in range(2):
        status, _ = await post(gw, token, purpose="service", text=OVERDUE, borrower_id=f"B-{n}")
        assert status == 202
    clock.advance(30)
    status, _ = await post(gw, token, purpose="service", text=OVERDUE)
    later = (DAYTIME + timedelta(hours=2)).isoformat()
    status, body = await post(gw, token, purpose="service", text=OVERDUE, scheduled_at=later)
    assert status == 202 and body["status"] == "scheduled"
    clock.advance(60)
    m = await scrape(gw)
    assert m.value("lendsms_queue_messages", state="queued") == 3
    assert m.value("lendsms_queue_messages", state="scheduled") == 1
    assert m.value("lendsms_oldest_queued_age_seconds") == pytest.approx(90, abs=0.01)
    # the store goes away: /metrics still answers, the gauges keep their last values
    await close_underneath(gw.app[STORE]._run)
    m = await scrape(gw)
    assert m.value("lendsms_queue_messages", state="queued") == 3
    assert m.value("lendsms_ready") == 0


async def test_webhook_gauges_read_from_the_store(start_gateway: Any) -> None:
    clock = FakeClock(DAYTIME)
    gw = await start_gateway(dispatch=False, clock=clock)
    m = await scrape(gw)
    assert m.value("lendsms_webhooks_pending") == 0
    assert m.value("lendsms_webhooks_due") == 0
    assert m.value("lendsms_webhooks_oldest_due_seconds") == 0
    await gw.app[WEBHOOKS].close(0)  # no process delivers: the backlog stays
    store = gw.app[STORE]
    for n, at in enumerate((-90, -30, 3600)):  # two due, one waiting out a backoff
        await store.enqueue_webhook(
            WebhookJob(
                id=f"wh_{n}", message_id=f"msg_{n}", client_id="acme",
                url="https://lender.example/cb", body=b"{}", attempts=1,
                due=DAYTIME + timedelta(seconds=at),
            )
        )  # fmt: skip
    m = await scrape(gw)
    assert m.value("lendsms_webhooks_pending") == 3
    assert m.value("lendsms_webhooks_due") == 2
    assert m.value("lendsms_webhooks_oldest_due_seconds") == pytest.approx(90, abs=0.01)
    clock.advance(60)
    await store.finish_webhook("wh_0")
    m = await scrape(gw)
    assert m.value("lendsms_webhooks_pending") == 2
    assert m.value("lendsms_webhooks_oldest_due_seconds") == pytest.approx(90, abs=0.01)
    # the store goes away: the gauges keep their last values
    await close_underneath(store._run)  # type: ignore[attr-defined]
    m = await scrape(gw)
    assert m.value("lendsms_webhooks_pending") == 2


async def close_underneath(run: Any) -> None:
    """Close a SQLite store's connection on its own thread. A background read
    (the backpressure snapshot) can share the close's group commit, which then
    fails as a whole once the connection is gone: the close has run all the same."""
    with contextlib.suppress(StoreUnavailable):
        await run(lambda db: db.close())


# ------------------------------------------------------------------ /readyz


async def test_readyz_store_down_is_503_with_the_reason(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    r = await gw.http.get("/readyz")
    assert r.status == 200 and (await r.json())["status"] == "ready"
    await close_underneath(gw.app[STORE]._run)
    r = await gw.http.get("/readyz")
    body = await r.json()
    assert r.status == 503 and r.content_type == "application/json"
    assert body["status"] == "unavailable" and body["reasons"] == ["store unavailable"]
    assert (await gw.http.get("/healthz")).status == 200  # the process lives


async def test_readyz_reports_the_policy_store_ok(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False, contact_policy=True)
    r = await gw.http.get("/readyz")
    body = await r.json()
    assert r.status == 200 and body["status"] == "ready" and body["reasons"] == []
    assert body["policy"] == "ok" and "providers" in body
    assert (await scrape(gw)).value("lendsms_ready") == 1


async def test_readyz_policy_store_down_is_503_with_the_reason(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False, contact_policy=True, clock=FakeClock(DAYTIME))
    token = await gw.key()
    await close_underneath(gw.app[CONTACT].backend._run)  # the caps / opt-out store
    r = await gw.http.get("/readyz")
    body = await r.json()
    assert r.status == 503 and r.content_type == "application/json"
    assert body["status"] == "unavailable" and body["reasons"] == ["policy store unavailable"]
    assert body["policy"] == "unavailable"
    assert (await scrape(gw)).value("lendsms_ready") == 0
    status, _ = await post(gw, token, purpose="service", text=OVERDUE)
    assert status == 503  # acceptance fails closed all the same
    assert (await gw.http.get("/healthz")).status == 200


async def test_readyz_audit_unwritable_is_503_and_counted(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await gw.key()
    repair = disk_full(gw)
    try:
        status, _ = await post(gw, token, purpose="service", text=OVERDUE)
        assert status == 503
        r = await gw.http.get("/readyz")
        body = await r.json()
        assert r.status == 503 and body["reasons"] == ["audit log unwritable"]
        m = await scrape(gw)
        assert m.value("lendsms_audit_failures_total") >= 1
        assert m.value("lendsms_ready") == 0
    finally:
        repair()
    assert (await gw.http.get("/readyz")).status == 200


async def test_readyz_all_circuits_open_is_still_ready(start_gateway: Any) -> None:
    gw = await start_gateway(
        providers={"second": {"type": "outbox", "path": "var/second.jsonl"}},
        routes=[{"providers": ["outbox", "second"]}],
    )
    guards = gw.app[DISPATCHER].guards
    assert set(guards) == {"outbox", "second"}
    for guard in guards.values():
        for _ in range(guard.circuit.settings.min_calls):
            guard.circuit.record(False)
        assert guard.circuit.state is CircuitState.OPEN
    r = await gw.http.get("/readyz")
    body = await r.json()
    assert r.status == 200 and body["status"] == "ready" and body["reasons"] == []
    assert {n: p["circuit"] for n, p in body["providers"].items()} == {
        "outbox": "open",
        "second": "open",
    }
    m = await scrape(gw)
    assert m.value("lendsms_circuit_open", provider="outbox") == 1
    assert m.value("lendsms_circuit_open", provider="second") == 1
