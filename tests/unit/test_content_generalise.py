"""The general mechanisms added after the held-out dev analysis (issue #4):
homophone spellings, fraud-warning sentences (and why they never save a
threat), the FDCPA disclosure option and the time-barred attestation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from config.content import load_content_pack
from config.content_homophones import Homophones, spellings
from config.content_lexicon import ContentPackError
from filters.content import ContentFilter, ContentResult
from tests.unit.content_helpers import SIG, check

CONFIG = Path(__file__).resolve().parents[2] / "config"
OPT_OUT = " Reply STOP to opt out."


def stopping(result: ContentResult) -> set[str]:
    return {f.rule for f in result.findings if f.action != "append"}


def test_spellings_replace_one_or_two_characters_and_keep_real_words() -> None:
    table = Homophones({"坐": "做座", "牢": "劳", "拘": "居", "留": "流"}, keep=("居留",))
    assert spellings("坐牢", table) == ["做牢", "座牢", "坐劳", "做劳", "座劳"]
    assert "居留" not in spellings("拘留", table) and "拘流" in spellings("拘留", table)
    assert spellings("还款", table) == []


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ("再拖就让你去做牢", "cn.false_legal.criminal"),
        ("等着座牢吧", "cn.false_legal.criminal"),
        ("明天就对你拘流", "cn.false_legal.criminal"),
        ("加我薇信私下处理", "cn.private_channel.contact"),
        ("马上暴你通讯录", "cn.exposure.third_party"),
        ("你这个老癞", "cn.insult.label"),
    ],
)
def test_homophone_spellings_of_block_terms_block(cn: ContentFilter, body: str, rule: str) -> None:
    result = check(cn, SIG + body)
    assert result.decision == "block" and rule in stopping(result)


def test_homophone_table_does_not_touch_ordinary_words(cn: ContentFilter) -> None:
    for body in ("维信金科提醒您按时还款。", "您的居留许可信息已更新。", "您的借款已结清。"):
        assert check(cn, SIG + body, "service").decision is None, body


def test_rules_asking_for_homophones_need_the_file(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    pack = tmp_path / "policies" / "cn-collection.toml"
    shutil.copy(CONFIG / "policies" / "cn-collection.toml", pack)
    lexicons = tmp_path / "lexicons" / "cn-collection"
    shutil.copytree(CONFIG / "lexicons" / "cn-collection", lexicons)
    (lexicons / "homophones.toml").unlink()
    with pytest.raises(ContentPackError, match="homophones"):
        load_content_pack(pack)


@pytest.mark.parametrize(
    "body",
    [
        "谨防电信诈骗：骗子常冒充警察称您涉嫌洗钱将被逮捕、拘留，请勿相信。",
        "公安机关提醒：凡是自称民警要求转账的都是诈骗。",
        "如有争议，您可依法通过诉讼、仲裁途径维权。",
        "我司工作人员不会以解冻费、保证金为由要求您转账。",
        "APP已开通在线律师咨询服务。",
    ],
)
def test_anti_fraud_and_rights_sentences_are_sent(cn: ContentFilter, body: str) -> None:
    assert check(cn, SIG + body, "service").decision is None


@pytest.mark.parametrize(
    "body",
    [
        "别以为这是诈骗短信，再不还就等着坐牢。",  # a negated frame
        "这不是诈骗，警察明天就来抓你。",
        "你涉嫌诈骗，警方将对你刑拘。",  # the context word is part of the threat
        "我们不会让你坐牢的，只要你还钱。",  # negation does not save a threat
    ],
)
def test_fraud_words_never_save_a_threat(cn: ContentFilter, body: str) -> None:
    assert check(cn, SIG + body).decision == "block"


def test_us_anti_scam_notices_and_negated_frames(us: ContentFilter) -> None:
    notice = "Scam alert: we will never threaten you with arrest. Real police don't text you."
    assert check(us, "Acme Recovery is a debt collector. " + notice + OPT_OUT).decision is None
    threat = "This is not a scam: pay today or you will be arrested."
    assert "us.false_legal.criminal" in stopping(check(us, threat + OPT_OUT))


def test_english_block_terms_stop_a_cn_collection_text(cn: ContentFilter) -> None:
    for body in ("Pay now or go to jail.", "We will tell your boss.", "You deadbeat."):
        assert check(cn, SIG + body).decision == "block", body


def test_debt_collector_disclosure_is_appended_by_default(us: ContentFilter) -> None:
    text = "Acme: $40 is due Friday." + OPT_OUT
    result = check(us, text, "repayment_reminder")
    assert result.decision is None
    assert result.appended == ("This is a communication from a debt collector.",)
    assert check(us, "Acme is a debt collector. $40 is due Friday." + OPT_OUT).body is None
    assert check(us, text, "service").body is None  # collection purposes only


def copy_us_pack(tmp_path: Path, option: str) -> Path:
    (tmp_path / "policies").mkdir(parents=True)
    pack = tmp_path / "policies" / "us-fdcpa.toml"
    text = (CONFIG / "policies" / "us-fdcpa.toml").read_text(encoding="utf-8")
    old = 'debt_collector_disclosure = "append"'
    assert old in text
    pack.write_text(text.replace(old, f'debt_collector_disclosure = "{option}"'), "utf-8")
    return pack


def test_disclosure_require_blocks_and_off_drops_the_rule(tmp_path: Path) -> None:
    text = "Acme: $40 is due Friday." + OPT_OUT
    required = ContentFilter(load_content_pack(copy_us_pack(tmp_path / "a", "require")))
    result = check(required, text)
    assert result.decision == "block" and stopping(result) == {"us.structure.disclosure"}
    off = ContentFilter(load_content_pack(copy_us_pack(tmp_path / "b", "off")))
    assert check(off, text).findings == ()


def test_only_optional_instructions_can_be_switched_off(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    pack = tmp_path / "policies" / "us-fdcpa.toml"
    text = (CONFIG / "policies" / "us-fdcpa.toml").read_text(encoding="utf-8")
    pack.write_text(text.replace('opt_out = "append"', 'opt_out = "off"'), "utf-8")
    with pytest.raises(ContentPackError, match=r"content\.opt_out must be block or append"):
        load_content_pack(pack)


def test_time_barred_turns_a_legal_action_hold_into_a_block(us: ContentFilter) -> None:
    text = "Acme Recovery is a debt collector. We will file a lawsuit in 30 days." + OPT_OUT
    assert check(us, text).decision == "hold"  # free text
    authorized = frozenset({"legal_action_authorized"})
    assert check(us, text, attests=authorized).decision is None
    barred = check(us, text, attests=authorized | {"time_barred"})
    assert barred.decision == "block" and stopping(barred) == {"us.legal_action.statement"}
    disclosure = (
        "Acme Recovery is a debt collector. The law limits how long you can be sued on a debt. "
        "Because of the age of your debt, we will not sue you for it." + OPT_OUT
    )
    assert check(us, disclosure, attests=frozenset({"time_barred"})).decision is None


def test_templates_may_attest_time_barred(tmp_path: Path) -> None:
    from config.settings import settings_from_mapping
    from tests.conftest import base_config

    raw = base_config()
    raw["templates"] = {"t": {"purpose": "overdue_notice", "text": "x", "attests": ["time_barred"]}}
    settings = settings_from_mapping(raw, base_dir=tmp_path)
    assert settings.templates["t"].attests == {"time_barred"}


def test_a_dot_between_han_characters_ends_no_clause() -> None:
    """ "征.信" is an evasion, not two sentences: rules that want a second phrase
    in the same clause or sentence still see it; other dots still end one."""
    from filters.content.views import Boundaries

    text = "你的征.信会被消.除。好. 明天.Ok"
    b = Boundaries(text)
    assert b.clause(text.index("信")) == b.clause(text.index("征")) == 0
    assert b.sentence(text.index("除")) == 0
    assert b.sentence(text.index("好")) == 1  # after 。
    assert b.sentence(text.index("明")) == 2  # "好. " ends a sentence
    assert b.sentence(text.index("O")) == 3  # a dot before Latin does too
