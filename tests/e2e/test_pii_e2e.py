"""PII through the real app (store, audit log, dispatcher, outbox provider):
every dev.jsonl case is submitted; no PII value reaches the provider, no
``keep`` value is altered, and the 202 body is what the provider gets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.appkeys import STORE
from gateway.models import Client
from tests.conftest import CN_MOBILE, US_MOBILE, Gateway, auth, wait_for

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "dev.jsonl"
# the corpus's lenders (corpus/README.md: register them for the client)
SIGNATURES = ("中和消费金融", "易贷通", "众信小额贷款", "快贷宝")


def corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


async def client_key(gw: Gateway, client_id: str, policy: str, signatures: tuple[str, ...]) -> str:
    await gw.app[STORE].put_client(
        Client(id=client_id, policy=policy, signatures=signatures), webhook_secret=None, create=True
    )
    return await gw.key(client_id)


def digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


async def test_dev_corpus_no_pii_reaches_the_provider(start_gateway: Any) -> None:
    gw = await start_gateway()
    tokens = {
        "zh": await client_key(gw, "lender-cn", "cn-collection", SIGNATURES),
        "en": await client_key(gw, "lender-us", "us-fdcpa", ()),
    }
    cases = corpus()
    accepted: dict[str, dict[str, Any]] = {}  # message id -> case
    answers: dict[str, dict[str, Any]] = {}
    for case in cases:
        message = {
            "to": CN_MOBILE if case["lang"] == "zh" else US_MOBILE,
            "borrower_id": f"B-{case['id']}",
            "purpose": case["purpose"],
            "text": case["text"],
        }
        r = await gw.http.post("/v1/messages", json=message, headers=auth(tokens[case["lang"]]))
        answer = await r.json()
        assert r.status in (202, 422), (case["id"], answer)
        pii_findings = [f for f in answer["findings"] if f["kind"] == "pii"]
        for value in case["pii"]:  # found, with offsets into the submitted text
            start = case["text"].index(value)
            assert any(
                f["start"] <= start and start + len(value) <= f["end"] for f in pii_findings
            ), (case["id"], answer["findings"])
        if not case["pii"]:
            assert pii_findings == [], (case["id"], pii_findings)
        if r.status == 202:
            assert case["expect"] != "stop" or answer["status"] == "held", case["id"]
            for value in case["pii"]:
                assert value not in answer["body"] and digits(value) not in digits(answer["body"])
            if answer["status"] in ("queued", "scheduled"):
                accepted[answer["id"]] = case
                answers[answer["id"]] = answer
        else:
            assert case["expect"] != "send", (case["id"], answer)
    sendable = [c for c in cases if c["expect"] == "send"]
    assert len(accepted) >= len(sendable)

    await wait_for(lambda: len(gw.outbox()) == len(accepted), what="every accepted SMS sent")
    for line in gw.outbox():
        case = accepted[line["id"]]
        body = line["body"]
        assert body == answers[line["id"]]["body"]
        for value in case["pii"]:
            assert value not in body, case["id"]
            assert digits(value) not in digits(body), case["id"]
        for value in case["keep"]:
            assert value in body, (case["id"], value, body)
    reached = {accepted[line["id"]]["id"] for line in gw.outbox()}
    assert {c["id"] for c in sendable} <= reached


async def test_template_params_are_masked_in_the_rendered_body(start_gateway: Any) -> None:
    template = (
        "【易贷通】尊敬的{name}，您的银行卡{card}已绑定，登录手机号{mobile}，"
        "身份证{id_number}，账单发送至{email}。"
    )
    gw = await start_gateway(
        templates={"binding": {"purpose": "service", "text": template}},
    )
    token = await client_key(gw, "lender", "cn-collection", ("易贷通",))
    params = {
        "name": "张三",
        "card": "6227 0039 0996 0308 247",
        "mobile": "+86 187-2819-4821",
        "id_number": "３３０１０６１９８８０５２１４０４６",  # full-width digits
        "email": "Li_Na2020@Example.net",
    }
    r = await gw.http.post(
        "/v1/messages",
        json={
            "to": CN_MOBILE,
            "borrower_id": "B-1",
            "purpose": "service",
            "template": "binding",
            "params": params,
        },
        headers=auth(token),
    )
    answer = await r.json()
    assert r.status == 202, answer
    expected = (
        "【易贷通】尊敬的张*，您的银行卡尾号8247已绑定，登录手机号+86 187****4821，"
        "身份证**************4046，账单发送至L***@Example.net。"
    )
    assert answer["body"] == expected
    categories = [f["category"] for f in answer["findings"] if f["kind"] == "pii"]
    assert categories == ["person_name", "bank_card", "mobile", "cn_id", "email"]
    rendered = template.format(**params)
    starts = {f["category"]: rendered[f["start"] : f["end"]] for f in answer["findings"]}
    assert starts["cn_id"] == params["id_number"] and starts["person_name"] == "张三"
    await wait_for(lambda: len(gw.outbox()) == 1, what="the SMS sent")
    assert gw.outbox()[0]["body"] == expected


async def test_blocked_pii_never_reaches_the_provider(start_gateway: Any) -> None:
    gw = await start_gateway()
    token = await client_key(gw, "lender-us", "us-fdcpa", ())
    text = "Bright Loans: we have SSN 123-45-6789 on file. Reply STOP to opt out."
    r = await gw.http.post(
        "/v1/messages",
        json={"to": US_MOBILE, "borrower_id": "B-1", "purpose": "service", "text": text},
        headers=auth(token),
    )
    assert r.status == 422
    problem = await r.json()
    assert problem["status"] == "blocked"
    assert {"kind": "pii", "rule": "pii.us_ssn", "category": "us_ssn", "action": "block",
            "start": 26, "end": 37} in problem["findings"]  # fmt: skip
    assert "6789" not in json.dumps(problem)
    view = await (await gw.http.get(f"/v1/messages/{problem['id']}", headers=auth(token))).json()
    assert view["status"] == "blocked" and "123-45-6789" not in view["body"]
    await gw.http.post(  # a message after it goes out: the dispatcher is running
        "/v1/messages",
        json={"to": US_MOBILE, "borrower_id": "B-2", "purpose": "service",
              "text": "Bright Loans: payment received, thank you. Reply STOP to opt out."},
        headers=auth(token),
    )  # fmt: skip
    await wait_for(lambda: len(gw.outbox()) == 1, what="the next SMS sent")
    assert "123-45-6789" not in json.dumps(gw.outbox())
