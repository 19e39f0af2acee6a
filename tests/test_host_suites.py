"""The host-suites job's own logic (tools/host_suites): the per-test comparison of two JUnit
XML results, the expected-differences file, the span minimums, and the pytest plugin that
switches agentrel on, run over a scripted host suite whose true counts are known."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

HOST = Path(__file__).resolve().parent.parent / "tools" / "host_suites"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"host_suites_{name}", HOST / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


compare = _load("compare")
suites = _load("suites")

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.test_a" name="test_ok"><properties>
  <property name="nodeid" value="tests/test_a.py::test_ok"/></properties></testcase>
<testcase classname="tests.test_a" name="test_fails"><properties>
  <property name="nodeid" value="tests/test_a.py::test_fails"/></properties>
  <failure message="assert 1 == 2"/></testcase>
<testcase classname="tests.test_a" name="test_teardown"><properties>
  <property name="nodeid" value="tests/test_a.py::test_teardown"/></properties></testcase>
<testcase classname="tests.test_a" name="test_teardown"><properties>
  <property name="nodeid" value="tests/test_a.py::test_teardown"/></properties>
  <error message="failed on teardown"/></testcase>
<testcase classname="tests.test_a" name="test_skip[x]"><skipped message="no"/></testcase>
</testsuite></testsuites>
"""


def test_read_junit_takes_node_ids_and_the_worst_status(tmp_path: Path) -> None:
    """Node id from the plugin's property (else classname::name); an error in any phase
    makes the test failed."""
    path = tmp_path / "r.xml"
    path.write_text(JUNIT)
    results = compare.read_junit(path)
    assert results == {
        "tests/test_a.py::test_ok": "passed",
        "tests/test_a.py::test_fails": "failed",
        "tests/test_a.py::test_teardown": "failed",
        "tests.test_a::test_skip[x]": "skipped",
    }
    assert compare.counts(results) == {"passed": 1, "failed": 2, "skipped": 1, "total": 4}


def test_regressions_are_tests_that_passed_only_without_agentrel() -> None:
    """Failing in both, or skipped without agentrel, is no regression; passing without and
    failing, skipped or missing with agentrel is."""
    without = {
        "a": "passed",
        "b": "passed",
        "c": "passed",
        "d": "passed",
        "e": "failed",
        "f": "skipped",
        "g": "failed",
    }
    with_ = {"a": "passed", "b": "failed", "c": "skipped", "e": "failed", "f": "failed"}
    assert compare.regressions(without, with_) == [
        compare.Difference("b", "passed", "failed"),
        compare.Difference("c", "passed", "skipped"),
        compare.Difference("d", "passed", "missing"),
    ]


def test_expected_differences_need_a_reason_each() -> None:
    """Each entry takes the comment block just above it as its reason; entries that follow
    each other share it."""
    text = """
    # header, not a reason: a blank line follows

    # the proxy's copy() lacks a parameter
    # (second line of the same reason)
    openai tests/test_client.py::TestOpenAI::test_copy_signature
    openai tests/test_client.py::TestAsyncOpenAI::test_copy_signature
    # another
    stamina tests/test_sync.py::test_x[a b]
    """
    assert compare.parse_expected(textwrap.dedent(text).splitlines()) == {
        ("openai", "tests/test_client.py::TestOpenAI::test_copy_signature"): (
            "the proxy's copy() lacks a parameter (second line of the same reason)"
        ),
        ("openai", "tests/test_client.py::TestAsyncOpenAI::test_copy_signature"): (
            "the proxy's copy() lacks a parameter (second line of the same reason)"
        ),
        ("stamina", "tests/test_sync.py::test_x[a b]"): "another",
    }
    with pytest.raises(ValueError, match=r"line 1: .* has no '#' reason"):
        compare.parse_expected(["openai tests/test_client.py::test"])
    with pytest.raises(ValueError, match="line 2: expected 'SUITE TEST_ID'"):
        compare.parse_expected(["# why", "openai"])


def test_judge_splits_expected_unexpected_and_stale() -> None:
    """Listed differences pass with their reason; unlisted ones fail the job; listed ones
    that did not happen are named (for removal); other suites' entries are left alone."""
    expected = {("s", "t1"): "known", ("s", "t9"): "fixed by now", ("other", "t2"): "x"}
    d1 = compare.Difference("t1", "passed", "failed")
    d2 = compare.Difference("t2", "passed", "failed")
    verdict = compare.judge("s", [d1, d2], expected)
    assert verdict.expected == [(d1, "known")]
    assert verdict.unexpected == [d2]
    assert verdict.stale == ["t9"]


