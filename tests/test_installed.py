"""What a user who installed the wheel gets (``make wheel-test``: the suite runs against the
wheel installed with ``[all]`` in a fresh venv). Outside that mode only the checks that hold
for an editable install run."""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys
from pathlib import Path

import pytest

import agentrel
from agentrel import _instrumentor
from conftest import INSTALLED

ROOT = Path(__file__).resolve().parent.parent
installed_only = pytest.mark.skipif(not INSTALLED, reason="needs AGENTREL_TEST_INSTALLED=1")


def test_the_distribution_is_agentrel_otel_at_the_package_version() -> None:
    dist = md.distribution(_instrumentor.DIST)
    assert dist.metadata["Name"] == "agentrel-otel"
    assert dist.version == agentrel.__version__
    assert dist.metadata["Requires-Python"] == ">=3.10"


def test_entry_points_resolve() -> None:
    dist = md.distribution(_instrumentor.DIST)
    eps = {(e.group, e.name): e for e in dist.entry_points}
    assert sorted(eps) == [
        ("agentrel.llm_adapters", "anthropic"),
        ("agentrel.llm_adapters", "openai"),
        ("console_scripts", "agentrel"),
    ]
    from agentrel.__main__ import main

    assert eps[("console_scripts", "agentrel")].load() is main
    for name in ("openai", "anthropic"):
        assert callable(eps[("agentrel.llm_adapters", name)].load())


@installed_only
def test_imported_from_site_packages_not_the_checkout() -> None:
    here = Path(agentrel.__file__).resolve()
    assert not here.is_relative_to(ROOT / "src")
    assert "site-packages" in here.parts
    assert (here.parent / "py.typed").is_file()


@installed_only
def test_the_console_script_runs() -> None:
    script = Path(sys.executable).parent / "agentrel"
    proc = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "demo" in proc.stdout and "inventory" in proc.stdout


@installed_only
def test_no_other_distribution_provides_agentrel() -> None:
    """The registry's unrelated ``agentrel`` must not be what was installed beside it."""
    providers = md.packages_distributions().get("agentrel", [])
    assert providers == ["agentrel-otel"]
