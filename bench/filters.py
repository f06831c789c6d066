"""PII stage: time per message and recall, beside presidio's stock engine.

The messages are ``../shared/corpus/dev.jsonl`` repeated to at least
``--messages`` (10,000). Each message is timed alone (``perf_counter_ns``
around one call) on one core, after a warm-up pass; the table shows the
median and p99 per message. Rows:

* lendsms PII stage as the pipeline runs it (``PiiStage.evaluate`` on the
  ``normalize()`` output the NormalizeStage already made), and including
  that ``normalize()`` call;
* a presidio ``AnalyzerEngine`` holding the lendsms recognizers (the same
  analysis through presidio's API, no masking);
* presidio's default ``AnalyzerEngine`` with its stock recognizers (English,
  spaCy blank pipeline, built offline: nothing is downloaded).

Recall: of the corpus's ``pii`` values, the share found (a finding covering
the value; for the stage also gone from the masked body). "keep hit": ``keep``
values a finding touches (for the stage: altered in the body). "false": PII
findings in cases that have no PII value.

    .venv/bin/python bench/filters.py [--messages N] [--stock-messages N] [--corpus PATH]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Run as a script, this file (bench/filters.py) would shadow the filters package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from filters.normalize import normalize  # noqa: E402
from gateway.stages.pii import PiiStage  # noqa: E402
from gateway.stages.presidio_engines import lendsms_engine, stock_engine  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "dev.jsonl"
POLICY = {"zh": "cn-collection", "en": "us-fdcpa"}


@dataclass
class Row:
    name: str
    median_us: float
    p99_us: float
    found: int
    pii: int
    keep_hit: int
    false: int
    missed: list[str]


def timed(run: Callable[[dict[str, Any]], object], messages: Sequence[dict[str, Any]]) -> list[int]:
    for case in messages[: min(len(messages), 500)]:  # warm-up: caches, lazy imports
        run(case)
    gc.collect()
    times = []
    clock = time.perf_counter_ns
    for case in messages:
        start = clock()
        run(case)
        times.append(clock() - start)
    times.sort()
    return times


def percentile(times: list[int], share: float) -> float:
    return times[min(len(times) - 1, int(len(times) * share))] / 1000


def spans_stage(stage: PiiStage, case: dict[str, Any]) -> tuple[list[tuple[int, int]], str]:
    result = stage.evaluate(case["text"], POLICY[case["lang"]])
    body = case["text"] if result.body is None else result.body
    return [(f.start or 0, f.end or 0) for f in result.findings], body


def score(
    name: str,
    times: list[int],
    cases: list[dict[str, Any]],
    analyse: Callable[[dict[str, Any]], tuple[list[tuple[int, int]], str | None]],
) -> Row:
    row = Row(name, percentile(times, 0.5), percentile(times, 0.99), 0, 0, 0, 0, [])
    for case in cases:
        spans, body = analyse(case)
        text = case["text"]
        for value in case["pii"]:
            row.pii += 1
            start = text.index(value)
            covered = any(s <= start and start + len(value) <= e for s, e in spans)
            if covered and (body is None or value not in body):
                row.found += 1
            else:
                row.missed.append(f"{case['id']}:{value}")
        for value in case["keep"]:
            start = text.index(value)
            touched = any(s < start + len(value) and start < e for s, e in spans)
            row.keep_hit += touched if body is None else value not in body
        row.false += bool(spans) and not case["pii"]
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--stock-messages", type=int, default=None, help="default: --messages")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    cases = [json.loads(line) for line in args.corpus.read_text(encoding="utf-8").splitlines()]
    repeat = -(-args.messages // len(cases))
    messages = cases * repeat
    stock_n = args.stock_messages or len(messages)
    stock_messages = (cases * -(-stock_n // len(cases)))[: max(stock_n, len(cases))]

    stage, ours, stock = PiiStage(), lendsms_engine(), stock_engine()
    normalized = {id(case): normalize(case["text"]) for case in cases}

    def stage_only(case: dict[str, Any]) -> object:
        text = case["text"]
        return stage.evaluate(text, POLICY[case["lang"]], normalized=normalized[id(case)])

    def stage_and_normalize(case: dict[str, Any]) -> object:
        text = case["text"]
        return stage.evaluate(text, POLICY[case["lang"]], normalized=normalize(text))

    def engine_spans(engine: Any, lang: Callable[[dict[str, Any]], str]) -> Callable[..., Any]:
        def analyse(case: dict[str, Any]) -> tuple[list[tuple[int, int]], None]:
            results = engine.analyze(case["text"], language=lang(case))
            return [(r.start, r.end) for r in results], None

        return analyse

    ours_analyse = engine_spans(ours, lambda case: case["lang"])
    stock_analyse = engine_spans(stock, lambda case: "en")
    rows = [
        score("lendsms PiiStage (pipeline)", timed(stage_only, messages), cases,
              lambda case: spans_stage(stage, case)),
        score("lendsms PiiStage + normalize()", timed(stage_and_normalize, messages), cases,
              lambda case: spans_stage(stage, case)),
        score("presidio engine, lendsms recognizers", timed(ours_analyse, messages), cases,
              ours_analyse),
        score("presidio engine, stock recognizers", timed(stock_analyse, stock_messages), cases,
              stock_analyse),
    ]  # fmt: skip
    pii = sum(len(c["pii"]) for c in cases)
    keep = sum(len(c["keep"]) for c in cases)
    print(f"corpus {args.corpus.name}: {len(cases)} cases, {pii} PII values, {keep} keep values;")
    print(f"{len(messages):,} messages timed per row ({len(stock_messages):,} for the stock "
          f"engine), one core, Python {sys.version.split()[0]}")  # fmt: skip
    print()
    header = f"{'analyzer':<38} {'median µs':>10} {'p99 µs':>10} {'PII recall':>12} "
    print(header + f"{'keep hit':>9} {'false':>6}")
    print("-" * (len(header) + 16))
    for r in rows:
        recall = f"{r.found}/{r.pii} {r.found / r.pii:4.0%}"
        print(f"{r.name:<38} {r.median_us:>10.1f} {r.p99_us:>10.1f} {recall:>12} "
              f"{r.keep_hit:>9} {r.false:>6}")  # fmt: skip
    for r in rows:
        if r.missed:
            print(f"  {r.name} missed: {', '.join(r.missed)}")
    return content_section()


def content_section() -> int:
    """The content policy's tables (issue 4), from bench/content.py."""
    import asyncio
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_content", Path(__file__).with_name(
        "content.py"))  # fmt: skip
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    print("\n== content policy (bench/content.py)")
    return int(asyncio.run(module.main()))


if __name__ == "__main__":
    sys.exit(main())
