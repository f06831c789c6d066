"""The environment of a gateway started as a subprocess by a test: the test
run's own, without any ``LENDSMS_*`` setting (the test decides those), but
with the shared content-pack cache (tests/conftest.py), so that every
subprocess does not compile the packs' derived data from nothing."""

from __future__ import annotations

import os

CACHE_ENV = "LENDSMS_CONTENT_CACHE"


def gateway_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENDSMS_")}
    if CACHE_ENV in os.environ:
        env[CACHE_ENV] = os.environ[CACHE_ENV]
    return env
