"""Acceptance 2 as a test: the labelled corpus tests/corpus/content.jsonl
(both languages, every category, neutral mentions of 法院, 征信, 诈骗, 起诉)
through the whole filter stage: stop recall >= 97 % per category, false
stops <= 1 %. ``bench/content.py`` prints the same per category."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from gateway.models import Client, Decision
from gateway.pipeline import Draft, NormalizeStage, Pipeline
from gateway.schemas import SendRequest
from gateway.stages.content import ContentStage
from gateway.stages.pii import PiiStage
from tests.content_eval import note_link_domains

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "content.jsonl"


async def test_corpus_recall_and_false_stops() -> None:
    cases = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    assert len(cases) >= 300 and {c["lang"] for c in cases} == {"zh", "en"}
    pipeline = Pipeline([NormalizeStage(), PiiStage(), ContentStage()])
    stops: Counter[str] = Counter()
    stopped: Counter[str] = Counter()
    false_stops: list[str] = []
    sends = 0
    for case in cases:
        zh = case["lang"] == "zh"
        request = SendRequest(
            to="+8613812345678" if zh else "+12015550123",
            region="CN" if zh else "US",
            borrower_id="B-1",
            purpose=case["purpose"],
            text=case["text"],
            recipient_role=case["role"],
        )
        client = Client("corpus", "cn-collection" if zh else "us-fdcpa",
                        link_domains=note_link_domains(case, "lendwise.com"))  # fmt: skip
        draft = await pipeline.run(Draft(request, client, datetime.now(UTC), case["text"]))
        is_stopped = draft.decision in (Decision.BLOCK, Decision.HOLD)
        if case["expect"] == "stop":
            key = f"{case['lang']}:{case['category']}"
            stops[key] += 1
            stopped[key] += is_stopped
        else:
            sends += 1
            if is_stopped:
                false_stops.append(case["id"])
    assert len(stops) >= 26  # 13 categories and the structural rules, both languages
    low = {k: f"{stopped[k]}/{n}" for k, n in stops.items() if stopped[k] / n < 0.97}
    assert not low, low
    assert len(false_stops) / sends <= 0.01, false_stops
