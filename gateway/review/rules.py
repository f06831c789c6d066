"""What a finding's rule means, for the people who review it: a short
description (the category's title from the pack's lexicon, or a fixed wording
for the structural, PII and contact-policy rules) and the legal basis the pack
cites (``source``) where it has one. Read once from the shipped packs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from config.content import shipped_content_packs
from config.content_model import PackSpec

_FIXED = {
    "opt_out": "The recipient opted out of these messages",
    "no_consent": "No recorded consent for marketing to this recipient",
    "quiet_hours": "Outside the recipient's allowed hours: scheduled",
    "quiet_hours.no_window": "The recipient's possible time zones share no allowed hours",
    "contact.unknown_pack": "The client's policy pack is unknown",
    "content.unknown_pack": "The client's content pack is unknown",
}
_PREFIXES = (
    ("pii.", "Personal data"),
    ("cap.", "Contact cap"),
)


@dataclass(frozen=True, slots=True)
class RuleInfo:
    rule: str
    description: str
    source: str | None = None


def _from_pack(spec: PackSpec, out: dict[str, RuleInfo]) -> None:
    titles = {c.name: c.title for c in spec.categories}
    for rule in spec.rules:
        title = titles.get(rule.category) or rule.category
        out.setdefault(rule.id, RuleInfo(rule.id, title, rule.source))
    st = spec.structure
    if st.signature is not None:
        sig = st.signature
        out.setdefault(sig.rule, RuleInfo(sig.rule, "Missing or malformed signature", sig.source))
        out.setdefault(
            sig.authority_rule,
            RuleInfo(sig.authority_rule, "Signature names an authority", sig.authority_source),
        )
    for ins in st.instructions:
        out.setdefault(ins.rule, RuleInfo(ins.rule, f"Missing: {ins.missing}", ins.source))
    for simple, text in (
        (st.links, "Link to a domain the client has not registered"),
        (st.length, "Message too long"),
        (st.contact_amounts, "Money amounts in a message to a contact"),
    ):
        if simple is not None:
            out.setdefault(simple.rule, RuleInfo(simple.rule, text, simple.source))


@cache
def catalogue() -> Mapping[str, RuleInfo]:
    """Every rule of the shipped packs, by id."""
    out: dict[str, RuleInfo] = {}
    for spec in shipped_content_packs().values():
        _from_pack(spec, out)
    return MappingProxyType(out)


def describe(rule: str) -> RuleInfo:
    """The rule's description; its id when nothing better is known."""
    known = catalogue().get(rule)
    if known is not None:
        return known
    if rule in _FIXED:
        return RuleInfo(rule, _FIXED[rule])
    for prefix, text in _PREFIXES:
        if rule.startswith(prefix):
            return RuleInfo(rule, f"{text}: {rule[len(prefix) :]}")
    return RuleInfo(rule, rule)
