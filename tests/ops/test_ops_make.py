"""`make check-ops`: the ops kit checked by its real tools, without Docker or a venv."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import (
    DASHBOARD_CHECK_DIR,
    ROOT,
    alerting_rules,
    recording_rules,
    require,
    require_binary,
)

pytestmark = pytest.mark.servers


def check_ops(root: Path) -> subprocess.CompletedProcess[str]:
    for name in ("make", "promtool", "amtool", "node"):
        require_binary(name)
    require(
        (DASHBOARD_CHECK_DIR / "node_modules" / ".bin" / "tsc").exists(),
        "tools/dashboard-check/node_modules (run .ci/install-ops)",
    )
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(root), "check-ops", f"PYTHON={sys.executable}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def copy_kit(dest: Path) -> Path:
    """What check-ops reads, copied (node_modules linked) so a test can break one file."""
    shutil.copy(ROOT / "Makefile", dest / "Makefile")
    for rel in ("deploy", "prometheus", "dashboards", "tools/ops"):
        shutil.copytree(ROOT / rel, dest / rel, ignore=shutil.ignore_patterns("__pycache__"))
    check = dest / "tools" / "dashboard-check"
    shutil.copytree(
        DASHBOARD_CHECK_DIR, check, ignore=shutil.ignore_patterns("node_modules", "build*")
    )
    (check / "node_modules").symlink_to((DASHBOARD_CHECK_DIR / "node_modules").resolve())
    (dest / "src" / "agentrel").mkdir(parents=True)
    shutil.copy(ROOT / "src" / "agentrel" / "_catalogue.py", dest / "src" / "agentrel")
    return dest


def test_check_ops_passes_on_the_repository(tmp_path: Path) -> None:
    """Every step runs and passes: generated files current, both Prometheus configs (their
    rule files found), the rules, their unit tests, Alertmanager's config, the dashboards'
    type check."""
    result = check_ops(copy_kit(tmp_path))
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert out.count("SUCCESS: 2 rule files found") == 2
    assert out.count(f"SUCCESS: {len(recording_rules())} rules found") == 3
    assert out.count(f"SUCCESS: {len(alerting_rules())} rules found") == 3
    unit_tests = sorted((ROOT / "prometheus" / "tests").glob("*.test.yml"))
    assert len(unit_tests) >= 2
    assert out.count("Unit Testing:") == len(unit_tests)
    assert "Checking 'deploy/alertmanager/alertmanager.yml'  SUCCESS" in out
    assert "wrote 2 dashboard(s)" in out


def test_check_ops_fails_on_a_broken_alertmanager_config(tmp_path: Path) -> None:
    """The target can fail: an inhibition rule with an unknown field stops it at amtool."""
    root = copy_kit(tmp_path)
    config = root / "deploy" / "alertmanager" / "alertmanager.yml"
    config.write_text(config.read_text().replace("equal:", "equals:", 1))
    result = check_ops(root)
    assert result.returncode != 0
    assert "equals" in result.stdout + result.stderr
    assert "wrote 2 dashboard(s)" not in result.stdout


def test_check_ops_fails_on_a_stale_dashboard(tmp_path: Path) -> None:
    """A hand-edited generated file fails the generator's --check step first."""
    root = copy_kit(tmp_path)
    dashboard = root / "dashboards" / "agentrel-tools.json"
    dashboard.write_text(dashboard.read_text().replace('"title"', '"title" ', 1))
    result = check_ops(root)
    assert result.returncode != 0
    assert "out of date: dashboards/agentrel-tools.json" in result.stderr
