"""The content filter with the shipped packs: lexicon categories, evasions,
offsets into the submitted text, allow-contexts, attestations, roles."""

from __future__ import annotations

import pytest

from filters.content import ContentFilter, ContentResult
from tests.unit.content_helpers import SIG, check


def rules(result: ContentResult) -> set[str]:
    """Rules that stop or change the wording (not the appended disclosure)."""
    return {f.rule for f in result.findings if f.rule != "us.structure.disclosure"}


def spans(text: str, result: ContentResult) -> list[str]:
    return [text[f.start : f.end] for f in result.findings if f.start is not None]


@pytest.mark.parametrize(
    ("text", "rule", "span"),
    [
        (SIG + "你这种老赖", "cn.insult.label", "老赖"),
        (SIG + "老 赖就是你", "cn.insult.label", "老 赖"),
        (SIG + "坐*牢吧你", "cn.false_legal.criminal", "坐*牢"),
        (SIG + "坐\u200b牢吧你", "cn.false_legal.criminal", "坐\u200b牢"),
        (SIG + "你這個騙子", "cn.insult.fraudster", "騙子"),
        (SIG + "准备zuolao吧", "cn.false_legal.criminal", "zuolao"),
        (SIG + "准备zuo牢吧", "cn.false_legal.criminal", "zuo牢"),
        (SIG + "准备坐lao吧", "cn.false_legal.criminal", "坐lao"),
        (SIG + "你就是个ＳＢ", "cn.insult.abbreviation", "ＳＢ"),
        (SIG + "你就是个s.b", "cn.insult.abbreviation", "s.b"),
        (SIG + "tmd还不还钱", "cn.insult.abbreviation", "tmd"),
        (SIG + "再不还就曝-光你", "cn.exposure.third_party", "曝-光你"),
        (SIG + "我们会联系你的紧急联系人", "cn.exposure.third_party", "联系你的紧急联系人"),
        (SIG + "加我微信私下处理", "cn.private_channel.contact", "加我微信"),
        (SIG + "别怪我们不客气", "cn.pressure.menace", "别怪我们不客气"),
    ],
)
def test_cn_blocks_with_offsets_into_the_submitted_text(
    cn: ContentFilter, text: str, rule: str, span: str
) -> None:
    result = check(cn, text)
    assert result.decision == "block"
    assert rule in rules(result)
    found = [text[f.start : f.end] for f in result.findings if f.rule == rule]
    assert span in found


@pytest.mark.parametrize(
    ("text", "rule", "span"),
    [
        ("Pay now or go to j.a.i.l.", "us.false_legal.criminal", "j.a.i.l"),
        ("We will k1ll you", "us.violence.harm", "k1ll you"),
        ("You are a DEADBEAT", "us.insult.label", "DEADBEAT"),
        ("We will tell your employer today", "us.exposure.third_party", "tell your employer"),
        ("Pay to my personal account", "us.private_channel.contact", "my personal account"),
        ("We will ruin your credit forever.", "us.credit_report.exaggerated", "ruin your credit"),
    ],
)
def test_us_blocks(us: ContentFilter, text: str, rule: str, span: str) -> None:
    result = check(us, text + " Reply STOP to opt out.")
    assert result.decision == "block"
    assert any(span in text[f.start : f.end] for f in result.findings if f.rule == rule)


def test_latin_terms_match_whole_words_only(us: ContentFilter) -> None:
    assert check(us, "This issue is resolved. Reply STOP to opt out.").decision is None  # "sue"
    assert check(us, "Your album is ready. Reply STOP to opt out.").decision is None  # "bum"
    assert rules(check(us, "We have jailed others. Reply STOP to opt out.")) == {
        "us.false_legal.criminal"
    }  # jail* may go on


def test_plain_chinese_homophones_are_not_pinyin_hits(cn: ContentFilter) -> None:
    assert check(cn, SIG + "欢迎您来做老师的助手").decision is None  # zuo lao, all Chinese


def test_negation_does_not_save_a_threat(cn: ContentFilter, us: ContentFilter) -> None:
    assert check(cn, SIG + "我们不会让你坐牢的，只要你还钱").decision == "block"
    assert check(us, "We won't have you arrested if you pay. Reply STOP to opt out.").decision
    assert check(cn, SIG + "我们不会起诉你").decision == "hold"


def test_neutral_credit_notice_is_allowed_exaggeration_is_blocked(cn: ContentFilter) -> None:
    assert check(cn, SIG + "逾期信息将按规定报送金融信用信息基础数据库。").decision is None
    assert check(cn, SIG + "逾期可能影响个人征信，请及时还款。").decision is None
    assert check(cn, SIG + "逾期将上报征信，让你黑一辈子").decision == "block"
    assert check(cn, SIG + "上报征信后，全家都贷不了款").decision == "block"
    assert check(cn, SIG + "逾期将影响子女上学").decision == "block"


def test_legal_action_is_held_unless_an_attested_template(cn: ContentFilter) -> None:
    text = SIG + "如持续逾期，我司将依法向有管辖权的人民法院提起诉讼。"
    assert check(cn, text).decision == "hold"
    attested = check(cn, text, attests=frozenset({"legal_action_authorized"}))
    assert attested.decision is None
    assert [a.allowed for a in attested.allowed] == ["template:legal_action_authorized"]
    # an attestation never covers a value filled into the template
    start = text.index("提起诉讼")
    from_param = check(
        cn,
        text,
        attests=frozenset({"legal_action_authorized"}),
        untrusted=((start, start + 4),),
    )
    assert from_param.decision == "hold"


def test_neutral_mentions_of_court_fraud_and_lawsuits(cn: ContentFilter) -> None:
    for text in (
        SIG + "我司不会以任何理由要求您向个人账户转账，谨防诈骗。",
        SIG + "请谨防冒充法院、公安的诈骗电话。",
        SIG + "如有争议，您可依法向人民法院提起诉讼。",
        SIG + "警惕骗子冒充我司客服。",
    ):
        assert check(cn, text).decision is None, text


def test_block_beats_hold(cn: ContentFilter) -> None:
    result = check(cn, SIG + "我们将起诉你，你这个老赖")
    assert {f.action for f in result.findings} == {"block", "hold"}
    assert result.decision == "block"


def test_visit_is_held_and_its_threat_form_blocked(cn: ContentFilter) -> None:
    assert check(cn, SIG + "我司工作人员将上门核实情况。").decision == "hold"
    assert check(cn, SIG + "再不还钱就上门找你。").decision == "block"


def test_debt_wording_to_a_contact_is_blocked(cn: ContentFilter, us: ContentFilter) -> None:
    locate = SIG + "您好，请转告张先生尽快回电，谢谢。"
    assert check(cn, locate, "service", role="contact").decision is None
    debt = SIG + "您好，请转告张先生尽快还款。"
    assert check(cn, debt, "service").decision is None
    result = check(cn, debt, "service", role="contact")
    assert result.decision == "block" and spans(debt, result) == ["还款"]
    money = SIG + "请转告张先生尽快处理1,086.40元。"
    assert rules(check(cn, money, "service", role="contact")) == {"cn.third_party.amount"}
    # the lender's own name in its signature is judged by the signature rules
    assert (
        check(cn, "【众信小额贷款】请转告张先生回电。", "service", role="contact").decision is None
    )
    assert check(us, "Please ask John to call us about his loan.", "service", role="contact")


def test_findings_come_in_text_order(cn: ContentFilter) -> None:
    result = check(cn, SIG + "老赖，加我微信，坐牢")
    starts = [f.start for f in result.findings if f.start is not None]
    assert starts == sorted(starts)
