"""The garbage collector of a long-running server process.

A serving process builds a large heap once (policy packs, automata, lexicons:
about a hundred thousand objects) and then allocates short-lived objects per
request. With CPython's default thresholds the cyclic collector runs every 700
net allocations and, every so often, walks the whole heap in a full
collection: tens of milliseconds on one request's path, and several per cent of
the CPU. :func:`settle` moves everything built so far out of the collector's
view (``gc.freeze``; it is never garbage) and makes the youngest generation
larger, so collections are rarer and cheap. Only for real server processes:
frozen objects are never freed, so a test process that builds many apps must
not call it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 20_000  # allocations between young-generation collections (CPython: 700)


def settle(young: int = YOUNG_THRESHOLD) -> None:
    """Collect once, freeze what survives, widen the young generation."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, old)


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection while a large, long-lived structure is built (the
    policy packs: millions of objects, none of them garbage): the collector
    would walk the growing heap again and again, about a quarter of the
    build's time. Restores the collector's state on the way out."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
