"""Property-based fuzzing of the live API from its own /openapi.json
(schemathesis): no 5xx, and every answer matches the document (status code,
content type, headers, body schema)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from config.settings import Settings
from tests.e2e.live_server import LiveServer

MAX_EXAMPLES = 100  # per operation and phase; keeps the whole run well under a minute


@pytest.fixture
def live(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    # the fuzzer sends many requests without a valid key on purpose
    lenient = make_settings(server={"auth_failures_per_minute": 100_000})
    server = LiveServer(lenient, contact_policy=True).start()
    try:
        yield server
    finally:
        server.stop()


def test_fuzz_every_operation_from_the_document(live: LiveServer) -> None:
    token = live.key(scopes=("send", "admin"))
    doc = requests.get(f"{live.url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(doc)
    headers = {"Authorization": f"Bearer {token}"}
    session = requests.Session()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    calls = 0
    for operation, mode in itertools.product(operations, GenerationMode):

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: Any) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(
                base_url=live.url,
                session=session,
                headers=headers,
                # valid-per-schema bodies may still be refused by content or
                # phone-number rules (400/422); everything else is checked
                excluded_checks=[checks.positive_data_acceptance],
            )

        try:
            fuzz()
        except Unsatisfiable:
            # an operation with no inputs (e.g. /healthz) has nothing to break
            if mode is GenerationMode.POSITIVE:
                raise
    assert calls >= len(operations) * MAX_EXAMPLES // 5
