"""The real tools read the real files: promtool and amtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import (
    ALERTS_FILE,
    DEPLOY_DIR,
    PROMETHEUS_DIR,
    RULE_TESTS_DIR,
    RULES_FILE,
    alerting_rules,
    load_yaml,
    recording_rules,
    require_binary,
)

pytestmark = pytest.mark.servers


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=120)


def test_promtool_check_rules() -> None:
    """`promtool check rules` accepts both rule files (and its linter finds nothing)."""
    promtool = require_binary("promtool")
    result = run([promtool, "check", "rules", str(RULES_FILE), str(ALERTS_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules() -> None:
    """Every promtool unit test passes."""
    promtool = require_binary("promtool")
    files = sorted(str(p) for p in RULE_TESTS_DIR.glob("*.yml"))
    assert len(files) >= 2
    result = run([promtool, "test", "rules", *files])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)


def test_promtool_test_rules_catches_a_changed_threshold(tmp_path: Path) -> None:
    """The unit tests fail when an alert's threshold or `for:` changes: they can fail."""
    promtool = require_binary("promtool")
    shutil.copytree(PROMETHEUS_DIR, tmp_path / "prometheus")
    alerts = tmp_path / "prometheus" / ALERTS_FILE.name
    text = alerts.read_text()
    for old, new in (("> 3\n", "> 5\n"), ("for: 2m", "for: 1m")):
        assert old in text
        alerts.write_text(text.replace(old, new, 1))
        result = run(
            [promtool, "test", "rules", "tests/agentrel.alerts.test.yml"],
            cwd=tmp_path / "prometheus",
        )
        assert result.returncode != 0, f"changing {old!r} went unnoticed"


@pytest.mark.parametrize("name", ["prometheus.yml", "prometheus.local.yml"])
def test_promtool_check_config_of_the_shipped_prometheus(name: str, tmp_path: Path) -> None:
    """`promtool check config` on the repository's own file, as is, from an unrelated working
    directory: its rule_files resolve relative to the config and are the shipped rule files."""
    promtool = require_binary("promtool")
    config = DEPLOY_DIR / "prometheus" / name
    result = run([promtool, "check", "config", str(config)], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "SUCCESS: 2 rule files found" in out
    assert f"SUCCESS: {len(recording_rules())} rules found" in out
    assert f"SUCCESS: {len(alerting_rules())} rules found" in out
    rule_files = load_yaml(config)["rule_files"]
    assert [(config.parent / f).resolve() for f in rule_files] == [RULES_FILE, ALERTS_FILE]


def test_promtool_check_config_fails_on_a_missing_rule_file(tmp_path: Path) -> None:
    """The check can fail: the same config copied elsewhere names rule files that do not
    exist there."""
    promtool = require_binary("promtool")
    shutil.copy(DEPLOY_DIR / "prometheus" / "prometheus.yml", tmp_path / "prometheus.yml")
    result = run([promtool, "check", "config", str(tmp_path / "prometheus.yml")])
    assert result.returncode != 0
    assert "agentrel.rules.yml" in result.stdout + result.stderr


def test_amtool_check_config() -> None:
    """deploy/alertmanager/alertmanager.yml is a valid Alertmanager config."""
    amtool = require_binary("amtool")
    result = run([amtool, "check-config", str(DEPLOY_DIR / "alertmanager" / "alertmanager.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
