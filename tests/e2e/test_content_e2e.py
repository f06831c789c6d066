"""The content policy through the real app (store, audit log, outbox):
acceptance 1 on ../shared/corpus/dev.jsonl, holds, blocks with offsets,
appended opt-out lines, recipient roles, attested templates, link domains."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.appkeys import STORE
from gateway.auth import new_key
from gateway.models import Client
from tests.conftest import CN_MOBILE, US_MOBILE, Gateway, auth

DEV = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "dev.jsonl"
# corpus/README.md: register the lenders' signatures for the client under test
DEV_SIGNATURES = ("中和消费金融", "易贷通", "众信小额贷款", "快贷宝")
PROBLEM = "https://lendsms.dev/problems/"


async def client_key(gw: Gateway, client: Client) -> str:
    store = gw.app[STORE]
    await store.put_client(client, webhook_secret=None, create=True)
    made = new_key(client.id, frozenset({"send"}), datetime.now(UTC))
    await store.add_key(made.key, made.secret_hash)
    return made.token


async def send(gw: Gateway, token: str, **body: Any) -> tuple[int, dict[str, Any]]:
    body.setdefault("borrower_id", "B-1")
    r = await gw.http.post("/v1/messages", json=body, headers=auth(token))
    return r.status, await r.json()


def stopped(status: int, answer: dict[str, Any]) -> bool:
    return status == 422 or (status == 202 and answer["status"] == "held")


@pytest.mark.skipif(not DEV.exists(), reason="shared corpus not present")
async def test_dev_corpus_every_stop_stopped_every_send_sent(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    cn = await client_key(gw, Client("dev-cn", "cn-collection", signatures=DEV_SIGNATURES))
    us = await client_key(gw, Client("dev-us", "us-fdcpa"))
    wrong: list[str] = []
    cases = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line]
    for case in cases:
        token, to = (cn, CN_MOBILE) if case["lang"] == "zh" else (us, US_MOBILE)
        status, answer = await send(gw, token, to=to, purpose=case["purpose"], text=case["text"])
        if case["expect"] == "stop" and not stopped(status, answer):
            wrong.append(f"{case['id']}: not stopped ({status})")
        if case["expect"] == "send" and not (
            status == 202 and answer["status"] in ("queued", "scheduled")
        ):
            wrong.append(f"{case['id']}: not sent ({status}, {answer.get('findings')})")
        if status == 422:
            assert answer["type"] == PROBLEM + "blocked"
            assert case["text"] not in json.dumps(answer, ensure_ascii=False)
    assert len(cases) >= 40
    assert not wrong, wrong


async def test_block_is_422_with_offsets_hold_is_202_held(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await gw.key()
    text = "【安心消费金融】你这个老 赖，再不还钱就曝光你"
    status, answer = await send(gw, token, to=CN_MOBILE, purpose="overdue_notice", text=text)
    assert status == 422 and answer["status"] == "blocked"
    content = [f for f in answer["findings"] if f["kind"] == "content"]
    assert {text[f["start"] : f["end"]] for f in content} >= {"老 赖", "曝光你"}
    assert all(f["rule"].startswith("cn.") and f["action"] == "block" for f in content)

    held = "【安心消费金融】如持续逾期，我司将依法提起诉讼。"
    status, answer = await send(gw, token, to=CN_MOBILE, purpose="overdue_notice", text=held)
    assert status == 202 and answer["status"] == "held"
    findings = answer["findings"]  # the statement, and who announces it
    assert "cn.legal_action.statement" in {f["rule"] for f in findings}
    assert all(f["category"] == "legal_action" and f["action"] == "hold" for f in findings)


async def test_attested_template_may_state_legal_action(start_gateway: Any) -> None:
    templates = {
        "legal_v1": {
            "purpose": "overdue_notice",
            "text": "【安心消费金融】您的借款已逾期{days}天，我司将依法提起诉讼。",
            "attests": ["legal_action_authorized"],
        },
        "plain_v1": {"purpose": "overdue_notice", "text": "【安心消费金融】{note}"},
    }
    gw = await start_gateway(dispatch=False, templates=templates)
    token = await gw.key()
    base = {"to": CN_MOBILE, "purpose": "overdue_notice"}
    status, answer = await send(gw, token, **base, template="legal_v1", params={"days": "30"})
    assert (status, answer["status"], answer["findings"]) == (202, "queued", [])
    # the same words through an unattested template, or in a parameter, are held
    status, answer = await send(
        gw, token, **base, template="plain_v1", params={"note": "我司将依法提起诉讼。"}
    )
    assert answer["status"] == "held"
    status, answer = await send(
        gw, token, **base, template="legal_v1", params={"days": "3天，再起诉"}
    )
    assert answer["status"] == "held"


async def test_us_opt_out_line_is_appended_to_the_sent_body(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await client_key(gw, Client("us-lender", "us-fdcpa"))
    text = "Bright Loans: $210.55 is due Dec 12"
    status, answer = await send(gw, token, to=US_MOBILE, purpose="repayment_reminder", text=text)
    assert status == 202 and answer["status"] == "queued"
    assert answer["body"] == (
        text + ". This is a communication from a debt collector. Reply STOP to opt out."
    )
    assert answer["findings"] == [
        {"kind": "content", "rule": "us.structure.disclosure", "category": "disclosure",
         "action": "append", "start": None, "end": None},
        {"kind": "content", "rule": "us.structure.opt_out", "category": "opt_out",
         "action": "append", "start": None, "end": None},
    ]  # fmt: skip


async def test_recipient_role_contact(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await gw.key()
    locate = "【安心消费金融】您好，请转告张先生尽快回电，谢谢。"
    debt = "【安心消费金融】您好，请转告张先生尽快还款。"
    base = {"to": CN_MOBILE, "purpose": "service", "recipient_role": "contact"}
    assert (await send(gw, token, **base, text=locate))[0] == 202
    status, answer = await send(gw, token, **base, text=debt)
    assert status == 422
    assert answer["findings"][0]["rule"] == "cn.third_party.debt_wording"
    assert (await send(gw, token, **{**base, "recipient_role": "borrower"}, text=debt))[0] == 202


async def test_signatures_and_link_domains_come_from_the_client(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    token = await client_key(
        gw,
        Client("yd", "cn-collection", signatures=("易贷通",), link_domains=("yidaitong.cn",)),
    )
    base = {"to": CN_MOBILE, "purpose": "repayment_reminder"}
    ok = "【易贷通】请登录 https://m.yidaitong.cn/pay 还款。"
    assert (await send(gw, token, **base, text=ok))[0] == 202
    status, answer = await send(gw, token, **base, text="【易贷通】请登录 http://yd-pay.top 还款。")
    assert status == 422 and answer["findings"][0]["rule"] == "cn.structure.link_domain"
    status, answer = await send(gw, token, **base, text="【快贷宝】您的账单已出。")
    assert status == 422 and answer["findings"][0]["rule"] == "cn.structure.signature"
    status, answer = await send(gw, token, **base, text="【北京市人民法院】您的账单已出。")
    assert status == 422
    assert "cn.structure.signature_authority" in {f["rule"] for f in answer["findings"]}


async def test_openapi_describes_recipient_role(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    doc = await (await gw.http.get("/openapi.json")).json()
    role = doc["components"]["schemas"]["SendRequest"]["properties"]["recipient_role"]
    assert role["enum"] == ["borrower", "contact"] and role["default"] == "borrower"
    assert "contact" in role["description"] and "debt wording" in role["description"]
