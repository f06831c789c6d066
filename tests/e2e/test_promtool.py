"""Issue 10, acceptance 2: ``promtool`` (Debian package ``prometheus``) checks
the alert rules (and runs their unit tests), a scrape taken after traffic, and
every query of the Grafana dashboard. Without promtool these tests skip on a
developer machine and fail in CI (``CI=true``, set by ``.ci/run``, which
installs it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CN_MOBILE, wait_for
from tests.e2e.test_operations import BLOCKED, HELD, post, scrape
from tests.policy.conftest import OVERDUE

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "lendsms.json"


@pytest.fixture
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail("promtool is missing in CI: install the Debian package prometheus")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return found


def run(promtool: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_alert_rules_pass_promtool(promtool: str) -> None:
    done = run(promtool, "check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 9 rules found" in done.stdout


def test_alert_rules_fire_as_their_unit_tests_say(promtool: str) -> None:
    """deploy/prometheus/alerts_test.yml: each alert fires on a synthetic
    series (and not before its ``for``), with its labels and annotations."""
    done = run(promtool, "test", "rules", str(ALERTS.with_name("alerts_test.yml")))
    assert done.returncode == 0, done.stdout + done.stderr
    text = ALERTS.with_name("alerts_test.yml").read_text(encoding="utf-8")
    for name in re.findall(r"- alert: (\w+)", ALERTS.read_text(encoding="utf-8")):
        if name != "LendsmsAuditSlow":
            assert f"alertname: {name}" in text, name


async def test_a_scrape_after_traffic_passes_promtool(start_gateway: Any, promtool: str) -> None:
    gw = await start_gateway()
    token = await gw.key()
    status, queued = await post(gw, token, purpose="service", text=OVERDUE)
    assert status == 202
    assert (await post(gw, token, purpose="overdue_notice", text=BLOCKED))[0] == 422
    assert (await post(gw, token, purpose="overdue_notice", text=HELD))[0] == 202
    await wait_for(lambda: len(gw.outbox()) == 1, what="the SMS")

    async def provider_counted() -> bool:  # the dispatcher counts after the outbox line
        return "lendsms_provider_requests_total{" in (await scrape(gw)).text

    await wait_for(provider_counted, what="the provider request in the metrics")
    assert (await gw.http.get("/v1/messages/nope")).status == 401  # an unauthenticated one
    m = await scrape(gw)
    for name in ("lendsms_messages_total", "lendsms_provider_requests_total",
                 "lendsms_audit_append_duration_seconds_count"):  # fmt: skip
        assert any(s.name == name for s in m.samples), name
    assert queued["id"] not in m.text and CN_MOBILE not in m.text
    done = run(promtool, "check", "metrics", stdin=m.text)
    assert done.returncode == 0, done.stdout + done.stderr


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def test_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    """Each panel query, with the dashboard's variables filled in, as a recording
    rule: promtool parses it."""
    queries = dashboard_queries()
    assert len(queries) >= 15
    filled = [
        q.replace("$__rate_interval", "5m").replace("$instance", ".*").replace("$client", ".*")
        for q in queries
    ]
    assert all("$" not in q for q in filled)
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"lendsms:dashboard_query_{i}", "expr": q} for i, q in enumerate(filled)
    ]}]}  # fmt: skip
    path = tmp_path / "dashboard-rules.json"  # YAML is a superset of JSON
    path.write_text(json.dumps(rules), encoding="utf-8")
    done = run(promtool, "check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboard_and_alerts_use_only_catalogue_metrics() -> None:
    catalogue = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(lendsms_[a-z_]+)`", catalogue))
    used = set()
    for text in [*dashboard_queries(), ALERTS.read_text(encoding="utf-8")]:
        for name in re.findall(r"\b(lendsms_[a-z_]+)", text):
            used.add(re.sub(r"_(bucket|count|sum)$", "", name))
    assert used <= documented, used - documented
    titles = " ".join(
        p["title"].lower() for p in json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    )
    for topic in ("outcome", "block rate by category", "provider latency", "provider errors",
                  "age", "audit append latency"):  # fmt: skip
        assert topic in titles, topic
