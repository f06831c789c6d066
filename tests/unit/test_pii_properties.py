"""Property tests for the PII stage (issue 3, acceptance 2).

Valid resident IDs, cards, mobiles and e-mail addresses, written with random
separators, in full-width forms or with invisible characters, inside random
Chinese and English text, are always masked; amounts, dates, times, 4-8 digit
codes and order numbers are never touched. The check digits are computed
here independently of filters.pii.checksums.
"""

from __future__ import annotations

from datetime import date

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.normalize import normalize
from filters.pii.context import Context, context_before
from gateway.stages.pii import PiiStage

STAGE = PiiStage()
SETTINGS = settings(max_examples=300, derandomize=True, deadline=None)
DIGITS = "0123456789"
PROVINCES = [str(p) for p in (11, 12, 13, 21, 31, 32, 33, 37, 42, 44, 51, 61, 65, 81)]

ZH_BEFORE = [
    "您好，",
    "尊敬的客户，",
    "提醒您：",
    "本期账单已出，",
    "请核对",
    "您的信息",
    "详情见APP，",
]
ZH_AFTER = ["。", "，请查收。", "已更新", "，感谢您的支持！", "如有疑问请联系我们", ""]
EN_BEFORE = ["Hello, ", "Reminder: ", "Please check ", "We updated ", "Bright Loans: "]
EN_AFTER = [".", " today.", ", thank you.", " - reply STOP to opt out", ""]
CONTEXT = {
    "cn_id": ["身份证号", "证件号码：", "ID: "],
    "bank_card": ["银行卡", "卡号 ", "card "],
    "mobile": ["手机号", "联系电话：", "mobile "],
    "email": ["邮箱 ", "e-mail: "],
}


def id_check(body: str) -> str:
    total = sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(body))
    return "10X98765432"[total % 11]


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def neutral(text: str) -> bool:
    """Filler must not say what a number is (订单号, 身份证, ...): that changes the answer."""
    return context_before(text + " ", len(text) + 1) is Context.NONE


# random text; hypothesis also draws the context words it finds in the code under test
han_text = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), max_size=12).filter(
    neutral
)
en_text = (
    st.lists(
        st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz"), min_size=1, max_size=8), max_size=4
    )
    .map(lambda words: "".join(w + " " for w in words))
    .filter(neutral)
)


@st.composite
def cn_ids(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from(PROVINCES)) + draw(st.text(DIGITS, min_size=4, max_size=4))
    if draw(st.booleans()):  # 15-digit legacy number
        born = draw(st.dates(date(1930, 1, 1), date(1999, 12, 31)))
        return head + born.strftime("%y%m%d") + draw(st.text(DIGITS, min_size=3, max_size=3))
    born = draw(st.dates(date(1920, 1, 1), date(2015, 12, 31)))
    body = head + born.strftime("%Y%m%d") + draw(st.text(DIGITS, min_size=3, max_size=3))
    check = id_check(body)
    return body + (check.lower() if check == "X" and draw(st.booleans()) else check)


@st.composite
def cards(draw: st.DrawFn) -> str:
    prefix, size = draw(
        st.sampled_from([("4", 13), ("4", 16), ("4", 19), ("51", 16), ("55", 16), ("2221", 16)])
        | st.sampled_from([("36", 14), ("37", 15), ("34", 15)])
        | st.tuples(st.sampled_from(["62", "622", "35", "6011", "9558"]), st.integers(16, 19))
    )
    body = prefix + draw(st.text(DIGITS, min_size=size - 1 - len(prefix), max_size=size - 1))
    body = body[: size - 1]
    return body + luhn_digit(body)


@st.composite
def mobiles(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 3)) == 0:  # another country's mobile, international form
        region = draw(st.sampled_from(["GB", "DE", "FR", "JP", "AU", "SG", "US", "KR", "IN"]))
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        assert example is not None
        tail = draw(st.text(DIGITS, min_size=2, max_size=2))
        national = str(example.national_number)[:-2] + tail
        number = phonenumbers.parse(f"+{example.country_code}{national}")
        if not phonenumbers.is_valid_number(number):
            number = example
        style = draw(st.sampled_from([phonenumbers.PhoneNumberFormat.E164] * 2 + [1]))
        text = phonenumbers.format_number(number, style)
        return text if set(text) <= set(DIGITS + "+ -") else f"+{example.country_code}{national}"
    prefix = draw(st.sampled_from(["138", "139", "150", "158", "166", "176", "186", "187", "199"]))
    number = prefix + draw(st.text(DIGITS, min_size=8, max_size=8))
    country = draw(st.sampled_from(["", "", "+86", "+86 ", "0086 ", "86-", "86"]))
    return country + regroup(number, draw)


