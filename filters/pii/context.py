"""Context words: what the text right before a number says it is.

A number of the right shape next to an identity or account word is personal
data even when its checksum fails; next to an order, contract, serial or
verification-code word, or as an amount, it is kept unless its checksum and
shape prove it an ID or a card. The nearest word before the number decides
(within :data:`WINDOW` characters of the normalised text, not across a
sentence end). ASCII words need a non-letter on both sides; Chinese words are
matched as they are (no word boundaries in Chinese).
"""

from __future__ import annotations

import enum
import re
from typing import Final

__all__ = ["WINDOW", "Context", "context_before", "is_amount", "letters_context"]

WINDOW: Final = 16  # normalised characters between the word's end and the number


class Context(enum.Enum):
    NONE = "none"
    CN_ID = "cn_id"  # identity words: mask as an ID
    ACCOUNT = "bank_card"  # card / account words: mask as a card or account number
    SSN = "us_ssn"
    PASSPORT = "passport"
    PHONE = "phone"  # phone words: no forcing, but they end an earlier context
    KEEP = "keep"  # order, contract, serial, code words; amounts; letter-prefixed codes


# Longer words first where one contains another (身份证编号 before 编号).
_WORDS: Final[dict[Context, tuple[str, ...]]] = {
    Context.CN_ID: (
        "公民身份号码", "身份证编号", "身份证号码", "身份证号", "身份证", "身份證", "身份号码",
        "证件号码", "证件号", "证件", "證件", "id number", "id no", "identity", "id",
    ),
    Context.ACCOUNT: (
        "银行卡号", "银行卡", "銀行卡", "信用卡", "储蓄卡", "儲蓄卡", "借记卡", "借記卡",
        "卡号", "卡號", "账号", "帐号", "賬號", "帳號", "账户", "帐户", "賬戶", "帳戶",
        "account number", "account", "acct", "card number", "card", "iban",
    ),
    Context.SSN: ("social security", "社会安全号", "ssn"),
    Context.PASSPORT: ("护照", "護照", "通行证", "通行證", "passport"),
    Context.PHONE: (
        "手机", "手機", "电话", "電話", "致电", "来电", "热线", "客服",
        "mobile", "phone", "tel", "call", "hotline",
    ),
    Context.KEEP: (
        "order id", "order no", "order number", "transaction id", "reference number",
        "reference no", "ref no", "loan id", "loan number", "case id", "ticket id",
        "customer id", "application id", "member id", "contract no", "contract number",
        "客户号", "会员号", "订单", "訂單", "合同", "编号", "編號", "流水", "单号", "單號",
        "交易号", "交易號",
        "凭证号", "憑證號", "申请号", "批次", "工单", "运单", "快递", "发票", "借据", "案件号",
        "验证码", "驗證碼", "校验码", "动态码", "动态密码", "短信码",
        "order", "contract", "reference", "ref", "serial", "invoice", "transaction",
        "txn", "tracking", "confirmation", "code", "otp", "case", "ticket",
    ),
}  # fmt: skip


def _alternative(word: str) -> str:
    escaped = re.escape(word).replace(r"\ ", " ?")
    return rf"(?<![a-z]){escaped}(?![a-z])" if word.isascii() else escaped


_KIND_OF: Final = {f"k{i}": kind for i, kind in enumerate(_WORDS)}
_PATTERN: Final = re.compile(
    "|".join(
        f"(?P<k{i}>{'|'.join(_alternative(w) for w in words)})"
        for i, words in enumerate(_WORDS.values())
    )
)
_SENTENCE_END: Final = re.compile(r"[。！？；!?;\n]")
_CURRENCY_BEFORE: Final = re.compile(r"(?:[¥$€£]|rmb|usd|cny)[ ]?$")
_CURRENCY_AFTER: Final = re.compile(r"[ ]?(?:元|块|萬|万|亿|美元|yuan|rmb|usd|dollars?)")
_LONGEST_WORD: Final = max(len(w) for words in _WORDS.values() for w in words)
_ASCII_WORD: Final = {
    w.replace(" ", ""): kind for kind, words in _WORDS.items() for w in words if w.isascii()
}


def context_before(text: str, start: int) -> Context:
    """The context of a number starting at ``start`` of the normalised ``text``."""
    found = Context.NONE
    end = -1
    for m in _PATTERN.finditer(text, max(0, start - WINDOW - _LONGEST_WORD), start):
        if m.end() >= start - WINDOW and m.end() > end and m.lastgroup is not None:
            found, end = _KIND_OF[m.lastgroup], m.end()
    if found is not Context.NONE and _SENTENCE_END.search(text, end, start):
        return Context.NONE
    return found


def is_amount(text: str, start: int, end: int) -> bool:
    """A currency sign or word right before, or a currency unit right after."""
    return bool(
        _CURRENCY_BEFORE.search(text, max(0, start - 5), start) or _CURRENCY_AFTER.match(text, end)
    )


def letters_context(letters: str) -> Context:
    """The context of ASCII letters glued to the front of a number ("id123...",
    "tel138..."): the word's context, or KEEP for any other code prefix."""
    return _ASCII_WORD.get(letters, Context.KEEP)
