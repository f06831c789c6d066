"""The dispatcher's per-provider routing against a real SQLite store and audit log:
circuit breakers, attempt budgets (failover on exhausted retries), template codes and
free text, detailed status queries, time-to-live at retry, status listeners."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest

from config.settings import DispatchSettings, RouteSettings, TemplateSettings
from gateway.dispatch import Dispatcher
from gateway.metrics import Metrics
from gateway.models import Message, Status
from providers.base import (
    Capabilities,
    DeliveryState,
    OutboundSms,
    Outcome,
    ProviderError,
    SendResult,
    StatusResult,
)
from providers.circuit import CircuitSettings, CircuitState
from providers.limits import ProviderGuard, ProviderLimits
from providers.routing import Router
from tests.integration.test_dispatch import BASE, LEASE, Rig, ScriptedProvider, sent

TPL = TemplateSettings(
    id="overdue_v1", purpose="repayment_reminder", text="您的借款已逾期{days}天，应还{amount}元。",
    codes=MappingProxyType({"tc": "1234567", "ali": "SMS_1"}),
)  # fmt: skip
TPL_BODY = "【安心消费金融】您的借款已逾期3天，应还1086.40元。"
TPL_PARAMS = {"amount": "1086.40", "days": "3"}  # not in placeholder order on purpose


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(
    rig: Rig,
    *providers: ScriptedProvider,
    limits: dict[str, ProviderLimits] | None = None,
    ticker: Ticker | None = None,
    routes: Sequence[RouteSettings] | None = None,
    **options: Any,
) -> Dispatcher:
    for p in providers:
        p.audit, p.store = rig.audit, rig.store
    settings = {"workers": 2, "max_attempts": 6, "backoff_base": BASE, "backoff_max": 1000.0,
                "poll_interval": 0.02, "lease_seconds": LEASE, "provider_timeout": 0.1,
                **options}  # fmt: skip
    tick = ticker or Ticker()
    guards = {n: ProviderGuard(lim, tick) for n, lim in (limits or {}).items()}
    return Dispatcher(
        DispatchSettings(**settings), rig.store, rig.audit, {p.name: p for p in providers},
        Router(routes or [RouteSettings(providers=tuple(p.name for p in providers))]),
        rig.clock, Metrics(), owner="worker-1", guards=guards, templates={TPL.id: TPL},
    )  # fmt: skip


async def run_due(rig: Rig, d: Dispatcher, message_id: str) -> Message:
    """Move the fake clock to the message's due time and handle it once."""
    due = rig.due_at(message_id)
    if due is not None and due > rig.clock.now():
        rig.clock.set(due)
    await d.handle(await rig.claim_one(message_id))
    return await rig.get(message_id)


def busy() -> SendResult:
    return SendResult(Outcome.RETRY, code="RequestLimitExceeded")


async def test_failover_after_the_attempt_budget_is_spent(rig: Rig) -> None:
    tc = ScriptedProvider("tc", [busy(), busy()])
    ali = ScriptedProvider("ali", [sent("ali-1")])
    d = make(rig, tc, ali, limits={"tc": ProviderLimits(attempts=2)})
    m = await rig.accept()
    assert (await run_due(rig, d, m.id)).status is Status.QUEUED
    assert (await run_due(rig, d, m.id)).status is Status.QUEUED
    got = await run_due(rig, d, m.id)
    assert (got.status, got.provider, got.attempts) == (Status.SENT, "ali", 3)
    assert (len(tc.sent), len(ali.sent)) == (2, 1)


async def test_spent_budgets_start_over_with_the_least_tried(rig: Rig) -> None:
    tc = ScriptedProvider("tc", [busy(), sent("tc-2")])
    ali = ScriptedProvider("ali", [busy()])
    one = ProviderLimits(attempts=1)
    d = make(rig, tc, ali, limits={"tc": one, "ali": one})
    m = await rig.accept()
    await run_due(rig, d, m.id)
    await run_due(rig, d, m.id)
    got = await run_due(rig, d, m.id)
    assert (got.status, got.provider) == (Status.SENT, "tc")


