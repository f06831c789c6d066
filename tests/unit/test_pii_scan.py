"""What the PII stage masks and what it leaves alone, entity by entity, with
the default (cn-collection) pack's formats."""

from __future__ import annotations

import time

import pytest

from filters.pii import scan
from gateway.stages.pii import PiiStage

STAGE = PiiStage()


def masked(text: str, policy: str = "cn-collection") -> str:
    result = STAGE.evaluate(text, policy)
    return text if result.body is None else result.body


def kinds(text: str) -> list[str]:
    return [m.entity for m in scan(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("身份证330106198805214046对应的借款", "身份证**************4046对应的借款"),
        ("身份证号：11010519491231002x。", "身份证号：**************002X。"),
        ("证件 330106 19880521 4046 已核实", "证件 **************4046 已核实"),
        ("尊敬的客户420111198805213740，", "尊敬的客户**************3740，"),
        ("旧证号110105491231002", "旧证号***********1002"),  # 15-digit legacy
        # a mistyped ID (check character wrong) is still someone's ID
        ("身份证号110105194912310021", "身份证号**************0021"),
        ("请核对110105194912310021", "请核对**************0021"),
        # next to an identity word, the right length is enough
        ("身份证号码123456789012345678", "身份证号码**************5678"),
        ("ID: 11010519491231002X", "ID: **************002X"),
        ("ID11010519491231002X", "ID**************002X"),
    ],
)
def test_resident_ids(text: str, expected: str) -> None:
    assert masked(text) == expected


def test_order_word_keeps_a_bad_checksum_but_not_a_valid_id() -> None:
    assert masked("订单号110105194912310021") == "订单号110105194912310021"
    assert masked("订单号11010519491231002X") == "订单号**************002X"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("本期将从银行卡6227008301661318607扣款。", "本期将从银行卡尾号8607扣款。"),
        ("卡号 6227 0083 0166 1318 607 已绑定", "卡号 尾号8607 已绑定"),
        ("请还款至5555-5555-5555-4444", "请还款至尾号4444"),
        ("Card 5555 5555 5555 4444 was removed", "Card ending 4444 was removed"),
        ("Amex 378282246310005 expires", "Amex ending 0005 expires"),
        # Luhn fails but the issuer prefix is a card's, 16+ digits: still masked
        ("转账至6222021234567890", "转账至尾号7890"),
        # next to an account word any 8-19 digits are an account number
        ("卡号 6222 0212 3456 78", "卡号 尾号5678"),
        ("收款账号：310000123456", "收款账号：尾号3456"),
        ("your account 12345678 is past due", "your account ending 5678 is past due"),
        # a card number is a card even after an order word
        ("流水号6227008301661318607", "流水号尾号8607"),
    ],
)
def test_cards_and_accounts(text: str, expected: str) -> None:
    assert masked(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("您的手机号18728194821已变更", "您的手机号187****4821已变更"),
        ("电话 138 1234 5678。", "电话 138****5678。"),
        ("电话138-1234-5678", "电话138****5678"),
        ("请拨+86 138-1234-5678", "请拨+86 138****5678"),
        ("请拨+8613812345678", "请拨+86138****5678"),
        ("请拨0086 13812345678", "请拨0086 138****5678"),
        ("请拨86-13812345678", "请拨86-138****5678"),
        ("联系13812345678", "联系138****5678"),
        ("Text +44 7911 123456 today", "Text +44 791****3456 today"),
        ("Call +1 201-555-0123.", "Call +1 201****0123."),
        # a date glued to a mobile by a space: two numbers
        ("于2026-11-27 13812345678登录", "于2026-11-27 138****5678登录"),
    ],
)
def test_mobiles(text: str, expected: str) -> None:
    assert masked(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "客服电话95566。",
        "请致电400-600-7000",
        "请致电4006007000",
        "热线800-820-8820",
        "Call 1-888-555-0142 for options.",
        "Call 1 800 555 0142",
        "Call +1 888 555 0142",
        "请拨+86 400-600-7000",
        "10086 12315 95588",
        "12345678901",  # not a valid mobile
        "订单号13812345678",  # an order number, whatever it looks like
    ],
)
def test_hotlines_and_non_mobiles_are_kept(text: str) -> None:
    assert masked(text) == text
    assert "mobile" not in kinds(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "账单已发送至 li_na2020@example.net ，请查收。",
            "账单已发送至 l***@example.net ，请查收。",
        ),
        ("邮箱li_na2020@example.net请查收", "邮箱l***@example.net请查收"),
        ("Mail Wang.Wei@Example.COM.cn now", "Mail W***@Example.COM.cn now"),
        ("邮箱ｌｉ＿ｎａ＠ｅｘａｍｐｌｅ．ｎｅｔ。", "邮箱l***@example.net。"),
        ("mail: x@y.io.", "mail: x***@y.io."),
    ],
)
def test_emails(text: str, expected: str) -> None:
    assert masked(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SSN 123-45-6789 on file", "SSN ***-**-6789 on file"),
        ("ssn: 123456789", "ssn: ***-**-6789"),
        ("ref 123-45-6789", "ref 123-45-6789"),
        ("护照号E12345678已登记", "护照号*****5678已登记"),
        ("证件号码：G1234567", "证件号码：****4567"),
        ("Passport: 123456789", "Passport: *****6789"),
        ("passport no. EA1234567.", "passport no. *****4567."),
    ],
)
def test_ssn_and_passports(text: str, expected: str) -> None:
    assert masked(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "应还1,086.40元，最后还款日12月8日",
        "金额8,000.00元",
        "应还¥3000.50",
        "金额13812345678元",  # an amount, however large
        "$210.55 is due Dec 12",
        "您于2026-11-27 09:15的还款已到账",
        "2026年11月27日 21:00:00",
        "验证码271846，用于绑定银行卡，10分钟内有效",
        "动态码 12345678",
        "Bright Loans code: 804113.",
        "编号JK20261127003",
        "合同编号HT-2026-11270019",
        "流水号202611270019384756",
        "订单号6222021234567890",  # Luhn fails: an order number
        "尾号8823的银行卡",
        "手机138****5678",
        "卡号6222 **** **** 1234",
        "邮箱l***@example.net",
        "点击 https://t.cn/13812345678 查看",
        "详见t.cn/A6227008301661318607",
        "www.example.com/u/110105194912310021",
        "E12345678",  # passport-like, but nothing says so
        "123456789",
        "最高可借10万元",
    ],
)
def test_untouched(text: str) -> None:
    assert masked(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("尊敬的张三，您的账单已出", "尊敬的张*，您的账单已出"),
        ("尊敬的张三您的账单已出", "尊敬的张*您的账单已出"),
        ("张三您好，您的账单已出", "张*您好，您的账单已出"),
        ("尊敬的客户张三丰先生：", "尊敬的客户张*先生："),
        ("欧阳娜娜女士，您好", "欧阳*女士，您好"),
        ("您的紧急联系人王五已确认", "您的紧急联系人王*已确认"),
        ("联系人：李四，电话已更新", "联系人：李*，电话已更新"),
        ("请转告王小明尽快还款", "请转告王*尽快还款"),
        ("已通知您的配偶李梅", "已通知您的配偶李*"),
        ("尊敬的陳大文先生", "尊敬的陳*先生"),
    ],
)
def test_chinese_names(text: str, expected: str) -> None:
    assert masked(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "尊敬的客户，您的账单已出",
        "尊敬的张先生，您好",
        "王女士您好",
        "【中和消费金融】您好，您的分期账单",
        "中和消费金融您好",
        "担保人信息已更新",
        "联系人电话已更新",
        "尊敬的车主，您好",
        "Dear John Smith, your payment is due",
    ],
)
def test_not_names(text: str) -> None:
    assert masked(text) == text


