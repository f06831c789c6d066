"""Prometheus metrics (the catalogue: docs/metrics.md). Labels are bounded:
client ids from the registry, purposes, outcomes, finding kinds and
categories, cap rule ids, provider names from the settings, route templates.
Never a number, borrower or text."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway import __version__
from gateway.models import Finding

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
QUEUE_STATES = ("queued", "scheduled", "sending")  # what waits in the dispatch queue


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "lendsms_messages_total",
            "Messages answered by POST /v1/messages, by outcome",
            ["client", "purpose", "outcome"],
            registry=r,
        )
        self.findings = Counter(
            "lendsms_findings_total",
            "Findings of accepted or blocked messages",
            ["kind", "category", "action"],
            registry=r,
        )
        self.cap_rejections = Counter(
            "lendsms_cap_rejections_total",
            "Messages refused (429) by a contact cap, by cap rule",
            ["rule"],
            registry=r,
        )
        self.http_duration = Histogram(
            "lendsms_http_request_duration_seconds",
            "HTTP request duration by route template",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.provider_requests = Counter(
            "lendsms_provider_requests_total",
            "Calls to SMS providers, by mapped result",
            ["provider", "result"],
            registry=r,
        )
        self.provider_duration = Histogram(
            "lendsms_provider_request_duration_seconds",
            "Duration of calls to SMS providers",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.deliveries = Counter(
            "lendsms_deliveries_total",
            "Final delivery outcomes reported by providers (receipts, status queries)",
            ["provider", "status"],
            registry=r,
        )
        self.dispatched = Counter(
            "lendsms_dispatch_outcomes_total",
            "Messages leaving the dispatcher, by final status",
            ["status"],
            registry=r,
        )
        self.queue = Gauge(
            "lendsms_queue_messages",
            "Messages in the dispatch queue, by state (read from the store at scrape time)",
            ["state"],
            registry=r,
        )
        self.oldest_queued_age = Gauge(
            "lendsms_oldest_queued_age_seconds",
            "How long the oldest due message has waited for dispatch (0 when none)",
            registry=r,
        )
        self.circuit_open = Gauge(
            "lendsms_circuit_open",
            "1 while a provider's circuit breaker is open, else 0",
            ["provider"],
            registry=r,
        )
        self.audit_duration = Histogram(
            "lendsms_audit_append_duration_seconds",
            "Time for an audit record to become durable",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.audit_failures = Counter(
            "lendsms_audit_failures_total", "Audit appends that failed", registry=r
        )
        self.ready = Gauge(
            "lendsms_ready",
            "1 when /readyz would answer 200 (store and audit log usable), else 0",
            registry=r,
        )
        self.build_info = Gauge("lendsms_build_info", "Build information", ["version"], registry=r)
        self.build_info.labels(version=__version__).set(1)
        for state in QUEUE_STATES:
            self.queue.labels(state).set(0)

    # -- helpers for the places that count --------------------------------------
    def observe_audit(self, seconds: float, ok: bool) -> None:
        """One audit append (the writer's ``on_append`` hook)."""
        self.audit_duration.observe(seconds)
        if not ok:
            self.audit_failures.inc()

    def count_findings(self, findings: tuple[Finding, ...]) -> None:
        for f in findings:
            self.findings.labels(f.kind, f.category, str(f.action)).inc()

    def set_queue(
        self, depth: Mapping[str, int], oldest_due: datetime | None, now: datetime
    ) -> None:
        for state in sorted(set(QUEUE_STATES) | set(depth)):
            self.queue.labels(state).set(depth.get(state, 0))
        age = 0.0 if oldest_due is None else max(0.0, (now - oldest_due).total_seconds())
        self.oldest_queued_age.set(age)

    def set_circuits(self, open_by_provider: Mapping[str, bool]) -> None:
        for name, is_open in open_by_provider.items():
            self.circuit_open.labels(name).set(1 if is_open else 0)
