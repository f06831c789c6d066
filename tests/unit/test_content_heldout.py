"""Issue #4 on the held-out corpora that tuning has used (tests/corpus/HELDOUT.md):
``heldout_dev`` and ``heldout_final``, each through the whole filter stage,
overall stop recall >= 97 % and false stops <= 1 %. The per-category table is
printed (``-s`` shows it); failures report counts only, never a message of the
corpus.

``heldout_v3`` (tests/corpus/HELDOUT_V3.md) was blind when first measured
(78.8 % recall, 8.2 % false stops) and is tuning data since 2026-11-28. It is
not asserted here: after the v4 tuning round it scores 198/198 stop recall but
3/233 = 1.3 % false stops (zh ``lawsuit`` sends the pack holds for review by
design), above the 1 % target.

``heldout_v4`` (tests/corpus/HELDOUT_V4.md) was blind when first measured
(64.7 % recall, 4.7 % false stops; 70.6 % / 3.8 % after the v3 round) and is
tuning data since 2026-11-28 20:26 UTC. It is not asserted here either: after
its own tuning round it scores 201/201 stop recall (a tuned, not a blind,
figure) but 3/234 = 1.3 % false stops (two free-text lawsuit notices held by
design, one anti-fraud notice quoting "不还款就坐牢", which
``cn.false_legal.demand`` blocks whatever frames it, by design). Print either
with ``bench/heldout.py --corpus tests/corpus/heldout_v3.jsonl`` (or v4–v15, all
tuning data now; tests/corpus/HELDOUT.md lists their one blind measurement
each). The current blind set (v16) is never run from here.
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
