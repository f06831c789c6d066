"""Prometheus metrics (the catalogue: docs/metrics.md). Labels are bounded:
client ids from the registry, purposes, outcomes, finding kinds and
categories, cap rule ids, provider names from the settings, route templates.
Never a number, borrower or text.

With several processes serving (``lendsms serve --workers N``, or
``PROMETHEUS_MULTIPROC_DIR`` set by the operator) prometheus_client's
multiprocess mode is used: every process writes its samples to files in that
folder (the variable must be set before prometheus_client is imported, which
the supervisor does for its children) and each ``/metrics`` answer aggregates
all of them: counters and histograms are summed, each gauge says how
(``multiprocess_mode``: the queue and webhook-backlog gauges take the most
recent reading, since every process reads the same store, and so does
readiness; circuits the maximum)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as _multiprocess

from gateway import __version__
from gateway.models import Finding
from gateway.store.delivery import WebhookBacklog

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
QUEUE_STATES = ("queued", "scheduled", "sending")  # what waits in the dispatch queue
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The folder of multiprocess mode, or None when this process reports alone."""
    return os.environ.get(MULTIPROC_ENV) or None


def mark_process_dead(pid: int) -> None:
    """Drop a finished process's live gauges (no-op outside multiprocess mode)."""
    folder = multiprocess_dir()
    if folder is not None:
        _multiprocess.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._aggregate: CollectorRegistry | None = None
        # labelled children by label values: ``labels()`` validates and locks on
        # every call, which the per-request counts need not pay again
        self._children: dict[tuple[str, ...], Any] = {}
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
        self.review_actions = Counter(
            "lendsms_review_actions_total",
            "Compliance-review actions taken (approved, rejected, revealed, refused)",
            ["action"],
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
            multiprocess_mode="livemostrecent",
        )
        self.oldest_queued_age = Gauge(
            "lendsms_oldest_queued_age_seconds",
            "How long the oldest due message has waited for dispatch (0 when none)",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.webhooks_pending = Gauge(
            "lendsms_webhooks_pending",
            "Client status webhooks kept in the store, waiting or leased (read at scrape time)",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.webhooks_due = Gauge(
            "lendsms_webhooks_due",
            "Client status webhooks claimable now: due and not leased (read at scrape time)",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.webhooks_oldest_due = Gauge(
            "lendsms_webhooks_oldest_due_seconds",
            "How long the oldest claimable status webhook has waited to be claimed (0 when none)",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.circuit_open = Gauge(
            "lendsms_circuit_open",
            "1 while a provider's circuit breaker is open, else 0",
            ["provider"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.backpressure_rejections = Counter(
            "lendsms_backpressure_rejections_total",
            "POST /v1/messages answered 503 because the dispatch queue was over a limit",
            ["reason"],
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
            "1 when /readyz would answer 200 (store, audit log, policy store usable), else 0",
            registry=r,
            multiprocess_mode="livemostrecent",  # the answering process's own checks
        )
        self.build_info = Gauge(
            "lendsms_build_info",
            "Build information",
            ["version"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.build_info.labels(version=__version__).set(1)
        for state in QUEUE_STATES:
            self.queue.labels(state).set(0)

    def exposition(self) -> bytes:
        """The text ``/metrics`` answers: this registry, or in multiprocess mode
        the aggregate of every process's files."""
        if multiprocess_dir() is None:
            return generate_latest(self.registry)
        if self._aggregate is None:
            self._aggregate = CollectorRegistry()
            _multiprocess.MultiProcessCollector(self._aggregate)  # type: ignore[no-untyped-call]
        return generate_latest(self._aggregate)

    # -- helpers for the places that count --------------------------------------
    def observe_audit(self, seconds: float, ok: bool) -> None:
        """One audit append (the writer's ``on_append`` hook)."""
        self.audit_duration.observe(seconds)
        if not ok:
            self.audit_failures.inc()

    def count_findings(self, findings: tuple[Finding, ...]) -> None:
        for f in findings:
            self._child(self.findings, "findings", f.kind, f.category, str(f.action)).inc()

    def count_message(self, client: str, purpose: str, outcome: str) -> None:
        """One ``POST /v1/messages`` outcome (``lendsms_messages_total``)."""
        self._child(self.messages, "messages", client, purpose, outcome).inc()

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request's duration by route template, method and status."""
        self._child(self.http_duration, "http", route, method, str(status)).observe(seconds)

    def _child(self, metric: Any, name: str, *labels: str) -> Any:
        key = (name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def set_queue(
        self, depth: Mapping[str, int], oldest_due: datetime | None, now: datetime
    ) -> None:
        for state in sorted(set(QUEUE_STATES) | set(depth)):
            self.queue.labels(state).set(depth.get(state, 0))
        age = 0.0 if oldest_due is None else max(0.0, (now - oldest_due).total_seconds())
        self.oldest_queued_age.set(age)

    def set_webhooks(self, backlog: WebhookBacklog, now: datetime) -> None:
        self.webhooks_pending.set(backlog.pending)
        self.webhooks_due.set(backlog.due)
        oldest = backlog.oldest_due
        age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
        self.webhooks_oldest_due.set(age)

    def set_circuits(self, open_by_provider: Mapping[str, bool]) -> None:
        for name, is_open in open_by_provider.items():
            self.circuit_open.labels(name).set(1 if is_open else 0)
