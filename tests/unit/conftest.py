"""Fixtures shared by the unit tests: the shipped content filters, built once."""

from __future__ import annotations

import pytest

from filters.content import ContentFilter
from gateway.stages.content import shipped_filters


@pytest.fixture(scope="session")
def cn() -> ContentFilter:
    return shipped_filters()["cn-collection"]


@pytest.fixture(scope="session")
def us() -> ContentFilter:
    return shipped_filters()["us-fdcpa"]
