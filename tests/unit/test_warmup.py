"""The serving process's warm-up loads the numbering plans of both markets.

Runs in a fresh interpreter: the test process has long loaded them."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
from phonenumbers.phonemetadata import PhoneMetadata
before = sorted(PhoneMetadata._region_metadata)
from gateway.warmup import warm_up
warm_up()
after = sorted(PhoneMetadata._region_metadata)
warm_up(("ZZ",))  # a region without an example number is skipped, not an error
print(repr(before)); print(repr(after))
"""


def test_warm_up_loads_cn_and_us_numbering_plans() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    before, after = done.stdout.strip().splitlines()
    assert before == "[]"
    assert after == "['CN', 'US']"
