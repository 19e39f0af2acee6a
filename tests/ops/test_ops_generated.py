"""The generated rule and dashboard files are what tools/ops/generate.py writes today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

GENERATOR = ROOT / "tools" / "ops" / "generate.py"
GENERATED = (
    "prometheus/agentrel.rules.yml",
    "prometheus/agentrel.alerts.yml",
    "dashboards/agentrel-overview.json",
    "dashboards/agentrel-tools.json",
)


def test_generated_files_are_up_to_date(tmp_path: Path) -> None:
    """Regenerating into a temp dir gives byte-identical files (run the generator if not)."""
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(tmp_path)], check=True)
    stale = [rel for rel in GENERATED if (tmp_path / rel).read_bytes() != (ROOT / rel).read_bytes()]
    assert not stale, f"out of date, run `python3 tools/ops/generate.py`: {stale}"


def test_check_mode_detects_a_stale_file(tmp_path: Path) -> None:
    """`generate.py --check` fails on a hand-edited file, so CI can rely on it."""
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(tmp_path)], check=True)
    ok = subprocess.run([sys.executable, str(GENERATOR), "--check", "--out", str(tmp_path)])
    assert ok.returncode == 0
    edited = tmp_path / "prometheus" / "agentrel.alerts.yml"
    edited.write_text(edited.read_text().replace("for: 15m", "for: 1m"))
    stale = subprocess.run(
        [sys.executable, str(GENERATOR), "--check", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert stale.returncode == 1
    assert "agentrel.alerts.yml" in stale.stderr
