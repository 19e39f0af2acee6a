"""Shared helpers for the ops-kit tests (dashboards, Prometheus rules, compose stack).

Tests that need a real binary call :func:`require_binary` (or :func:`require`): it skips when
the binary is absent, unless ``AGENTREL_REQUIRE_SERVERS=1`` (as in CI), where it fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "prometheus"
DASHBOARDS_DIR = ROOT / "dashboards"
DEPLOY_DIR = ROOT / "deploy"
RULES_FILE = PROMETHEUS_DIR / "agentrel.rules.yml"
ALERTS_FILE = PROMETHEUS_DIR / "agentrel.alerts.yml"
RULE_TESTS_DIR = PROMETHEUS_DIR / "tests"
DASHBOARD_CHECK_DIR = ROOT / "tools" / "dashboard-check"
RUNBOOK = ROOT / "docs" / "runbook.md"
OPERATIONS = ROOT / "docs" / "operations.md"

T = TypeVar("T")


def servers_required() -> bool:
    return os.environ.get("AGENTREL_REQUIRE_SERVERS") == "1"


def require(available: bool, what: str) -> None:
    """Skip (locally) or fail (AGENTREL_REQUIRE_SERVERS=1) when ``what`` is not available."""
    if available:
        return
    if servers_required():
        pytest.fail(f"{what} is required (AGENTREL_REQUIRE_SERVERS=1) but not available")
    pytest.skip(f"{what} not available")


def require_binary(*names: str) -> str:
    """Path of the first of ``names`` found on PATH (or next to the interpreter)."""
    candidates = [str(Path(sys.executable).parent)]
    for name in names:
        found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(candidates))
        if found:
            return found
    require(False, " or ".join(names))
    raise AssertionError("unreachable")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rule_groups() -> list[dict[str, Any]]:
    return [g for f in (RULES_FILE, ALERTS_FILE) for g in load_yaml(f)["groups"]]


def recording_rules() -> list[dict[str, Any]]:
    return [r for g in rule_groups() for r in g["rules"] if "record" in r]


def alerting_rules() -> list[dict[str, Any]]:
    return [r for g in rule_groups() for r in g["rules"] if "alert" in r]


def dashboards() -> dict[str, dict[str, Any]]:
    return {
        p.name: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(DASHBOARDS_DIR.glob("*.json"))
    }


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable of a dashboard."""
    out = []
    for panel in panels(dashboard):
        for t in panel.get("targets", []):
            out.append((f"{dashboard['uid']}: {panel['title']} [{t['refId']}]", t["expr"]))
    for var in dashboard.get("templating", {}).get("list", []):
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            out.append((f"{dashboard['uid']}: variable {var['name']}", label_values_expr(query)))
    return out


_LABEL_VALUES = re.compile(r"^label_values\((?P<expr>.+),\s*(?P<label>\w+)\)$")


def label_values_expr(query: str) -> str:
    """The PromQL a Grafana ``label_values(expr, label)`` variable query runs."""
    m = _LABEL_VALUES.match(query.strip())
    assert m, f"not a label_values() query: {query}"
    return f"count by ({m['label']}) ({m['expr']})"


def substitute_grafana_vars(expr: str) -> str:
    """Replace dashboard variables by what Grafana sends with 'All' selected."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "15s")
    return re.sub(r"\$\{?(agent|cohort|tool)\}?", ".*", expr)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.25
) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception as exc:  # the server may not be up yet
            last_error = exc
        else:
            if value:
                return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error})")


def http_get_json(url: str, params: dict[str, str] | None = None, timeout: float = 5) -> Any:
    if params:
        url = f"{url}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.load(resp)


class Processes:
    """Starts processes and stops every one of them, by PID, at teardown."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed by the child
        try:
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kwargs
            )
        finally:
            log.close()
        self.started.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop_all(self) -> None:
        for _, proc in reversed(self.started):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        for _, proc in reversed(self.started):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()
