"""Each dashboard type-checks against Grafana's own schema types (@grafana/schema) with tsc."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import DASHBOARD_CHECK_DIR, DASHBOARDS_DIR, require, require_binary

pytestmark = pytest.mark.servers
TSC = DASHBOARD_CHECK_DIR / "node_modules" / ".bin" / "tsc"


@pytest.fixture
def out_dir() -> Iterator[Path]:
    """A build dir inside tools/dashboard-check (so node_modules resolves), removed after."""
    path = DASHBOARD_CHECK_DIR / f"build-pytest-{id(object())}"
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _first_thresholds(dashboard: dict[str, Any]) -> dict[str, Any]:
    return next(
        p["fieldConfig"]["defaults"]["thresholds"]
        for p in dashboard["panels"]
        if "thresholds" in p.get("fieldConfig", {}).get("defaults", {})
    )


def typecheck(files: list[Path], out: Path) -> subprocess.CompletedProcess[str]:
    node = require_binary("node")
    require(TSC.exists(), f"{TSC} (run .ci/install-ops or npm ci in tools/dashboard-check)")
    gen = subprocess.run(
        [node, "generate.mjs", "--out", str(out), *map(str, files)],
        cwd=DASHBOARD_CHECK_DIR, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    return subprocess.run(
        [node, str(TSC), "--noEmit", "-p", str(out / "tsconfig.json")],
        cwd=DASHBOARD_CHECK_DIR, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_dashboards_satisfy_grafana_dashboard_type(out_dir: Path) -> None:
    """`{...} satisfies Dashboard` compiles for both dashboards."""
    files = sorted(DASHBOARDS_DIR.glob("*.json"))
    assert len(files) == 2
    result = typecheck(files, out_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(list(out_dir.glob("*.ts"))) == 2


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        pytest.param(
            lambda d: d.update(schemaVersion="39"),
            "not assignable to type 'number'",
            id="wrong-type",
        ),
        pytest.param(lambda d: d.update(refesh="30s"), "refesh", id="unknown-field"),
        pytest.param(
            lambda d: d["templating"]["list"][1].update(type="querry"), "querry", id="bad-enum"
        ),
        pytest.param(
            lambda d: _first_thresholds(d).update(mode="abs"), '"abs"', id="bad-string-enum"
        ),
    ],
)
def test_the_type_check_rejects_broken_dashboards(
    out_dir: Path, tmp_path: Path, mutate: Callable[[dict[str, Any]], None], error: str
) -> None:
    """The check can fail: schema violations Grafana would choke on are compile errors."""
    dashboard = json.loads((DASHBOARDS_DIR / "agentrel-overview.json").read_text())
    mutate(dashboard)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(dashboard))
    result = typecheck([broken], out_dir)
    assert result.returncode != 0
    assert error in result.stdout