@st.composite
def emails(draw: st.DrawFn) -> str:
    local_chars = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789")
    local = draw(st.text(local_chars, min_size=1, max_size=12))
    if draw(st.booleans()):
        local += draw(st.sampled_from("._")) + draw(st.text(local_chars, min_size=1, max_size=6))
    domain = draw(st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz"), min_size=2, max_size=10))
    tld = draw(st.sampled_from(["com", "net", "cn", "org", "com.cn", "io"]))
    return f"{local}@{domain}.{tld}"


def regroup(value: str, draw: st.DrawFn) -> str:
    """Random grouping of a plain number: groups of 3-4, by spaces or dashes."""
    if not value.isalnum() or draw(st.booleans()):
        return value
    sep = draw(st.sampled_from([" ", "-", " - "]))
    size = draw(st.sampled_from([4, 4, 3])) if len(value) > 11 else 4
    head = 3 if len(value) == 11 else size  # 138 1234 5678
    parts = [value[:head]] + [value[i : i + size] for i in range(head, len(value), size)]
    return sep.join(parts)


def disguise(value: str, draw: st.DrawFn) -> str:
    """Full-width forms and invisible characters, as people and templates write them."""
    if draw(st.booleans()):
        value = "".join(
            "\u3000" if ch == " " else chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch
            for ch in value
        )
    if draw(st.booleans()) and len(value) > 2:
        at = draw(st.integers(1, len(value) - 1))
        value = value[:at] + draw(st.sampled_from(["\u200b", "\u200d", "\ufeff"])) + value[at:]
    return value


def digits(text: str) -> str:
    return "".join(ch for ch in normalize(text).text if ch.isdigit())


@st.composite
def messages(draw: st.DrawFn, entity: str, values: st.SearchStrategy[str]) -> tuple[str, str]:
    value = draw(values)
    shown = disguise(regroup(value, draw) if entity in ("cn_id", "bank_card") else value, draw)
    zh = draw(st.booleans())
    before = draw(st.sampled_from(ZH_BEFORE if zh else EN_BEFORE)) + draw(
        han_text if zh else en_text
    )
    if draw(st.booleans()):
        before += draw(st.sampled_from(CONTEXT[entity]))
    elif not zh or entity == "email":
        before += " "
    after = draw(st.sampled_from(ZH_AFTER if zh else EN_AFTER))
    after += draw(han_text) if zh else " " + draw(en_text)
    if entity == "email" and after[:1] not in ("", " ", "。", "，"):
        after = " " + after
    return before + shown + after, value


def assert_masked(text: str, value: str, entity: str) -> None:
    for policy in ("cn-collection", "us-fdcpa"):
        result = STAGE.evaluate(text, policy)
        assert result.body is not None, (text, policy)
        categories = {f.category for f in result.findings}
        # a 15-digit legacy ID that is also a Luhn-valid Amex number is masked as a card
        assert entity in categories or (categories == {"bank_card"} and len(value) == 15), (
            text,
            result.findings,
        )
        if entity == "email":
            assert value not in normalize(result.body).text
        else:
            wanted = "".join(ch for ch in value if ch.isdigit())
            assert wanted[-11:] not in digits(result.body), (text, result.body)


@SETTINGS
@given(messages("cn_id", cn_ids()))
def test_resident_ids_are_always_masked(case: tuple[str, str]) -> None:
    assert_masked(*case, "cn_id")


@SETTINGS
@given(messages("bank_card", cards()))
def test_cards_are_always_masked(case: tuple[str, str]) -> None:
    assert_masked(*case, "bank_card")


@SETTINGS
@given(messages("mobile", mobiles()))
def test_mobiles_are_always_masked(case: tuple[str, str]) -> None:
    assert_masked(*case, "mobile")


@SETTINGS
@given(messages("email", emails()))
def test_emails_are_always_masked(case: tuple[str, str]) -> None:
    assert_masked(*case, "email")


amounts = st.builds(
    lambda value, style: style.format(value),
    st.floats(0.01, 99_999_999, allow_nan=False).map(lambda v: round(v, 2)),
    st.sampled_from(
        ["{:,.2f}元", "¥{:.2f}", "${:,.2f}", "{:.0f}元", "金额{:.2f}元", "USD {:,.2f}"]
    ),
)
dates = st.builds(
    lambda d, style: d.strftime(style),
    st.dates(date(1990, 1, 1), date(2040, 12, 31)),
    st.sampled_from(["%Y-%m-%d", "%Y年%m月%d日", "%m/%d/%Y", "%b %d", "%Y%m%d", "%Y.%m.%d"]),
)
times = st.builds(
    lambda h, m, s, style: style.format(h, m, s),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.sampled_from(["{:02d}:{:02d}", "{}点{}分", "{:02d}:{:02d}:{:02d}"]),
)
date_times = st.builds(lambda d, t: f"{d} {t}", dates, times)
codes = st.builds(
    lambda word, code: word + code,
    st.sampled_from(["验证码", "验证码：", "动态码 ", "code: ", "OTP ", ""]),
    st.text(DIGITS, min_size=4, max_size=8),
)
order_numbers = st.builds(
    lambda word, head, tail, sep: word + head + sep + tail,
    st.sampled_from(["订单号", "订单编号：", "合同编号", "流水号", "交易号 ", "Order ", "ref "]),
    st.sampled_from(["2020", "2024", "2026", "2029", "JK2026", "HT-2026", "A"]),
    st.text(DIGITS, min_size=6, max_size=16),
    st.sampled_from(["", "", "-"]),
)
keepers = st.one_of(amounts, dates, times, date_times, codes, order_numbers)


@SETTINGS
@given(
    keepers,
    st.sampled_from(ZH_BEFORE + EN_BEFORE),
    st.sampled_from(ZH_AFTER + EN_AFTER),
    st.one_of(han_text, en_text),
    st.booleans(),
)
def test_amounts_dates_times_codes_orders_are_never_masked(
    item: str, before: str, after: str, filler: str, wide: bool
) -> None:
    before = filler + " " + before
    if wide:
        item = "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in item)
    text = before + item + after
    for policy in ("cn-collection", "us-fdcpa"):
        result = STAGE.evaluate(text, policy)
        assert result.findings == (), (text, result.findings)
        assert result.body is None
