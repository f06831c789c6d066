"""Prometheus metrics. Labels are bounded: client ids from the registry,
purposes, outcomes, route templates. Never a number, borrower or text."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway import __version__

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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
        self.dispatched = Counter(
            "lendsms_dispatch_outcomes_total",
            "Messages leaving the dispatcher, by final status",
            ["status"],
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
        self.build_info = Gauge("lendsms_build_info", "Build information", ["version"], registry=r)
        self.build_info.labels(version=__version__).set(1)
