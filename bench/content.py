"""Content policy bench (issue 4): prints two tables.

1. Acceptance 2 — the labelled corpus ``tests/corpus/content.jsonl`` (plus
   ``../shared/corpus/dev.jsonl`` when present) through the whole filter
   stage (normalisation + PII + content): stop recall per category (a stop
   is a block or a hold) and false stops among the messages that must be sent.
2. Acceptance 4 — the whole filter stage, per message, on one core: median
   and p99 in microseconds, per pack, with the pack's term count (the
   shipped cn-collection pack has more than 5,000 terms).

Run: ``.venv/bin/python bench/content.py`` (exit 1 when a target is missed).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.heap import settle  # noqa: E402
from gateway.models import Client, Decision  # noqa: E402
from gateway.pipeline import Draft, NormalizeStage, Pipeline  # noqa: E402
from gateway.schemas import SendRequest  # noqa: E402
from gateway.stages.content import ContentStage, shipped_filters  # noqa: E402
from gateway.stages.pii import PiiStage  # noqa: E402
from tests.content_eval import note_link_domains  # noqa: E402

CORPUS = ROOT / "tests" / "corpus" / "content.jsonl"
DEV = ROOT.parent / "shared" / "corpus" / "dev.jsonl"
DEV_SIGNATURES = ("中和消费金融", "易贷通", "众信小额贷款", "快贷宝")
RECALL_TARGET, FALSE_STOP_TARGET, MEDIAN_TARGET_US = 0.97, 0.01, 150.0
REPEAT = 20


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def draft(case: dict[str, Any], *, dev: bool) -> Draft:
    zh = case["lang"] == "zh"
    pack = "cn-collection" if zh else "us-fdcpa"
    client = Client(
        "bench",
        pack,
        signatures=DEV_SIGNATURES if dev and zh else (),
        link_domains=note_link_domains(case, "lendwise.com"),
    )
    request = SendRequest(
        to="+8613812345678" if zh else "+12015550123",
        region="CN" if zh else "US",
        borrower_id="B-1",
        purpose=case["purpose"],
        text=case["text"],
        recipient_role=case.get("role", "borrower"),
    )
    return Draft(request=request, client=client, now=datetime.now(UTC), body=case["text"])


async def decide(pipeline: Pipeline, case: dict[str, Any], *, dev: bool) -> Decision:
    return (await pipeline.run(draft(case, dev=dev))).decision


async def corpus_table(pipeline: Pipeline) -> bool:
    rows: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])  # stopped, total
    sends = {"zh": [0, 0], "en": [0, 0]}  # false stops, total
    sources = [(load(CORPUS), False)] + ([(load(DEV), True)] if DEV.exists() else [])
    for cases, dev in sources:
        for case in cases:
            if case["expect"] == "any":
                continue
            stopped = await decide(pipeline, case, dev=dev) in (Decision.BLOCK, Decision.HOLD)
            if case["expect"] == "stop":
                cell = rows[(case["lang"], case.get("category") or "(dev.jsonl)")]
                cell[0] += stopped
                cell[1] += 1
            else:
                sends[case["lang"]][0] += stopped
                sends[case["lang"]][1] += 1
    print("\nAcceptance 2: stop recall per category (stop = block or hold)\n")
    print(f"{'lang':<5}{'category':<28}{'stopped':>8}{'total':>7}{'recall':>9}")
    ok = True
    for (lang, category), (hit, total) in sorted(rows.items()):
        print(f"{lang:<5}{category:<28}{hit:>8}{total:>7}{hit / total:>9.1%}")
        ok &= hit / total >= RECALL_TARGET
    hit = sum(c[0] for c in rows.values())
    total = sum(c[1] for c in rows.values())
    print(f"{'all':<5}{'all stop cases':<28}{hit:>8}{total:>7}{hit / total:>9.1%}")
    print(f"\n{'lang':<5}{'false stops among sends':<28}{'stopped':>8}{'total':>7}{'rate':>9}")
    for lang, (bad, n) in sends.items():
        print(f"{lang:<5}{'':<28}{bad:>8}{n:>7}{bad / n:>9.1%}")
        ok &= bad / n <= FALSE_STOP_TARGET
    return ok


async def timing_table(pipeline: Pipeline) -> bool:
    cases = load(CORPUS) + (load(DEV) if DEV.exists() else [])
    packs = {n: f.spec.term_count for n, f in shipped_filters().items()}
    print("\nAcceptance 4: whole filter stage (normalise + PII + content), one core\n")
    print(f"{'pack':<15}{'terms':>7}{'messages':>10}{'median µs':>11}{'p99 µs':>9}{'max µs':>9}")
    ok = True
    for pack, lang in (("cn-collection", "zh"), ("us-fdcpa", "en")):
        own = [c for c in cases if c["lang"] == lang]
        for case in own:  # warm caches once
            await decide(pipeline, case, dev=False)
        samples: list[float] = []
        for _ in range(REPEAT):
            for case in own:
                d = draft(case, dev=False)
                start = time.perf_counter_ns()
                await pipeline.run(d)
                samples.append((time.perf_counter_ns() - start) / 1000)
        samples.sort()
        median = statistics.median(samples)
        p99 = samples[int(len(samples) * 0.99) - 1]
        print(f"{pack:<15}{packs[pack]:>7}{len(own):>10}{median:>11.1f}{p99:>9.1f}"
              f"{samples[-1]:>9.1f}")  # fmt: skip
        ok &= median <= MEDIAN_TARGET_US and (packs[pack] >= 5000 or pack != "cn-collection")
    return ok


async def main() -> int:
    started = time.perf_counter()
    pipeline = Pipeline([NormalizeStage(), PiiStage(), ContentStage()])
    print(f"(packs loaded and compiled in {time.perf_counter() - started:.2f} s)")
    ok = await corpus_table(pipeline)
    settle()  # as a serving process does once its packs are built (gateway/heap.py)
    ok &= await timing_table(pipeline)
    print("\ntargets:", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
