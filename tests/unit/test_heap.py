"""gateway.heap.settle, in a child process: freezing the test process's own
heap would keep every later test's garbage alive."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import gc
from gateway.heap import YOUNG_THRESHOLD, settle
built = [[i] for i in range(50_000)]  # a heap built at start-up
before = gc.get_freeze_count()
settle()
print(before, gc.get_freeze_count(), gc.get_threshold()[0], YOUNG_THRESHOLD)
"""


def test_settle_freezes_the_built_heap_and_widens_the_young_generation() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    before, after, young, expected = map(int, out)
    assert before == 0
    assert after >= 50_000  # the lists built before settle() are out of the collector's view
    assert young == expected > 700


def test_collector_paused_restores_the_collector() -> None:
    import gc

    from gateway.heap import collector_paused

    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
    try:
        with collector_paused():
            raise RuntimeError("a build that fails")
    except RuntimeError:
        pass
    assert gc.isenabled()
