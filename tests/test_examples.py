"""Every example in examples/ runs and prints what its docstring promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(name: str) -> str:
    env = {**os.environ, "PORT": "0"}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=EXAMPLES,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_quickstart() -> None:
    """A failed call the agent works around: a recovered run with retry depth 1."""
    out = _run("quickstart.py").splitlines()
    assert out[0] == "outcome=recovered retry_depth=1 attempts=2"
    assert out[1].startswith("Prometheus scrapes http://127.0.0.1:")
    assert len((EXAMPLES / "quickstart.py").read_text().splitlines()) <= 26


def test_tenacity_retry() -> None:
    """Two tenacity retries are attempts of one lookup_order call, with their backoff waits."""
    pytest.importorskip("tenacity")
    assert _run("tenacity_retry.py").splitlines() == [
        "{'status': 'shipped'}",
        "outcome=recovered retry_depth=2 attempts=3",
        "lookup_order: 1 call, 3 attempts; waits 1.5 s",
    ]


def test_fallback_chain() -> None:
    """The primary model times out, the secondary serves: one fallback, a recovered run."""
    assert _run("fallback_chain.py").splitlines() == [
        "an answer to 'how do I get a refund?'",
        "fallback primary_model -> secondary_model (TimeoutError): 1",
        "outcome=recovered retry_depth=1 attempts=2",
    ]


def test_openai_mock() -> None:
    """The SDK's hidden 429 retry is an absorbed failure; the usage is recorded."""
    pytest.importorskip("openai")
    pytest.importorskip("httpx")
    assert _run("openai_mock.py").splitlines() == [
        "Refunds take 5 days.",
        "absorbed RateLimitError: 1",
        "outcome=recovered retry_depth=1 tokens=49",
    ]


def test_fastapi_service() -> None:
    """The service's own /metrics serves the runs /ask made."""
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    out = _run("fastapi_service.py").splitlines()
    assert out[:2] == [
        "{'articles': ['kb-17'], 'retry_depth': 1}",
        "{'articles': ['kb-17'], 'retry_depth': 0}",
    ]
    series = sorted(out[2:])
    assert len(series) == 2
    assert 'agentrel_cohort="free",agentrel_outcome="success"' in series[0]
    assert series[0].endswith(" 1.0")
    assert 'agentrel_cohort="smb",agentrel_outcome="recovered"' in series[1]
    assert series[1].endswith(" 1.0")