async def test_circuit_opens_skips_the_provider_and_closes_after_a_probe(rig: Rig) -> None:
    tick = Ticker()
    circuit = CircuitSettings(min_calls=2, failure_rate=0.5, open_seconds=30)
    tc = ScriptedProvider("tc", [busy(), busy(), sent("tc-probe")])
    ali = ScriptedProvider("ali", [sent(f"ali-{i}") for i in range(3)])
    limits = {"tc": ProviderLimits(attempts=1, circuit=circuit), "ali": ProviderLimits()}
    d = make(rig, tc, ali, limits=limits, ticker=tick)
    first = await rig.accept()
    await run_due(rig, d, first.id)
    second = await rig.accept()
    await run_due(rig, d, second.id)
    assert d.guards["tc"].circuit.state is CircuitState.OPEN
    third = await rig.accept()
    got = await run_due(rig, d, third.id)  # straight to the secondary
    assert (got.status, got.provider, got.attempts) == (Status.SENT, "ali", 1)
    assert len(tc.sent) == 2
    tick.now += 30  # half-open: the next message probes the primary
    fourth = await rig.accept()
    got = await run_due(rig, d, fourth.id)
    assert (got.status, got.provider) == (Status.SENT, "tc")
    assert d.guards["tc"].circuit.state is CircuitState.CLOSED


async def test_all_circuits_open_requeues_without_an_attempt(rig: Rig) -> None:
    tick = Ticker()
    circuit = CircuitSettings(min_calls=1, failure_rate=1.0, open_seconds=45)
    tc = ScriptedProvider("tc", [busy()])
    d = make(rig, tc, limits={"tc": ProviderLimits(circuit=circuit)}, ticker=tick)
    m1 = await rig.accept()
    await run_due(rig, d, m1.id)
    m2 = await rig.accept()
    await d.handle(await rig.claim_one(m2.id))
    got = await rig.get(m2.id)
    assert (got.status, got.attempts, got.events[-1].detail) == (
        Status.QUEUED, 0, "circuit open: tc",
    )  # fmt: skip
    due = rig.due_at(m2.id)
    assert due is not None and (due - rig.clock.now()).total_seconds() == 45


def template_only(name: str, script: Sequence[object] = ()) -> ScriptedProvider:
    p = ScriptedProvider(name, script)
    p.capabilities = Capabilities(free_text=False, max_segments=10)
    return p


async def test_template_messages_carry_the_providers_code_and_ordered_params(rig: Rig) -> None:
    tc = template_only("tc", [sent("5000:1")])
    d = make(rig, tc)
    m = await rig.accept(template=TPL.id, params=TPL_PARAMS, body=TPL_BODY)
    got = await run_due(rig, d, m.id)
    assert got.status is Status.SENT
    sms: OutboundSms = tc.sent[0]
    assert (sms.template, sms.template_code) == ("overdue_v1", "1234567")
    assert list(sms.params.items()) == [("days", "3"), ("amount", "1086.40")]


async def test_free_text_goes_only_to_free_text_providers(rig: Rig) -> None:
    tc = template_only("tc")
    twilio = ScriptedProvider("tw", [sent("SM1")])
    d = make(rig, tc, twilio)
    m = await rig.accept()  # free text
    got = await run_due(rig, d, m.id)
    assert (got.status, got.provider) == (Status.SENT, "tw") and tc.sent == []
    alone = make(rig, template_only("tc"))
    m2 = await rig.accept()
    got = await run_due(rig, alone, m2.id)
    assert (got.status, got.events[-1].detail) == (
        Status.FAILED, "no provider on the route can carry it",
    )  # fmt: skip


async def test_a_template_without_a_code_or_with_masked_params_cannot_go_there(rig: Rig) -> None:
    aws = template_only("aws")  # no code in TPL.codes
    d = make(rig, aws)
    m = await rig.accept(template=TPL.id, params=TPL_PARAMS, body=TPL_BODY)
    assert (await run_due(rig, d, m.id)).status is Status.FAILED
    tc = template_only("tc")
    d2 = make(rig, tc)
    masked = TPL_BODY.replace("1086.40", "****.**")  # a filter rewrote a parameter
    m2 = await rig.accept(template=TPL.id, params=TPL_PARAMS, body=masked)
    assert (await run_due(rig, d2, m2.id)).status is Status.FAILED
    assert tc.sent == []


