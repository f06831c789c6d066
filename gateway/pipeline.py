"""The decision for one message: an ordered list of stages.

Each stage looks at the :class:`Draft` and returns a :class:`StageResult`:
findings, perhaps a rewritten body, perhaps a decision. The pipeline merges
them (``block`` beats ``hold`` beats ``schedule`` beats ``queue``) and stops
after a block. Stages that reserve something (caps) register a compensation
on the draft, which the caller runs when the message is not committed.

The PII, content and contact-policy issues add their stages to
:func:`default_stages` without touching the HTTP layer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from filters.normalize import Normalized, normalize
from filters.segments import SegmentCount, count_segments
from gateway.models import Client, Decision, Finding
from gateway.schemas import SendRequest

_RANK = {Decision.QUEUE: 0, Decision.SCHEDULE: 1, Decision.HOLD: 2, Decision.BLOCK: 3}


@dataclass(slots=True)
class Draft:
    """One message on its way through the stages."""

    request: SendRequest
    client: Client
    now: datetime
    body: str
    findings: list[Finding] = field(default_factory=list)
    decision: Decision = Decision.QUEUE
    send_at: datetime | None = None  # when the message may first be handed over
    normalized: Normalized | None = None  # matching form of the submitted text
    segments: SegmentCount | None = None
    compensations: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    message_id: str = ""  # the id the message will have: what a cap reservation is named after

    async def compensate(self) -> None:
        """Give back what stages reserved, newest first."""
        while self.compensations:
            await self.compensations.pop()()


@dataclass(frozen=True, slots=True)
class StageResult:
    findings: tuple[Finding, ...] = ()
    body: str | None = None
    decision: Decision | None = None
    send_at: datetime | None = None


NOTHING = StageResult()


class Stage(Protocol):
    name: str

    async def __call__(self, draft: Draft) -> StageResult: ...


class NormalizeStage:
    """Computes the matching form of the text once, for every later stage."""

    name = "normalize"

    async def __call__(self, draft: Draft) -> StageResult:
        draft.normalized = normalize(draft.request.text)
        return NOTHING


class ScheduleStage:
    """Honours the client's ``scheduled_at``."""

    name = "schedule"

    async def __call__(self, draft: Draft) -> StageResult:
        when = draft.request.scheduled_at
        if when is not None and when > draft.now:
            return StageResult(decision=Decision.SCHEDULE, send_at=when)
        return NOTHING


class SegmentStage:
    """Counts the final body's SMS parts by the destination's billing rule.
    Runs last, after every stage that may rewrite the body."""

    name = "segments"

    async def __call__(self, draft: Draft) -> StageResult:
        draft.segments = count_segments(draft.body, region=draft.request.region)
        return NOTHING


def default_stages(policy: Sequence[Stage] = ()) -> list[Stage]:
    """``policy``: the contact-policy stages (gateway.policy), which need the
    app's stores: opt-outs and consent, quiet hours, caps (reserved last)."""
    from gateway.stages.content import ContentStage  # here: they import this module
    from gateway.stages.pii import PiiStage

    return [NormalizeStage(), PiiStage(), ContentStage(), ScheduleStage(), *policy, SegmentStage()]


class Pipeline:
    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = tuple(stages)

    async def run(self, draft: Draft) -> Draft:
        for stage in self.stages:
            result = await stage(draft)
            draft.findings.extend(result.findings)
            if result.body is not None:
                draft.body = result.body
            if result.decision is not None and _RANK[result.decision] > _RANK[draft.decision]:
                draft.decision = result.decision
            if result.send_at is not None:
                draft.send_at = max(result.send_at, draft.send_at or result.send_at)
            if draft.decision is Decision.BLOCK:
                break
        if draft.segments is None:  # a block stopped the stages early
            draft.segments = count_segments(draft.body, region=draft.request.region)
        return draft