def test_full_width_and_invisible_characters_are_masked_in_place() -> None:
    text = "身份证３３０１０６\u200b１９８８０５２１４０４６已核实，手机１３８ １２３４ ５６７８。"
    result = STAGE.evaluate(text, "cn-collection")
    assert result.body == "身份证**************4046已核实，手机138****5678。"
    starts = [(f.category, f.start, f.end) for f in result.findings]
    assert starts == [("cn_id", 3, 22), ("mobile", 28, 41)]
    assert text[3:22].replace("\u200b", "") == "３３０１０６１９８８０５２１４０４６"
    assert text[28:41] == "１３８ １２３４ ５６７８"


def test_several_entities_in_one_message() -> None:
    text = (
        "尊敬的张三，您尾号8823的卡6227008301661318607已绑定，"
        "手机18728194821，邮箱li_na2020@example.net，身份证330106198805214046。"
    )
    assert masked(text) == (
        "尊敬的张*，您尾号8823的卡尾号8607已绑定，"
        "手机187****4821，邮箱l***@example.net，身份证**************4046。"
    )
    assert kinds(text) == ["person_name", "bank_card", "mobile", "email", "cn_id"]


def test_masking_is_idempotent() -> None:
    text = "尊敬的张三，卡6227008301661318607，手机18728194821，邮箱li_na@example.net"
    once = masked(text)
    assert masked(once) == once
    assert scan(once) == ()


@pytest.mark.parametrize(
    "text",
    ["1 " * 500, "1-" * 500, "12 345 " * 142, "a." * 499 + "@", "8" * 1000, "+86 1 " * 166],
)
def test_long_hostile_texts_stay_cheap(text: str) -> None:
    started = time.perf_counter()
    assert masked(text[:1000]) == text[:1000]
    assert time.perf_counter() - started < 0.2  # linear work: about a millisecond here
