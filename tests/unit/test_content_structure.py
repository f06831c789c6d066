"""Structural rules of the shipped packs: 【signature】, unsubscribe and
opt-out lines, links, length."""

from __future__ import annotations

import pytest

from filters.content import ContentFilter, ContentResult, MessageContext
from filters.content.structure import append_instruction, find_signature

OK_CN = "【安心消费金融】您本期应还1,086.40元，请按时还款。"


def rules(result: ContentResult) -> list[str]:
    return [f.rule for f in result.findings]


def test_signature_missing_is_blocked_for_chinese_text(cn: ContentFilter) -> None:
    result = cn.check("您本期应还1,086.40元。", MessageContext("repayment_reminder"))
    assert rules(result) == ["cn.structure.signature"]
    assert (result.findings[0].start, result.findings[0].end) == (None, None)
    # an English text under the Chinese pack is not a Chinese message
    assert cn.check("Your bill is ready.", MessageContext("service")).decision is None


def test_signature_at_end_counts(cn: ContentFilter) -> None:
    text = "您本期应还1,086.40元，请按时还款。【安心消费金融】"
    assert cn.check(text, MessageContext("repayment_reminder")).decision is None


def test_registered_signatures(cn: ContentFilter) -> None:
    mine = MessageContext("repayment_reminder", signatures=("安心消费金融",))
    assert cn.check(OK_CN, mine).decision is None
    other = MessageContext("repayment_reminder", signatures=("易贷通",))
    result = cn.check(OK_CN, other)
    assert rules(result) == ["cn.structure.signature"]
    assert OK_CN[result.findings[0].start or 0 : result.findings[0].end] == "【安心消费金融】"


def test_malformed_signature_without_registration(cn: ContentFilter) -> None:
    for text in (
        "【】您的账单已出。",
        "【x】您的账单已出。",
        "【" + "很" * 17 + "】您的账单已出。",
    ):
        assert rules(cn.check(text, MessageContext("service"))) == ["cn.structure.signature"], text


@pytest.mark.parametrize(
    "signature",
    ["【北京市朝阳区人民法院】", "【海淀公安局】", "【市人民检察院】", "【某某派出所】"],
)
def test_authority_signatures_are_blocked_even_when_registered(
    cn: ContentFilter, signature: str
) -> None:
    ctx = MessageContext("service", signatures=(signature[1:-1],))
    result = cn.check(signature + "您的账单已出。", ctx)
    assert "cn.structure.signature_authority" in rules(result)
    assert result.decision == "block"


def test_authority_bracket_inside_the_text(cn: ContentFilter) -> None:
    result = cn.check("【易贷通】【北京市人民法院】传唤通知。", MessageContext("service"))
    assert "cn.structure.signature_authority" in rules(result)


def test_marketing_needs_an_unsubscribe_line(cn: ContentFilter) -> None:
    text = "【易贷通】会员日额度提升，详情打开APP查看。"
    assert rules(cn.check(text, MessageContext("marketing"))) == ["cn.structure.unsubscribe"]
    for line in ("拒收请回复R", "回T退订", "退订回TD", "回复 N 退订"):
        assert cn.check(text + line, MessageContext("marketing")).decision is None, line
    assert cn.check(text, MessageContext("service")).decision is None


def test_us_collection_texts_get_an_opt_out_line_appended(us: ContentFilter) -> None:
    text = "Bright Loans: $210.55 is due Dec 12"
    result = us.check(text, MessageContext("repayment_reminder", region="US"))
    assert result.decision is None
    assert result.body == (
        "Bright Loans: $210.55 is due Dec 12. This is a communication from a debt collector."
        " Reply STOP to opt out."
    )
    assert [(f.rule, f.action) for f in result.findings] == [
        ("us.structure.disclosure", "append"),
        ("us.structure.opt_out", "append"),
    ]
    disclosed = "Acme Recovery is a debt collector. " + text
    assert (
        us.check(disclosed + ". Reply STOP to opt out.", MessageContext("overdue_notice")).body
        is None
    )
    assert us.check(text, MessageContext("service")).body is None
    marketing = us.check("Bright Loans: 0% APR this week!", MessageContext("marketing"))
    assert rules(marketing) == ["us.structure.unsubscribe"] and marketing.decision == "block"


