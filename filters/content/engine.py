"""The content filter of one policy pack: lexicon hits with their contexts,
then the structural rules. Pure: text and context in, findings out."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import replace
from typing import NamedTuple

from config.content_model import PackSpec, Rule, Scope
from filters.content.learned import LearnedModel, load_cached
from filters.content.matcher import Kind, Lexicon, RawHit
from filters.content.result import BLOCK, HOLD, ContentFinding, ContentResult, MessageContext
from filters.content.structure import StructureChecker, find_signature
from filters.content.views import Boundaries, View, squeeze, squeeze_term
from filters.normalize import Normalized, normalize

__all__ = ["ContentFilter"]

_NEGATOR_WINDOW = 8  # characters before a context word searched for a negator
_CLAUSE_END = re.compile(r"[,，。.!！?？;；:：\n]")
_STOPS = frozenset({BLOCK, HOLD})
_HAN = re.compile(r"[\u4e00-\u9fff]")
_WORDS = re.compile(r"[a-z]+(?:'[a-z]+)?")
_SIGNATURE = re.compile(r"【[^】]*】")
_MIN_UNITS = 12


def _written_in(language: str, text: str) -> bool:
    """Enough of the pack's own language for its model to judge: at least
    ``_MIN_UNITS`` Han characters besides a 【signature】 for zh, words for
    en (with at most a signature's worth of Han). A terse reminder ("请于今日
    还款", "Please pay today") has too few features for the model to tell a
    demand from a threat; the lexicon alone judges it."""
    han = len(_HAN.findall(text))
    if language == "zh":
        signed = sum(len(_HAN.findall(s)) for s in _SIGNATURE.findall(text))
        return han - signed >= _MIN_UNITS
    return han <= 4 and len(_WORDS.findall(text)) >= _MIN_UNITS


class _Place(NamedTuple):
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
        self.learned: tuple[LearnedModel, float] | None = None
        if spec.learned is not None:
            model = load_cached(spec.learned.path)
            threshold = spec.learned.threshold or model.threshold(spec.language)
            self.learned = (model, threshold)
        self.structure = StructureChecker(spec.structure, spec.t2s)
        self._context_index = {c.name: i for i, c in enumerate(spec.contexts)}
        self._negators = tuple(
            tuple(squeeze_term(normalize(n).text, spec.t2s) for n in c.negated_by)
            for c in spec.contexts
        )

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
        view = squeeze(norm.text, self.spec.t2s)
        active, allowed = self._lexicon_findings(text, norm, ctx, view)
        squeezed = view.text
        active.extend(self.structure.check(text, norm, squeezed, ctx))
        current = text if body is None else body
        missing, new_body, appended = self.structure.instruction_findings(
            squeezed, ctx.purpose, current
        )
        active.extend(missing)
        active.extend(self.structure.length(new_body or current, ctx.region))
        if (
            self.learned is not None
            and not any(f.action in _STOPS for f in active)
            and not ctx.templated
            and not any((a.allowed or "").startswith("template:") for a in allowed)
            and ctx.role != "contact"
            and _written_in(self.spec.language, norm.text)
        ):  # a configured template is the operator's reviewed wording (the lexicon and
            # attestations judge it), a model reads one language, and it never saw a
            # message to a contact (the lexicon blocks any debt word there)
            model, threshold = self.learned
            score = model.score(norm.text, self.spec.language, normalized=True)
            if score >= threshold:  # a paraphrase the lexicon has no pattern for: review
                rule = self.spec.learned.rule if self.spec.learned else "learned.hold"
                active.append(ContentFinding(rule, "learned", HOLD, None, None, f"{score:.2f}"))
        active.sort(key=_order)
        return ContentResult(tuple(active), tuple(allowed), new_body, tuple(appended))

    # ------------------------------------------------------------- lexicon

    def _lexicon_findings(
        self, text: str, norm: Normalized, ctx: MessageContext, view: View
    ) -> tuple[list[ContentFinding], list[ContentFinding]]:
        raw = self.lexicon.scan(norm.text, view)
        if not raw:
            return [], []
        bounds = Boundaries(norm.text)
        contexts: dict[int, list[tuple[_Place, RawHit]]] = defaultdict(list)
        partners: dict[int, list[tuple[_Place, RawHit]]] = defaultdict(list)
        candidates: list[tuple[RawHit, _Place]] = []
        places: dict[int, _Place] = {}  # several entries often share a start
        for hit in raw:
            place = places.get(hit.start)
            if place is None:
                place = places[hit.start] = _Place(
                    bounds.clause(hit.start), bounds.sentence(hit.start)
                )
            if hit.entry.kind is Kind.CONTEXT:
                contexts[hit.entry.ref].append((place, hit))
            elif hit.entry.kind is Kind.WITH:
                partners[hit.entry.ref].append((place, hit))
            elif _applies(self.spec.rules[hit.entry.ref], ctx):
                candidates.append((hit, place))
        _drop_captured(contexts, [h for h, _ in candidates])
        self._drop_negated(norm.text, contexts)
        signature = find_signature(text)
        context_index = self._context_index
        seen: set[tuple[str, int, int]] = set()
        active: list[ContentFinding] = []
        allowed: list[ContentFinding] = []
        for hit, place in candidates:
            rule = self.spec.rules[hit.entry.ref]
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
            escalated = any(a in ctx.attests for a in rule.escalated_by)
            reason = self._allowance(
                rule, place, (hit.start, hit.end), (o_start, o_end), contexts, context_index, ctx,
                templates=not escalated,
            )  # fmt: skip
            severity = BLOCK if escalated else str(rule.severity)
            finding = ContentFinding(
                rule.id, rule.category, severity, o_start, o_end, hit.entry.term, reason
            )
            (allowed if reason else active).append(finding)
        return _merge_overlaps(active), _merge_overlaps(allowed)

    def _drop_negated(self, text: str, contexts: dict[int, list[tuple[_Place, RawHit]]]) -> None:
        """A context word shortly after a negator in its clause is no context
        ("别以为这是诈骗, …坐牢", "this is not a scam: … arrested"): negation
        never saves a threat."""
        for ref, found in contexts.items():
            negators = self._negators[ref]
            if not negators:
                continue
            kept = []
            for p, h in found:
                before = _CLAUSE_END.split(text[max(0, h.start - _NEGATOR_WINDOW) : h.start])[-1]
                squeezed = squeeze(before, self.spec.t2s).text
                if not any(n in squeezed for n in negators):
                    kept.append((p, h))
            contexts[ref] = kept

    def _allowance(
        self,
        rule: Rule,
        place: _Place,
        span: tuple[int, int],
        original: tuple[int, int],
        contexts: dict[int, list[tuple[_Place, RawHit]]],
        index: dict[str, int],
        ctx: MessageContext,
        *,
        templates: bool = True,
    ) -> str | None:
        """Why a hit is harmless, or None. ``span`` is the hit's own term in
        normalised offsets (without a co-occurring term), ``original`` the
        finding in submitted ones; a context word inside the hit itself
        ("诈骗" in "诈骗犯") does not count, one around it ("police report")
        does. ``templates=False``: an attestation escalated the rule, so no
        attestation allows it."""
        for name in rule.allow_contexts:
            i = index[name]
            scope = self.spec.contexts[i].scope
            for p, h in contexts.get(i, ()):
                if p.near(place, scope) and _outside_or_around(h, span):
                    return f"context:{name}"
        if not templates:
            return None
        granted = [a for a in rule.allowed_by if a in ctx.attests]
        if granted and not any(s < original[1] and original[0] < e for s, e in ctx.untrusted):
            return f"template:{granted[0]}"
        return None


def _outside_or_around(context: RawHit, span: tuple[int, int]) -> bool:
    """A context word apart from the hit, one that contains it ("police
    report" around "police") or a frame that leads into it ("we will not
    contact" before "contact your employer"); never one inside it ("诈骗" in
    "诈骗犯") nor one that starts within it."""
    apart = context.end <= span[0] or span[1] <= context.start
    around = context.start <= span[0] and span[1] <= context.end
    leads_in = context.start < span[0] < context.end
    return apart or leads_in or (around and context.end - context.start > span[1] - span[0])


def _drop_captured(contexts: dict[int, list[tuple[_Place, RawHit]]], hits: list[RawHit]) -> None:
    """A context word that is part of a prohibited phrase is no context:
    "诈骗" in "涉嫌诈骗" or "诈骗罪" does not make a threat an anti-fraud notice."""
    if not hits:
        return
    for ref, found in contexts.items():
        contexts[ref] = [
            (p, h) for p, h in found if not any(r.start <= h.start and h.end <= r.end for r in hits)
        ]


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
    if len(findings) < 2:
        return findings
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
