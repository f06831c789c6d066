"""The shortcuts on the acceptance path give the same answers as the long way:
one phone parse for the E.164 form, the region and the mask; cached metric
children; a blind index keyed once."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from gateway.crypto import BlindIndex
from gateway.errors import Invalid
from gateway.metrics import Metrics
from gateway.schemas import mask_phone, parse_phone, parse_send_request

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
KEY = bytes(range(32))


def _send(to: str, region: str | None = None) -> dict[str, str]:
    body = {"to": to, "borrower_id": "B-1", "purpose": "repayment_reminder", "text": "请按时还款。"}
    if region is not None:
        body["region"] = region
    return body


@pytest.mark.parametrize(
    ("raw", "region", "e164", "masked"),
    [
        ("+86 138 1234 5678", None, "+8613812345678", "+86 138****5678"),
        ("13812345678", "CN", "+8613812345678", "+86 138****5678"),
        ("+1 415 555 2671", None, "+14155552671", "+1 415***2671"),
        ("07400 123456", "GB", "+447400123456", "+44 740***3456"),
    ],
)
def test_the_request_carries_the_mask_of_its_number(
    raw: str, region: str | None, e164: str, masked: str
) -> None:
    request = parse_send_request(_send(raw, region), now=NOW, templates={}, max_text_chars=1000)
    assert request.to == e164
    assert request.to_masked == masked == mask_phone(e164)
    assert parse_phone(raw, region) == (e164, request.region)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("+86 10 6552 9988", "is not a mobile number"),  # a valid Beijing landline
        ("+86 138 1234", "is not a valid phone number"),
        ("+1 555 0100 000", "is not a valid phone number"),
    ],
)
def test_refusals_still_say_why(raw: str, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_phone(raw, None)
    assert caught.value.errors == [{"field": "to", "message": message}]


def test_cached_metric_children_count_in_the_registry() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    for _ in range(3):
        metrics.count_message("c1", "collection", "queued")
        metrics.observe_http("/v1/messages", "POST", 202, 0.004)
    metrics.count_message("c1", "collection", "blocked")
    value = registry.get_sample_value
    labels = {"client": "c1", "purpose": "collection"}
    assert value("lendsms_messages_total", {**labels, "outcome": "queued"}) == 3
    assert value("lendsms_messages_total", {**labels, "outcome": "blocked"}) == 1
    http = {"route": "/v1/messages", "method": "POST", "status": "202"}
    assert value("lendsms_http_request_duration_seconds_count", http) == 3
    assert value("lendsms_http_request_duration_seconds_bucket", {**http, "le": "0.005"}) == 3


def test_a_blind_index_gives_the_same_digest_every_time() -> None:
    index = BlindIndex(KEY)
    expected = hmac.new(KEY, b"phone\x00+8613812345678", hashlib.sha256).hexdigest()
    assert [index.phone("+8613812345678") for _ in range(3)] == [expected] * 3
    other = hmac.new(KEY, b"borrower\x00c1\x00B-1", hashlib.sha256).hexdigest()
    assert index.borrower("c1", "B-1") == other
    assert index.phone("+8613812345678") == expected  # the keyed state was not consumed
