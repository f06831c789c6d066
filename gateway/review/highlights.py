"""Highlights over the masked body. Findings carry code-point offsets into
the submitted text; the body may differ from it (personal data masked, a
signature or an opt-out line appended). An aligned span of the text maps onto
the body; a span the masking replaced maps onto its mask (which is safe to
show); anything else gets no highlight. Only the body is ever sliced, so a
highlight can never reveal the original."""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.models import Finding


@dataclass(frozen=True, slots=True)
class Segment:
    text: str  # a slice of the masked body
    findings: tuple[int, ...] = ()  # indexes into the message's findings


def _span_map(text: str, body: str) -> Sequence[tuple[str, int, int, int, int]]:
    if text == body:
        return [("equal", 0, len(text), 0, len(body))]
    matcher = difflib.SequenceMatcher(None, text, body, autojunk=False)
    return matcher.get_opcodes()


def map_span(
    opcodes: Sequence[tuple[str, int, int, int, int]], start: int, end: int
) -> tuple[int, int] | None:
    """Where [start, end) of the text lies in the body, if it can be told."""
    for tag, i1, i2, j1, _ in opcodes:
        if tag == "equal" and i1 <= start and end <= i2:
            return j1 + (start - i1), j1 + (end - i1)
    # a span that the masking replaced as a whole (perhaps with some equal
    # text around it): highlight the replacement
    touched = [op for op in opcodes if op[1] < end and start < op[2]]
    replaced = [op for op in touched if op[0] != "equal"]
    if len(replaced) == 1:
        _, i1, i2, j1, j2 = replaced[0]
        if start <= i1 and i2 <= end and j2 > j1:
            lo, hi = j1, j2
            for tag, a1, a2, b1, _ in touched:
                if tag == "equal":  # the equal edges of the span, mapped
                    lo = min(lo, b1 + max(start, a1) - a1)
                    hi = max(hi, b1 + min(end, a2) - a1)
            return lo, hi
    return None


def highlight(text: str, body: str, findings: Sequence[Finding]) -> list[Segment]:
    """The body cut into segments, each with the findings that cover it."""
    opcodes = _span_map(text, body)
    spans: list[tuple[int, int, int]] = []
    for n, f in enumerate(findings):
        if f.start is None or f.end is None or not 0 <= f.start < f.end <= len(text):
            continue
        mapped = map_span(opcodes, f.start, f.end)
        if mapped is not None and mapped[0] < mapped[1] <= len(body):
            spans.append((mapped[0], mapped[1], n))
    cuts = sorted({0, len(body), *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
    out: list[Segment] = []
    for lo, hi in itertools.pairwise(cuts):
        covering = tuple(n for s, e, n in spans if s <= lo and hi <= e)
        out.append(Segment(body[lo:hi], covering))
    return out
