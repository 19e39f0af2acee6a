"""Every example in examples/ runs and prints what its docstring promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import agentrel

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _env(**extra: str) -> dict[str, str]:
    """The environment of an example's interpreter: no OTEL_* settings, and the agentrel this
    test imported (the source tree or the installed wheel) first on the path, whatever the
    working directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    home = str(Path(agentrel.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (home, env.get("PYTHONPATH")) if p)
    return {**env, **extra}


def _run(name: str) -> str:
    env = _env(PORT="0")
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
    """The README's first code block under Quickstart (it must be Python) and the output the
    README says it prints."""
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Quickstart") :]
    fence = section.index("```")
    opening = "```python\n"
    assert section[fence:].startswith(opening), "the Quickstart's first code block is not Python"
    code = section[fence + len(opening) :]
    code = code[: code.index("```\n")]
    said = "It prints:\n\n```text\n"
    printed = section[section.index(said) + len(said) :]
    return code, printed[: printed.index("```\n")]


def test_quickstart(tmp_path: Path) -> None:
    """The README's Quickstart runs as pasted (no key, no network) in a fresh interpreter and
    prints what the README says: a recovered run, retry depth 1, amplification 2.0, one
    absorbed failure and the failed attempt's 1,280 tokens wasted."""
    code, printed = _readme_quickstart()
    assert code == (EXAMPLES / "quickstart.py").read_text(encoding="utf-8")
    assert printed == (
        "3 articles about refunds\n"
        "outcome=recovered retry_depth=1 attempts=2\n"
        "amplification=2.0\n"
        "absorbed failures=1 wasted tokens=1280\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == printed
    assert proc.stderr == ""
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
