"""Issue 9: docker-compose.yml (no Docker engine runs here, so it is checked
statically): it parses, Redis is durable, the services are the two HTTP-only
gateways, one worker and Prometheus, the compose settings load with the
compose environment, and Prometheus scrapes exactly those services
(``promtool check config``; skipped without promtool, failed in CI)."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_the_services_are_redis_two_gateways_a_worker_and_prometheus(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert set(services) == {"redis", "gateway-a", "gateway-b", "worker", "prometheus"}
    redis_cmd = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_cmd and "--appendfsync always" in redis_cmd
    for name in ("gateway-a", "gateway-b"):
        assert services[name]["command"] == ["serve", "--no-dispatch"]
    assert services["worker"]["command"][0] == "worker"
    assert "--metrics-port" in services["worker"]["command"]
    host_ports = [p.split(":")[1] for n in ("gateway-a", "gateway-b") for p in services[n]["ports"]]
    assert len(set(host_ports)) == 2, "the gateways need different host ports"


def test_the_compose_settings_load_with_the_compose_environment(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    service = compose["services"]["gateway-a"]
    env = {k: str(v) for k, v in service["environment"].items()}
    config = (ROOT / "deploy" / "compose" / "lendsms.toml").read_text(encoding="utf-8")
    for name in ("data", "index", "audit"):  # the Compose secrets, as files here
        key = tmp_path / f"{name}.key"
        key.write_text(base64.b64encode(secrets.token_bytes(32)).decode(), encoding="utf-8")
        config = config.replace(f"/run/secrets/lendsms_{name}_key", str(key))
    (tmp_path / "lendsms.toml").write_text(config, encoding="utf-8")
    settings = load_settings(tmp_path / "lendsms.toml", env)
    assert settings.store.backend == "redis" and settings.policy.backend == "redis"
    assert settings.store.require_durable
    assert settings.server.host == "0.0.0.0"  # noqa: S104 - inside the container
    assert str(settings.audit.dir) == "/srv/lendsms/var/audit"


def test_prometheus_scrapes_every_gateway_and_the_worker(compose: dict[str, Any]) -> None:
    conf = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    (job,) = conf["scrape_configs"]
    assert job["job_name"] == "lendsms"  # what alerts.yml expects
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    worker_port = compose["services"]["worker"]["command"][-1]
    assert targets == {"gateway-a:8080", "gateway-b:8080", f"worker:{worker_port}"}
    volumes = compose["services"]["prometheus"]["volumes"]
    assert any(v.startswith("./deploy/prometheus:") for v in volumes)


def test_promtool_accepts_the_prometheus_configuration() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail("promtool is missing in CI: install the Debian package prometheus")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    done = subprocess.run([promtool, "check", "config", str(PROMETHEUS)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
