"""Structural rules: the 【signature】, required unsubscribe / opt-out
instructions, links, length and money figures to a contact."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from config.content_model import Instruction, SignatureRules, Structure
from filters.content.result import APPEND, BLOCK, ContentFinding, MessageContext
from filters.content.views import squeeze_term
from filters.normalize import Normalized
from filters.segments import count_segments

__all__ = ["Signature", "StructureChecker", "find_signature"]

_LEADING: Final = re.compile(r"\A\s*【([^【】\n]{0,40})】")
_TRAILING: Final = re.compile(r"【([^【】\n]{0,40})】\s*\Z")
_BRACKETED: Final = re.compile(r"【([^【】\n]{0,40})】")
_CHINESE: Final = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# The letters of a host name: Latin, and the Latin-1 to Latin Extended, Greek
# and Cyrillic letters that look like them ("brennancountyсu.org" with a
# Cyrillic "с" is another host, not the lender's); not CJK, which runs into
# a link without a space ("请访问lender.com").
_HOST_LETTERS: Final = "a-z\u00e0-\u024f\u0370-\u03ff\u0400-\u052f"
# a link's host; after a scheme, user information before "@" is skipped: in
# "https://lender.com@other.cn/x" the browser goes to other.cn. Chinese text
# runs into a link without a space ("请点击lender-pay.cn/bill查看"): a Chinese
# character ends the path and may stand right before or after the host.
_LINK: Final = re.compile(
    rf"(?<![{_HOST_LETTERS}0-9_@.-])(?:(?P<scheme>https?://)(?:[^\s/?#@]*@)?)?"
    rf"(?P<host>(?:[{_HOST_LETTERS}0-9](?:[{_HOST_LETTERS}0-9-]{{0,61}}[{_HOST_LETTERS}0-9])?\.)+"
    rf"(?P<tld>[{_HOST_LETTERS}]{{2,24}}))(?![{_HOST_LETTERS}0-9_@-])(?::\d{{1,5}})?"
    r"(?:[/?#][^\s\u3000-\u303f\u3400-\u9fff\uff00-\uffef]*)?"
)
# a raw IPv4 host: with a scheme, a port or a path (so "1.2.3.4" alone, a
# version or an amount, is no link)
_IP_LINK: Final = re.compile(
    r"(?<![\w@.-])(?:(?P<scheme>https?://)(?:[^\s/?#@]*@)?(?P<host>\d{1,3}(?:\.\d{1,3}){3})(?![\w.-])"
    r"|(?P<bare>\d{1,3}(?:\.\d{1,3}){3})(?=[:/]\w))(?::\d{1,5})?(?:[/?#][^\s\u3000-\u303f\uff00-\uffef]*)?"
)
# Government registries are closed to the public (.gov, .gov.cn, .gov.uk…): a
# regulator's site named in a rights notice ("complain to the CFPB at
# consumerfinance.gov", "12378.gov.cn") is no lender's phishing link.
_GOVERNMENT: Final = re.compile(r"(?:\A|\.)gov(?:\.[a-z]{2})?\Z")
_DOTTED_QUAD: Final = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")  # cheap test before _IP_LINK
# a numbered list item before a word that is also a TLD ("1.APP首页点击"), not
# a host (a short all-digit name without a scheme: "12306.cn" is one)
_LIST_ITEM: Final = re.compile(r"\d{1,2}\.[a-z]+")
# what every host _LINK matches contains: a label's last character, a dot and
# the first letter of the next label or the TLD (cheap test before _LINK)
_HOST_DOT: Final = re.compile(rf"[{_HOST_LETTERS}0-9]\.[{_HOST_LETTERS}]")
_AMOUNT: Final = re.compile(
    r"[¥$]\s?\d|\d(?:[\d,]*\d)?(?:\.\d+)?\s?(?:元|块|万|rmb|usd|dollars?\b)"
)


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    start: int  # of the opening bracket, original offsets
    end: int


def find_signature(text: str) -> Signature | None:
    """The 【signature】 at the start of the text, else at its end."""
    m = _LEADING.match(text) or _TRAILING.search(text)
    if m is None:
        return None
    return Signature(m.group(1), m.start(1) - 1, m.end(1) + 1)


class StructureChecker:
    def __init__(self, structure: Structure, t2s: Mapping[int, str]) -> None:
        self.s = structure
        self.t2s = t2s
        sig = structure.signature
        authority = {squeeze_term(t.casefold(), t2s) for t in sig.authority_terms} if sig else set()
        authority.discard("")
        # one pattern for the authority words a signature may not contain
        self._authority = (
            re.compile("|".join(map(re.escape, sorted(authority, key=len, reverse=True))))
            if authority
            else None
        )
        self._markers = {
            ins.rule: tuple(squeeze_term(m.casefold(), t2s) for m in ins.markers)
            for ins in structure.instructions
        }
        self._tlds = frozenset(structure.link_tlds)

    def check(
        self, text: str, norm: Normalized, squeezed: str, ctx: MessageContext
    ) -> list[ContentFinding]:
        out: list[ContentFinding] = []
        if self.s.signature is not None:
            out.extend(self._signature(text, self.s.signature, ctx))
        if self.s.links is not None:
            out.extend(self._links(norm, ctx))
        if self.s.contact_amounts is not None and ctx.role == "contact":
            r = self.s.contact_amounts
            sig = find_signature(text)
            for m in _AMOUNT.finditer(norm.text):
                start, end = norm.span(m.start(), m.end())
                if sig is None or not sig.start <= start < sig.end:
                    out.append(ContentFinding(r.rule, r.category, BLOCK, start, end, m.group()))
        return out

    def missing_instructions(self, squeezed: str, purpose: str) -> list[Instruction]:
        return [
            ins
            for ins in self.s.instructions
            if purpose in ins.purposes and not any(m in squeezed for m in self._markers[ins.rule])
        ]

    def instruction_findings(
        self, squeezed: str, purpose: str, body: str
    ) -> tuple[list[ContentFinding], str | None, list[str]]:
        """Findings for missing instructions, the body with appended ones, and what was appended."""
        out: list[ContentFinding] = []
        appended: list[str] = []
        new_body = body
        for ins in self.missing_instructions(squeezed, purpose):
            action = APPEND if ins.missing == APPEND else BLOCK
            out.append(ContentFinding(ins.rule, ins.category, action, None, None))
            if action == APPEND:
                new_body = append_instruction(new_body, ins.append_text)
                appended.append(ins.append_text)
        return out, (new_body if appended else None), appended

    def length(self, body: str, region: str | None) -> list[ContentFinding]:
        r = self.s.length
        if r is None or self.s.max_segments <= 0:
            return []
        if count_segments(body, region=region).segments > self.s.max_segments:
            return [ContentFinding(r.rule, r.category, BLOCK, None, None)]
        return []

    def _signature(
        self, text: str, rules: SignatureRules, ctx: MessageContext
    ) -> list[ContentFinding]:
        out: list[ContentFinding] = []
        for m in _BRACKETED.finditer(text):  # 【…法院】 anywhere is impersonation
            name = squeeze_term(m.group(1).casefold(), self.t2s)
            if self._authority is not None and self._authority.search(name):
                out.append(
                    ContentFinding(
                        rules.authority_rule, "impersonation", BLOCK, m.start(), m.end(), m.group()
                    )
                )
        if not rules.required or not _CHINESE.search(text):
            return out  # only a Chinese text needs a 【signature】
        sig = find_signature(text)
        if sig is None:
            out.append(ContentFinding(rules.rule, "signature", BLOCK, None, None))
            return out
        name = sig.name.strip()
        well_formed = rules.min_chars <= len(name) <= rules.max_chars and name == sig.name
        registered = name in ctx.signatures if ctx.signatures else well_formed
        if not (well_formed and registered):
            out.append(ContentFinding(rules.rule, "signature", BLOCK, sig.start, sig.end, name))
        return out

    def _links(self, norm: Normalized, ctx: MessageContext) -> list[ContentFinding]:
        r = self.s.links
        assert r is not None  # noqa: S101 - checked by the caller
        out: list[ContentFinding] = []
        scan = norm.text.replace("。", ".")  # "abc。com" hides a dot; same length
        for m in _LINK.finditer(scan) if _HOST_DOT.search(scan) else ():
            if m.group("scheme") is None and (
                m.group("tld") not in self._tlds or _LIST_ITEM.fullmatch(m.group("host"))
            ):
                continue
            host = m.group("host")
            if any(host == d or host.endswith("." + d) for d in ctx.link_domains):
                continue
            if _GOVERNMENT.search(host):
                continue
            start, end = norm.span(m.start(), m.end())
            out.append(ContentFinding(r.rule, r.category, BLOCK, start, end, host))
        if not _DOTTED_QUAD.search(scan):
            return out
        for m in _IP_LINK.finditer(scan):
            host = m.group("host") or m.group("bare")
            if host in ctx.link_domains:
                continue
            start, end = norm.span(m.start(), m.end())
            out.append(ContentFinding(r.rule, r.category, BLOCK, start, end, host))
        return out


def append_instruction(body: str, addition: str) -> str:
    """Add ``addition`` at the end of the body, before a trailing 【signature】."""
    m = _TRAILING.search(body)
    head, tail = (body[: m.start()], body[m.start() :]) if m and m.start() > 0 else (body, "")
    stripped = head.rstrip()
    if addition.isascii():
        glue = "" if not stripped else " "
        if stripped and stripped[-1] not in ".!?":
            glue = ". "
        return f"{stripped}{glue}{addition}{tail}"
    return f"{stripped}{addition}{tail}"
