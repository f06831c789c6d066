"""The content stage: the client's policy pack judges the wording (lexicon
categories with allow-contexts) and the structure (signature, unsubscribe /
opt-out line, links, length, debt wording to a contact).

Runs after the PII stage, on the submitted text (findings carry offsets into
it) and reuses ``Draft.normalized``. A missing instruction the pack says to
append is added to the current body (the masked one). ``block`` beats
``hold``; a pack the stage does not know blocks (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import MappingProxyType

from config.content import shipped_content_packs
from filters.content import ContentFilter, ContentResult, MessageContext
from filters.content.result import BLOCK, HOLD
from gateway.heap import collector_paused
from gateway.models import Action, Decision, Finding
from gateway.pipeline import Draft, StageResult
from gateway.schemas import SendRequest

__all__ = ["ContentStage", "shipped_filters", "to_findings"]

_DECISION = {BLOCK: Decision.BLOCK, HOLD: Decision.HOLD}
UNKNOWN_PACK = Finding("content", "content.unknown_pack", "policy", Action.BLOCK)


@cache
def shipped_filters() -> Mapping[str, ContentFilter]:
    """One compiled filter per shipped pack, built once per process."""
    with collector_paused():
        packs = {n: ContentFilter(s) for n, s in shipped_content_packs().items()}
    return MappingProxyType(packs)


def to_findings(result: ContentResult) -> tuple[Finding, ...]:
    return tuple(
        Finding("content", f.rule, f.category, Action(f.action), f.start, f.end)
        for f in result.findings
    )


def message_context(draft: Draft) -> MessageContext:
    request = draft.request
    return MessageContext(
        purpose=request.purpose,
        role=request.recipient_role,
        region=request.region,
        signatures=draft.client.signatures,
        link_domains=draft.client.link_domains,
        attests=request.attests,
        untrusted=parameter_spans(request),
        templated=request.template is not None,
    )


def parameter_spans(request: SendRequest) -> tuple[tuple[int, int], ...]:
    """Where template parameter values occur in the rendered text: an
    attestation covers the template's own words, never a value filled in."""
    if request.template is None:
        return ()
    spans: list[tuple[int, int]] = []
    for value in request.params.values():
        start = request.text.find(value)
        while start >= 0:
            spans.append((start, start + len(value)))
            start = request.text.find(value, start + 1)
    return tuple(spans)


class ContentStage:
    name = "content"

    def __init__(self, filters: Mapping[str, ContentFilter] | None = None) -> None:
        self.filters = shipped_filters() if filters is None else filters

    async def __call__(self, draft: Draft) -> StageResult:
        content = self.filters.get(draft.client.policy)
        if content is None:
            return StageResult(findings=(UNKNOWN_PACK,), decision=Decision.BLOCK)
        result = content.check(
            draft.request.text,
            message_context(draft),
            normalized=draft.normalized,
            body=draft.body,
        )
        decision = result.decision
        return StageResult(
            findings=to_findings(result),
            body=result.body,
            decision=_DECISION[decision] if decision else None,
        )
