"""The PII stage in the pipeline: findings, masked body, block per pack; and
the same analysis through presidio's recognizer API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from config.policies import parse_pack, shipped_packs
from filters.pii import scan
from filters.pii.recognizers import (
    PRESIDIO_ENTITY,
    LendsmsBankCardRecognizer,
    LendsmsCnIdRecognizer,
    LendsmsEmailRecognizer,
    LendsmsMobileRecognizer,
    LendsmsNameRecognizer,
    LendsmsPassportRecognizer,
    LendsmsSsnRecognizer,
    lendsms_recognizers,
)
from gateway.models import Action, Client, Decision, Finding
from gateway.pipeline import Draft, NormalizeStage, Pipeline, default_stages
from gateway.schemas import SendRequest
from gateway.stages.pii import PiiStage

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "dev.jsonl"
STAGE = PiiStage()


def corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def draft(text: str, policy: str = "cn-collection") -> Draft:
    request = SendRequest(
        to="+8613812345678", region="CN", borrower_id="B-1", purpose="service", text=text
    )
    return Draft(
        request=request, client=Client(id="acme", policy=policy), now=datetime.now(UTC), body=text
    )


def test_pii_stage_runs_right_after_normalize() -> None:
    names = [stage.name for stage in default_stages()]
    assert names[:2] == ["normalize", "pii"]


async def test_findings_and_masked_body_through_the_pipeline() -> None:
    text = "【易贷通】尊敬的张三，放款已转入您的银行卡6227003909960308247。"
    done = await Pipeline([NormalizeStage(), PiiStage()]).run(draft(text))
    assert done.body == "【易贷通】尊敬的张*，放款已转入您的银行卡尾号8247。"
    assert done.decision is Decision.QUEUE
    card = text.index("6227003909960308247")
    assert done.findings == [
        Finding("pii", "pii.person_name", "person_name", Action.MASK, 8, 10),
        Finding("pii", "pii.bank_card", "bank_card", Action.MASK, card, card + 19),
    ]
    assert text[8:10] == "张三"
    assert done.segments is not None and done.segments.encoding == "UCS-2"


async def test_a_block_rule_blocks_and_still_masks_the_body() -> None:
    text = "Bright Loans: SSN 123-45-6789 is on file. Reply STOP to opt out."
    done = await Pipeline([NormalizeStage(), PiiStage()]).run(draft(text, "us-fdcpa"))
    assert done.decision is Decision.BLOCK
    assert [(f.rule, f.action) for f in done.findings] == [("pii.us_ssn", Action.BLOCK)]
    assert "123-45-6789" not in done.body
    masked = await Pipeline([NormalizeStage(), PiiStage()]).run(draft(text))
    assert masked.decision is Decision.QUEUE
    assert masked.body == "Bright Loans: SSN ***-**-6789 is on file. Reply STOP to opt out."


def test_no_pii_changes_nothing() -> None:
    result = STAGE.evaluate("【易贷通】验证码271846，10分钟内有效。", "cn-collection")
    assert result.findings == () and result.body is None and result.decision is None


def test_pack_formats_and_actions_are_used() -> None:
    pack = parse_pack(
        {
            "name": "strict",
            "language": "zh",
            "pii": {
                "bank_card": {"action": "mask", "mask": {"zh": "卡号{stars}{last4}"}},
                "email": {"action": "mask", "mask": "{first}…@{domain}"},
                "mobile": {"action": "block"},
            },
        },
        "strict.toml",
    )
    stage = PiiStage({"strict": pack})
    result = stage.evaluate("卡6227003909960308247，邮箱wang@example.com", "strict")
    assert result.body == "卡卡号***************8247，邮箱w…@example.com"
    assert result.decision is None
    blocked = stage.evaluate("手机18728194821", "strict")
    assert blocked.decision is Decision.BLOCK and blocked.body == "手机187****4821"


def test_unknown_pack_masks_with_the_defaults() -> None:
    result = STAGE.evaluate("身份证330106198805214046", "no-such-pack")
    assert result.body == "身份证**************4046"
    assert result.findings[0].action is Action.MASK


def test_a_body_rewritten_earlier_is_masked_itself() -> None:
    text = "手机18728194821"
    result = STAGE.evaluate(text, "cn-collection", body="【易贷通】" + text)
    assert result.body == "【易贷通】手机187****4821"
    assert [(f.start, f.end) for f in result.findings] == [(2, 13)]


def test_dev_corpus_masks_every_pii_value_and_keeps_every_keep_value() -> None:
    for case in corpus():
        policy = "cn-collection" if case["lang"] == "zh" else "us-fdcpa"
        result = STAGE.evaluate(case["text"], policy)
        body = case["text"] if result.body is None else result.body
        for value in case["pii"]:
            assert value not in body, case["id"]
            start = case["text"].index(value)
            covered = any(f.start <= start and start + len(value) <= f.end for f in result.findings)
            assert covered, case["id"]
        for value in case["keep"]:
            assert value in body, case["id"]
        if not case["pii"]:
            assert result.findings == (), case["id"]


def test_packs_used_by_the_stage_are_the_shipped_ones() -> None:
    assert STAGE.packs is shipped_packs()


# presidio's API over the same analysis


def test_lendsms_engine_finds_what_the_stage_finds() -> None:
    from gateway.stages.presidio_engines import lendsms_engine

    engine = lendsms_engine()
    for case in corpus():
        language = case["lang"]
        results = engine.analyze(case["text"], language=language)
        got = sorted((r.start, r.end, r.entity_type) for r in results)
        want = sorted((m.start, m.end, PRESIDIO_ENTITY[m.entity]) for m in scan(case["text"]))
        assert got == want, case["id"]
    text = "尊敬的张三，手机18728194821"
    only = engine.analyze(text, language="zh", entities=["PHONE_NUMBER"])
    assert [(r.entity_type, text[r.start : r.end]) for r in only] == [
        ("PHONE_NUMBER", "18728194821")
    ]


def test_recognizers_cover_every_entity() -> None:
    recognizers = lendsms_recognizers("zh")
    assert len({r.ENTITY for r in recognizers}) == len(recognizers) == 7
    assert all(r.supported_language == "zh" for r in recognizers)


@pytest.mark.parametrize(
    ("recognizer", "value", "expected"),
    [
        (LendsmsCnIdRecognizer(), "11010519491231002X", True),
        (LendsmsCnIdRecognizer(), "110105194912310021", None),
        (LendsmsCnIdRecognizer(), "990105194912310021", False),
        (LendsmsBankCardRecognizer(), "5555 5555 5555 4444", True),
        (LendsmsBankCardRecognizer(), "6222021234567890", None),
        (LendsmsBankCardRecognizer(), "1234", False),
        (LendsmsMobileRecognizer(), "187 2819 4821", True),
        (LendsmsMobileRecognizer(), "+44 7911 123456", True),
        (LendsmsMobileRecognizer(), "400-600-7000", False),
        (LendsmsMobileRecognizer(), "not a number", False),
        (LendsmsEmailRecognizer(), "li_na@example.net", True),
        (LendsmsEmailRecognizer(), "li_na@example", False),
        (LendsmsSsnRecognizer(), "123-45-6789", True),
        (LendsmsSsnRecognizer(), "666-45-6789", False),
        (LendsmsPassportRecognizer(), "E12345678", None),
        (LendsmsNameRecognizer(), "张三", None),
        (LendsmsNameRecognizer(), "欧阳娜娜", None),
        (LendsmsNameRecognizer(), "客户", False),
    ],
)
def test_validate_result(recognizer: Any, value: str, expected: bool | None) -> None:
    assert recognizer.validate_result(value) is expected