class DetailedProvider(ScriptedProvider):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.detailed: list[tuple[OutboundSms, str | None, datetime]] = []

    async def query_sms_status(
        self, sms: OutboundSms, provider_message_id: str | None, attempted_at: datetime
    ) -> StatusResult | None:
        self.detailed.append((sms, provider_message_id, attempted_at))
        return StatusResult(DeliveryState.DELIVERED, "biz-1")


async def test_a_detailed_status_query_gets_the_sms_and_the_attempt_time(rig: Rig) -> None:
    ali = DetailedProvider("ali", [ProviderError("timeout")], status_query=True)
    ali.capabilities = Capabilities(free_text=False, status_query=True)
    d = make(rig, ali)
    m = await rig.accept(template=TPL.id, params=TPL_PARAMS, body=TPL_BODY)
    attempted = rig.clock.now()
    got = await run_due(rig, d, m.id)
    assert (got.status, got.provider_message_id) == (Status.DELIVERED, "biz-1")
    sms, pmid, at = ali.detailed[0]
    assert (sms.to, sms.template_code, pmid, at) == (m.to, "SMS_1", None, attempted)
    assert ali.queries == []  # the plain query was not used


async def test_a_retry_past_the_time_to_live_expires_now(rig: Rig) -> None:
    p1 = ScriptedProvider("p1", [SendResult(Outcome.RETRY_LATER, code="limit", retry_after=600)])
    d = make(rig, p1)
    m = await rig.accept(purpose="verification_code",
                         expires_at=rig.clock.now() + timedelta(minutes=5))  # fmt: skip
    got = await run_due(rig, d, m.id)
    assert got.status is Status.EXPIRED
    assert got.events[-1].detail == "time-to-live passes before the next attempt (limit)"


async def test_status_listener_hears_each_final_status(rig: Rig) -> None:
    heard: list[tuple[str, Status]] = []

    async def listen(message: Message) -> None:
        heard.append((message.id, message.status))
        raise RuntimeError("a broken listener changes nothing")

    p1 = ScriptedProvider("p1", [sent()])
    d = make(rig, p1)
    d.on_status = listen
    m = await rig.accept()
    assert (await run_due(rig, d, m.id)).status is Status.SENT
    assert heard == [(m.id, Status.SENT)]


async def test_a_probe_that_never_ran_is_given_back(rig: Rig, monkeypatch: Any) -> None:
    from gateway.errors import StoreUnavailable

    tick = Ticker()
    circuit = CircuitSettings(min_calls=1, failure_rate=1.0, open_seconds=10)
    tc = ScriptedProvider("tc", [busy(), sent("tc-1")])
    d = make(rig, tc, limits={"tc": ProviderLimits(circuit=circuit)}, ticker=tick)
    m1 = await rig.accept()
    await run_due(rig, d, m1.id)
    tick.now += 10  # half-open
    real = rig.store.begin_attempt

    async def down(*args: Any, **kw: Any) -> Message:
        raise StoreUnavailable("disk full")

    monkeypatch.setattr(rig.store, "begin_attempt", down)
    m2 = await rig.accept()
    with pytest.raises(StoreUnavailable):
        await d.handle(await rig.claim_one(m2.id))
    monkeypatch.setattr(rig.store, "begin_attempt", real)
    assert d.guards["tc"].circuit.allow()  # the probe slot is free again


async def test_retry_ambiguous_requeues_where_the_operator_allows_it(rig: Rig) -> None:
    hook = ScriptedProvider("hook", [ProviderError("timeout"), sent("wh-2")])
    d = make(rig, hook, limits={"hook": ProviderLimits(retry_ambiguous=True)})
    m = await rig.accept()
    got = await run_due(rig, d, m.id)
    assert (got.status, got.events[-1].detail) == (Status.QUEUED, "retry: hook said timeout")
    got = await run_due(rig, d, m.id)
    assert (got.status, got.provider_message_id) == (Status.SENT, "wh-2")


async def test_a_provider_limited_to_some_countries(rig: Rig) -> None:
    cn_only = ScriptedProvider("cn", [sent()])
    cn_only.capabilities = Capabilities(countries=frozenset({"CN"}))
    anywhere = ScriptedProvider("any", [sent("any-1")])
    d = make(rig, cn_only, anywhere)
    us = await rig.accept(region="US", to="+12015550123")
    got = await run_due(rig, d, us.id)
    assert (got.status, got.provider) == (Status.SENT, "any") and cn_only.sent == []
