"""Evaluate a labelled content corpus (``tests/corpus/*.jsonl``) through the
same stages the gateway runs (normalisation + PII + content), per category.

Shared by ``tests/unit/test_content_heldout.py`` and ``bench/heldout.py``.
Each case is sent as free text (no template attestations) by a client of the
pack for its language (zh: cn-collection, en: us-fdcpa) that has registered
the 【signature】 at the start or end of the text (the lender's own) and every
``link_domain=…`` named in the case's ``note``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filters.content.structure import find_signature
from gateway.models import Client, Decision
from gateway.pipeline import Draft, NormalizeStage, Pipeline
from gateway.schemas import SendRequest
from gateway.stages.content import ContentStage
from gateway.stages.pii import PiiStage

__all__ = ["CORPUS_DIR", "Outcome", "Report", "evaluate", "load_cases"]

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
PACKS = {"zh": "cn-collection", "en": "us-fdcpa"}
_LINK_DOMAIN = re.compile(r"link_domain=([a-z0-9.-]+[a-z0-9])", re.IGNORECASE)


def load_cases(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@dataclass(frozen=True, slots=True)
class Outcome:
    id: str
    lang: str
    expect: str
    category: str
    decision: Decision | None
    rules: tuple[str, ...]

    @property
    def stopped(self) -> bool:
        return self.decision in (Decision.BLOCK, Decision.HOLD)

    @property
    def wrong(self) -> bool:
        return self.stopped != (self.expect == "stop")


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    def cells(self, expect: str) -> dict[tuple[str, str], tuple[int, int]]:
        """(lang, category) -> (stopped, total) among cases that expect ``expect``."""
        acc: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for o in self.outcomes:
            if o.expect == expect:
                cell = acc[(o.lang, o.category)]
                cell[0] += o.stopped
                cell[1] += 1
        return {k: (v[0], v[1]) for k, v in sorted(acc.items())}

    def totals(self, expect: str) -> tuple[int, int]:
        chosen = [o for o in self.outcomes if o.expect == expect]
        return sum(o.stopped for o in chosen), len(chosen)

    @property
    def recall(self) -> float:
        hit, total = self.totals("stop")
        return hit / total if total else 1.0

    @property
    def false_stop_rate(self) -> float:
        bad, total = self.totals("send")
        return bad / total if total else 0.0

    def table(self) -> str:
        """Per category: stops stopped (recall) and sends stopped (false stops)."""
        out = [f"{'lang':<5}{'expect':<7}{'category':<26}{'stopped':>8}{'total':>7}{'rate':>8}"]
        for expect in ("stop", "send"):
            for (lang, category), (hit, total) in self.cells(expect).items():
                out.append(
                    f"{lang:<5}{expect:<7}{category:<26}{hit:>8}{total:>7}{hit / total:>8.1%}"
                )
        hit, total = self.totals("stop")
        out.append(f"{'all':<5}{'stop':<7}{'recall':<26}{hit:>8}{total:>7}{self.recall:>8.1%}")
        bad, total = self.totals("send")
        rate = self.false_stop_rate
        out.append(f"{'all':<5}{'send':<7}{'false stops':<26}{bad:>8}{total:>7}{rate:>8.1%}")
        return "\n".join(out)


def note_link_domains(case: dict[str, Any], *also: str) -> tuple[str, ...]:
    """The domains a case's ``note`` registers for the client (``link_domain=…``),
    after ``also``."""
    named = [d.lower() for d in _LINK_DOMAIN.findall(case.get("note") or "")]
    return tuple(dict.fromkeys([*also, *named]))


def _draft(case: dict[str, Any]) -> Draft:
    zh = case["lang"] == "zh"
    text = case["text"]
    sig = find_signature(text)
    client = Client(
        "corpus",
        PACKS[case["lang"]],
        signatures=(sig.name.strip(),) if sig is not None else (),
        link_domains=note_link_domains(case),
    )
    request = SendRequest(
        to="+8613812345678" if zh else "+12015550123",
        region="CN" if zh else "US",
        borrower_id="B-1",
        purpose=case["purpose"],
        text=text,
        recipient_role=case.get("role", "borrower"),
    )
    return Draft(request=request, client=client, now=datetime.now(UTC), body=text)


async def evaluate(cases: list[dict[str, Any]], pipeline: Pipeline | None = None) -> Report:
    pipeline = pipeline or Pipeline([NormalizeStage(), PiiStage(), ContentStage()])
    report = Report()
    for case in cases:
        if case.get("expect") not in ("stop", "send"):
            continue
        draft = await pipeline.run(_draft(case))
        rules = tuple(f.rule for f in draft.findings if f.action.value in ("block", "hold"))
        report.outcomes.append(
            Outcome(
                case["id"],
                case["lang"],
                case["expect"],
                case.get("category") or "(none)",
                draft.decision,
                rules,
            )
        )
    return report
