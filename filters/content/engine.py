"""The content filter of one policy pack: lexicon hits with their contexts,
then the structural rules. Pure: text and context in, findings out."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from config.content_model import PackSpec, Rule, Scope
from filters.content.matcher import Kind, Lexicon, RawHit
from filters.content.result import ContentFinding, ContentResult, MessageContext
from filters.content.structure import StructureChecker, find_signature
from filters.content.views import Boundaries, squeeze
from filters.normalize import Normalized, normalize

__all__ = ["ContentFilter"]


@dataclass(frozen=True, slots=True)
class _Place:
    clause: int
    sentence: int

    def near(self, other: _Place, scope: Scope) -> bool:
        if scope is Scope.MESSAGE:
            return True
        if scope is Scope.SENTENCE:
            return self.sentence == other.sentence
        return self.clause == other.clause


class ContentFilter:
    """Build once per pack (compiles the automata); ``check`` is thread-safe."""

    def __init__(self, spec: PackSpec) -> None:
        self.spec = spec
        self.lexicon = Lexicon(spec)
        self.structure = StructureChecker(spec.structure, spec.t2s)

    @property
    def name(self) -> str:
        return self.spec.name

    def check(
        self,
        text: str,
        ctx: MessageContext,
        *,
        normalized: Normalized | None = None,
        body: str | None = None,
    ) -> ContentResult:
        """Findings for ``text`` (the submitted text; offsets refer to it).

        ``normalized`` is ``normalize(text)`` when the caller already has it;
        ``body`` is the text to be sent so far (after masking), to which a
        missing instruction may be appended.
        """
        norm = normalized if normalized is not None else normalize(text)
        active, allowed = self._lexicon_findings(text, norm, ctx)
        squeezed = squeeze(norm.text, self.spec.t2s).text
        active.extend(self.structure.check(text, norm, squeezed, ctx))
        current = text if body is None else body
        missing, new_body, appended = self.structure.instruction_findings(
            squeezed, ctx.purpose, current
        )
        active.extend(missing)
        active.extend(self.structure.length(new_body or current, ctx.region))
        active.sort(key=_order)
        return ContentResult(tuple(active), tuple(allowed), new_body, tuple(appended))

    # ------------------------------------------------------------- lexicon

    def _lexicon_findings(
        self, text: str, norm: Normalized, ctx: MessageContext
    ) -> tuple[list[ContentFinding], list[ContentFinding]]:
        raw = self.lexicon.scan(norm.text)
        if not raw:
            return [], []
        bounds = Boundaries(norm.text)
        contexts: dict[int, list[tuple[_Place, RawHit]]] = defaultdict(list)
        partners: dict[int, list[tuple[_Place, RawHit]]] = defaultdict(list)
        candidates: list[tuple[RawHit, _Place]] = []
        for hit in raw:
            place = _Place(bounds.clause(hit.start), bounds.sentence(hit.start))
            if hit.entry.kind is Kind.CONTEXT:
                contexts[hit.entry.ref].append((place, hit))
            elif hit.entry.kind is Kind.WITH:
                partners[hit.entry.ref].append((place, hit))
            else:
                candidates.append((hit, place))
        signature = find_signature(text)
        context_index = {c.name: i for i, c in enumerate(self.spec.contexts)}
        seen: set[tuple[str, int, int]] = set()
        active: list[ContentFinding] = []
        allowed: list[ContentFinding] = []
        for hit, place in candidates:
            rule = self.spec.rules[hit.entry.ref]
            if not _applies(rule, ctx):
                continue
            start, end = hit.start, hit.end
            if rule.with_terms:
                partner = next(
                    (h for p, h in partners[hit.entry.ref] if p.near(place, rule.with_scope)), None
                )
                if partner is None:
                    continue
                start, end = min(start, partner.start), max(end, partner.end)
            o_start, o_end = norm.span(start, end)
            if rule.roles and signature and signature.start <= o_start < signature.end:
                continue  # the sender's name is judged by the signature rules
            key = (rule.id, o_start, o_end)
            if key in seen:
                continue
            seen.add(key)
            reason = self._allowance(
                rule, place, (start, end), (o_start, o_end), contexts, context_index, ctx
            )
            finding = ContentFinding(
                rule.id, rule.category, str(rule.severity), o_start, o_end, hit.entry.term, reason
            )
            (allowed if reason else active).append(finding)
        return _merge_overlaps(active), _merge_overlaps(allowed)

    def _allowance(
        self,
        rule: Rule,
        place: _Place,
        span: tuple[int, int],
        original: tuple[int, int],
        contexts: dict[int, list[tuple[_Place, RawHit]]],
        index: dict[str, int],
        ctx: MessageContext,
    ) -> str | None:
        """Why a hit is harmless, or None. ``span`` is in normalised offsets,
        ``original`` in submitted ones; a context word inside the hit itself
        ("诈骗" in "诈骗犯") does not count."""
        for name in rule.allow_contexts:
            i = index[name]
            scope = self.spec.contexts[i].scope
            for p, h in contexts.get(i, ()):
                if p.near(place, scope) and (h.end <= span[0] or span[1] <= h.start):
                    return f"context:{name}"
        granted = [a for a in rule.allowed_by if a in ctx.attests]
        if granted and not any(s < original[1] and original[0] < e for s, e in ctx.untrusted):
            return f"template:{granted[0]}"
        return None


def _applies(rule: Rule, ctx: MessageContext) -> bool:
    return (not rule.roles or ctx.role in rule.roles) and (
        not rule.purposes or ctx.purpose in rule.purposes
    )


def _order(f: ContentFinding) -> tuple[int, int, str]:
    start = -1 if f.start is None else f.start
    return (start, -1 if f.end is None else -f.end, f.rule)


def _merge_overlaps(findings: list[ContentFinding]) -> list[ContentFinding]:
    """Within one rule, overlapping hits become one finding ("坐牢" in "让你坐牢",
    "起诉" and "诉讼" in "提起诉讼")."""
    by_rule: dict[str, list[ContentFinding]] = defaultdict(list)
    for f in findings:
        by_rule[f.rule].append(f)
    out: list[ContentFinding] = []
    for group in by_rule.values():
        group.sort(key=_order)
        merged: list[ContentFinding] = []
        for f in group:
            last = merged[-1] if merged else None
            if last and last.end is not None and f.start is not None and f.start < last.end:
                end = max(last.end, f.end or last.end)
                term = last.term if (last.end - (last.start or 0)) >= len(f.term) else f.term
                merged[-1] = replace(last, end=end, term=term)
            else:
                merged.append(f)
        out.extend(merged)
    return out