def test_append_goes_before_a_trailing_signature() -> None:
    assert append_instruction("会员日额度提升。【易贷通】", "拒收请回复R") == (
        "会员日额度提升。拒收请回复R【易贷通】"
    )
    assert append_instruction("Due Dec 12.", "Reply STOP to opt out.") == (
        "Due Dec 12. Reply STOP to opt out."
    )


def test_links_only_to_the_clients_domains(cn: ContentFilter, us: ContentFilter) -> None:
    text = "【易贷通】请登录 https://app.yidaitong.cn/pay 还款。"
    mine = MessageContext("repayment_reminder", link_domains=("yidaitong.cn",))
    assert cn.check(text, mine).decision is None
    result = cn.check(text, MessageContext("repayment_reminder"))
    assert rules(result) == ["cn.structure.link_domain"]
    assert text[result.findings[0].start or 0 : result.findings[0].end].startswith("https://app")
    for bad in (
        "【易贷通】点击 yidaitong-pay.top/x 还款",
        "【易贷通】还款请访问 www.evil。com",
        "【易贷通】退款请登录 https://yidaitong.cn@refund-ydt.cn/tk 申请",  # user information
        "【易贷通】退款请登录 http://app.yidaitong.cn:pw@refund-ydt.cn 申请",
        "【易贷通】退款请登录 https://yidaitong.cn@203.0.113.9/tk 申请",
    ):
        assert rules(cn.check(bad, mine)) == ["cn.structure.link_domain"], bad
    assert cn.check("【易贷通】请登录 https://u@app.yidaitong.cn/pay 还款。", mine).decision is None
    # e-mail addresses, amounts and dates are not links
    fine = "Bright Loans: mail li_na2020@example.net, $1,086.40 due 12.08. Reply STOP to opt out."
    assert us.check(fine, MessageContext("overdue_notice")).decision is None


def test_links_run_into_chinese_text_or_spelled_with_look_alikes(
    cn: ContentFilter, us: ContentFilter
) -> None:
    """Chinese runs into a link without a space, and a Cyrillic "с" makes
    another host that reads as the lender's (found by heldout_v15)."""
    mine = MessageContext("repayment_reminder", link_domains=("yidaitong.cn",))
    glued = "【易贷通】您的账单已出，请点击yidaitong-pay.cn/bill查看详情。"
    result = cn.check(glued, mine)
    assert rules(result) == ["cn.structure.link_domain"]
    finding = result.findings[0]
    assert glued[finding.start or 0 : finding.end] == "yidaitong-pay.cn/bill"  # not 查看详情
    assert cn.check("【易贷通】请登录yidaitong.cn还款。", mine).decision is None
    lender = MessageContext("overdue_notice", link_domains=("brennancountycu.org",))
    for text in ("Pay here: https://brennancountyсu.org/pay", "Pay at brennancountyсu.org today"):
        assert "us.structure.link_domain" in rules(us.check(text, lender)), text
    assert "us.structure.link_domain" not in rules(
        us.check("Pay here: https://brennancountycu.org/pay", lender)
    )
    # a numbered step before a word that is also a TLD is no link; 12306.cn is one
    steps = "【易贷通】还款方式：1.APP首页点击“立即还款”；2.致电客服。"
    assert cn.check(steps, mine).decision is None
    assert rules(cn.check("【易贷通】退票请登录12306.cn办理", mine)) == ["cn.structure.link_domain"]


def test_maximum_segments(cn: ContentFilter) -> None:
    # 335 characters: 5 parts of 67 (a real sentence: one character repeated
    # 330 times is also what the learned stage would hold as no real message)
    long = "【易贷通】" + ("您的本期账单已出，请在到期日前按时还款，谢谢。" * 20)[:330]
    assert cn.check(long, MessageContext("service", region="CN")).decision is None
    result = cn.check(long + "您", MessageContext("service", region="CN"))
    assert rules(result) == ["cn.structure.length"]


def test_find_signature() -> None:
    sig = find_signature("  【易贷通】您好")
    assert sig is not None and (sig.name, sig.start, sig.end) == ("易贷通", 2, 7)
    assert find_signature("您好【易贷通】中间") is None
