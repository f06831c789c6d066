"""Issue #4 on the held-out corpora that tuning has used (tests/corpus/HELDOUT.md):
``heldout_dev`` and ``heldout_final``, each through the whole filter stage,
overall stop recall >= 97 % and false stops <= 1 %. The per-category table is
printed (``-s`` shows it); failures report counts only, never a message of the
corpus.

The newest blind set, ``heldout_v3`` (tests/corpus/HELDOUT_V3.md), is not a
test: it measures how the filter does on wording nobody tuned it for, and that
figure is reported (``bench/heldout.py --corpus tests/corpus/heldout_v3.jsonl``),
not asserted. Tuning against it would end its use as a blind set.
"""

from __future__ import annotations

import pytest

from tests.content_eval import CORPUS_DIR, evaluate, load_cases

RECALL_TARGET, FALSE_STOP_TARGET = 0.97, 0.01
TUNED = {"dev": "heldout_dev.jsonl", "final": "heldout_final.jsonl"}


@pytest.mark.parametrize("file_name", TUNED.values(), ids=TUNED.keys())
async def test_heldout_recall_and_false_stops(file_name: str) -> None:
    report = await evaluate(load_cases(CORPUS_DIR / file_name))
    stops, sends = report.totals("stop"), report.totals("send")
    assert stops[1] > 0 and sends[1] > 0
    assert {o.lang for o in report.outcomes} == {"zh", "en"}
    print(f"\n{file_name}\n{report.table()}")
    assert report.recall >= RECALL_TARGET, f"stop recall {stops[0]}/{stops[1]}"
    assert report.false_stop_rate <= FALSE_STOP_TARGET, f"false stops {sends[0]}/{sends[1]}"
