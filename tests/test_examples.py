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


def _readme_quickstart() -> tuple[str, str]:
    """The README's first code block under Quickstart and the output it says it prints."""
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Quickstart") :]
    opening = "```python\n"
    code = section[section.index(opening) + len(opening) :]
    code = code[: code.index("```\n")]
    said = "It prints:\n\n```text\n"
    printed = section[section.index(said) + len(said) :]
    return code, printed[: printed.index("```\n")]


def test_quickstart() -> None:
    """The README's Quickstart runs as pasted (no key, no network) in a fresh interpreter and
    prints what the README says: a recovered run, retry depth 1, amplification 2.0."""
    code, printed = _readme_quickstart()
    assert code == (EXAMPLES / "quickstart.py").read_text(encoding="utf-8")
    assert printed == (
        "3 articles about refunds\noutcome=recovered retry_depth=1 attempts=2\namplification=2.0\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == printed
    assert _run("quickstart.py") == printed


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