def test_span_shortfalls_name_what_is_missing() -> None:
    """A minimum on span counts and on calls with more than one attempt."""
    report = {"spans": {"execute_tool": 5, "invoke_agent": 2}, "calls_with_retries": {}}
    minimum = {"execute_tool": 5, "execute_tool>1": 1, "invoke_agent": 3, "chat": 1}
    assert compare.span_shortfalls(report, minimum) == [
        "chat spans: 0, expected at least 1",
        "execute_tool calls with more than one attempt: 0, expected at least 1",
        "invoke_agent spans: 2, expected at least 3",
    ]
    assert compare.span_shortfalls({}, {"execute_tool": 1}) == [
        "execute_tool spans: 0, expected at least 1"
    ]


def test_checked_in_lists_are_well_formed() -> None:
    """Every suite has a subset list that names something; the expected-differences file
    parses and names known suites only; every suite's minimum asks for spans."""
    names = {s.name for s in suites.SUITES}
    assert len(names) == len(suites.SUITES)
    for suite in suites.SUITES:
        assert suite.subset, suite.name
        assert all(p.startswith("tests") for p in suite.subset), suite.name
        if suite.name != "backoff":
            assert suite.minimum, suite.name
    expected = compare.parse_expected((HOST / "expected_differences.txt").read_text().split("\n"))
    assert {s for s, _ in expected} <= names


HOST_TESTS = """
import openai
import pytest
import tenacity

CALLS = {"n": 0}


@tenacity.retry(stop=tenacity.stop_after_attempt(5), wait=tenacity.wait_none())
def flaky():
    CALLS["n"] += 1
    if CALLS["n"] < 3:
        raise ConnectionError("down")
    return "up"


@pytest.fixture
def client():
    return openai.OpenAI(api_key="k", base_url="http://127.0.0.1:9/v1", max_retries=0)


def test_retried():
    assert flaky() == "up"
    assert CALLS["n"] == 3


def test_plain(client):
    assert isinstance(client, openai.OpenAI)


def test_fails():
    assert 1 == 2


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_async():
    assert flaky() == "up"
"""


@pytest.mark.parametrize("mode", ["off", "on"])
def test_plugin_over_a_scripted_host_suite(tmp_path: Path, mode: str) -> None:
    """Off: nothing is recorded. On: one tenacity call of 3 attempts (2 failed) is one
    retried ``execute_tool`` span, each of the 3 sync tests ran in its own run (recovered,
    success, failed), the async test in none (its call of 1 attempt is outside any run),
    the fixture's OpenAI client was instrumented, and the host's own results are the same
    both ways."""
    (tmp_path / "test_host.py").write_text(HOST_TESTS)
    env = dict(os.environ, PYTHONPATH=str(HOST))
    report = tmp_path / "spans.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-p", "agentrel_switch", f"--agentrel={mode}",
            f"--agentrel-report={report}", f"--junitxml={tmp_path / 'r.xml'}", "-q",
            "-p", "no:cacheprovider", "test_host.py",
        ],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert compare.read_junit(tmp_path / "r.xml") == {
        "test_host.py::test_retried": "passed",
        "test_host.py::test_plain": "passed",
        "test_host.py::test_fails": "failed",
        "test_host.py::test_async": "passed",
    }
    if mode == "off":
        assert not report.exists()
        return
    data = json.loads(report.read_text())
    assert data["spans"] == {"execute_tool": 2, "invoke_agent": 3}
    assert data["calls_with_retries"] == {"execute_tool": 1}
    assert data["max_attempts"] == 3
    assert data["attempt_events"] == 3  # a clean call has none: events start at a failure
    assert data["failed_attempts"] == 2
    assert data["tool_calls"] == 2
    assert data["runs_by_outcome"] == {"failed": 1, "recovered": 1, "success": 1}
    assert data["clients_instrumented"] == 1
    assert data["tests_in_runs"] == 3
    assert data["async_tests"] == 1
    assert data["telemetry_errors"] == {}
    assert data["integrations"] == dict.fromkeys(
        ("langgraph", "openai_agents", "pydantic_ai", "stamina", "tenacity"), "on"
    )
    assert compare.span_shortfalls(data, {"execute_tool": 1, "execute_tool>1": 1}) == []
