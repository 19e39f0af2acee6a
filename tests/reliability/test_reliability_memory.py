"""Adversarial reliability, memory: agentrel's state stays flat however long it runs.

* A million tool calls in runs (10,000 runs x 100 calls, failures and tokens included), into
  real SDK providers that keep nothing per call (a span processor that only counts, an
  in-memory metric reader): RSS grows less than ``RSS_BOUND``. Run in a fresh interpreter
  (this file as a script, ``--million``), started when the module's first test starts, so it
  overlaps the other tests here; the parent waits for it with a timeout, a hang bound, never a
  timing assert.
* 10,000 dynamically created decorated functions, called once in a run and dropped: every
  function is collected (weakrefs), and each per-tool structure agentrel keeps holds an exact,
  stated number of entries. The rule (docs section "Secrets and memory"):

  - per distinct tool *name*, forever: one inventory entry (``_registry._tools``, keyed by
    name, module and qualname: strings and a frozen dataclass, never the function), one
    cold-start mark (``_coldstart.SEEN``) and one cached attribute dict
    (``_coldstart._attrs``, which ``testing.reset()`` does not clear); the metric SDK keeps
    one series per name per instrument up to its cardinality limit (2,000 named series, then
    one ``otel.metric.overflow`` series that keeps counting).
  - per decorated *function*: nothing once it is dropped (the call spec lives in the wrapper's
    closure only; ``_record``'s bounded LLM attribute cache is keyed by provider and models,
    never by the spec).
  - the same name decorated 10,000 times is one entry everywhere, and only the first call of
    the first function is the tool's cold start.
  - tenacity's integration keeps one call spec per retried ``module.qualname`` (no function;
    the retry integrations' specs live in ``agentrel._instrumentor._specs``).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import agentrel
from agentrel import _callcounts, _coldstart, _guard, _record, _registry, testing
from agentrel._llm import flight as _llm_flight

#: RSS growth allowed over the million calls (after a warm-up of 20,000 calls). Measured here:
#: a few hundred KiB (the figure is in the docs section); a per-call leak of even 8 bytes
#: would be 8 MB.
RSS_BOUND = 8 * 1024 * 1024
#: RSS growth allowed over the second half (calls 500,001 to 1,000,000).
SECOND_HALF_BOUND = 1024 * 1024
RUNS, CALLS_PER_RUN, WARMUP_RUNS = 10_000, 100, 200
#: The child's hang bound (it takes about a minute on a loaded 2-core machine).
CHILD_TIMEOUT = 600
N = 10_000  # dynamically created functions

MILLION_TEST = "test_rss_flat_over_a_million_tool_calls"
HAS_PROC = Path("/proc/self/status").exists()


def _child_env() -> dict[str, str]:
    """A clean environment for a child interpreter: PATH, and PYTHONPATH when set (so that
    the child imports the agentrel this test run imports)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


# --- the child: a million tool calls ----------------------------------------------------------
def _rss() -> int:
    """VmRSS of this process, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")  # pragma: no cover


def _million() -> dict[str, Any]:
    """Run in a fresh interpreter: 10,000 runs x 100 tool calls, RSS before, during, after."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Counting(SpanExporter):
        """Every span is recorded and exported; only their number is kept."""

        def __init__(self) -> None:
            self.spans = 0

        def export(self, spans: Any) -> SpanExportResult:
            self.spans += len(spans)
            return SpanExportResult.SUCCESS

    exporter = Counting()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    agentrel.configure(tracer_provider=tp, meter_provider=mp, cohorts=["smb"])

    @agentrel.tool
    def work(x: int) -> int:
        if x % 97 == 0:
            raise ValueError("every 97th call fails")
        agentrel.record_tokens(input=3, output=2, model="m")
        return x

    def one_run(base: int) -> None:
        with agentrel.run("mem", cohort="smb"):
            for i in range(base, base + CALLS_PER_RUN):
                try:
                    work(i)
                except ValueError:
                    pass

    for r in range(WARMUP_RUNS):  # caches, attribute sets, allocator pools
        one_run(r * CALLS_PER_RUN)
    gc.collect()
    before = _rss()
    checkpoints = []
    for r in range(RUNS):
        one_run(r * CALLS_PER_RUN)
        if (r + 1) % 1000 == 0:
            checkpoints.append(_rss() - before)
    gc.collect()
    growth = _rss() - before
    data = reader.get_metrics_data()
    counts: dict[str, int] = {}
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name in ("agentrel.tool.attempts", "agentrel.run.retry_depth"):
                    counts[m.name] = sum(p.count for p in m.data.data_points)
                if m.name == "agentrel.tool.failures":
                    counts[m.name] = sum(p.value for p in m.data.data_points)
    return {
        "before": before,
        "growth": growth,
        "checkpoints": checkpoints,
        "spans": exporter.spans,
        "counts": counts,
        "telemetry_errors": dict(agentrel.telemetry_errors()),
    }


@pytest.fixture(scope="module", autouse=True)
def _million_child(request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[str] | None]:
    """Start the million-call child when this module's first test starts (only if the
    million-call test is selected), so that it runs alongside the other tests here."""
    wanted = HAS_PROC and any(item.name == MILLION_TEST for item in request.session.items)
    if not wanted:
        yield None
        return
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--million"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(),
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:  # the million test did not run to its end: stop our child
            proc.kill()
            proc.communicate()


# --- helpers --------------------------------------------------------------------------------
def _sizes() -> dict[str, int]:
    """Every per-name or per-spec structure agentrel keeps at module level."""
    from agentrel import _instrumentor

    return {
        "registry": len(_registry._tools),
        "coldstart.SEEN": len(_coldstart.SEEN),
        "coldstart._attrs": len(_coldstart._attrs),
        "record._tool_attr_cache": len(_record._tool_attr_cache),
        "record._llm_attr_cache": len(_record._llm_attr_cache),
        "record._run_attr_cache": len(_record._run_attr_cache),
        "record._amp_attr_cache": len(_record._amp_attr_cache),
        "record._token_attr_cache": len(_record._token_attr_cache),
        "callcounts._attrs": len(_callcounts._attrs),
        "llm_flight._specs": len(_llm_flight._specs),
        "llm_flight._open_streams": len(_llm_flight._open_streams),
        "guard._warned": len(_guard._warned),
        "guard._logged": len(_guard._logged),
        "tenacity._specs": len(_instrumentor._specs),
    }


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in before if after[k] != before[k]}


def _factory(name: str) -> Callable[[int], int]:
    def fn(x: int) -> int:
        return x + 1

    fn.__name__ = fn.__qualname__ = name
    return fn


def _same_name() -> Callable[[int], int]:
    def same_tool(x: int) -> int:
        return x + 1

    return same_tool


def _call_all(
    make: Callable[[int], Callable[..., Any]], decorate: Any, run_name: str, count: int = N
) -> list[Any]:
    """Create, decorate and call ``count`` functions, 100 per run of ``run_name``; return
    weakrefs to the raw and the decorated functions, alternating (no strong reference kept)."""
    refs: list[Any] = []
    for r in range(count // 100):
        with agentrel.run(run_name):
            for i in range(r * 100, r * 100 + 100):
                raw = make(i)
                tool = decorate(raw)
                assert tool(i) == i + 1
                refs += [weakref.ref(raw), weakref.ref(tool)]
                del raw, tool
    gc.collect()
    return refs


# --- tests ----------------------------------------------------------------------------------
def test_distinct_names_keep_names_not_functions(cap: testing.Capture) -> None:
    """10,000 tools with distinct names, called once and dropped: every function is collected;
    the inventory, the cold-start marks and their attribute cache keep one entry per name
    (10,000 each); nothing else grows; the SDK caps each instrument at 2,000 named series and
    one overflow series, and every call is still counted."""
    before = _sizes()
    refs = _call_all(lambda i: _factory(f"dyn_tool_{i}"), agentrel.tool, "dyn-distinct")
    alive = sum(r() is not None for r in refs)
    assert alive == 0, f"{alive} of {len(refs)} dynamically decorated functions still alive"
    assert _delta(before, _sizes()) == {
        "registry": N,
        "coldstart.SEEN": N,
        "coldstart._attrs": N,
        "record._run_attr_cache": 1,  # (run name, outcome, cohort): one run name
        "callcounts._attrs": 1,  # per run name
    }
    info = {t.name: t for t in agentrel.registered_tools()}
    assert info["dyn_tool_0"].qualname == "dyn_tool_0" and not hasattr(info["dyn_tool_0"], "fn")
    assert len(cap.spans()) == N + N // 100  # every call and every run was recorded
    assert sum(1 for s in cap.spans() if (s.attributes or {}).get("agentrel.cold_start")) == N
    for metric in (
        "agentrel.tool.attempts",
        "gen_ai.execute_tool.duration",
        "agentrel.tool.first_call.duration",
    ):
        series = cap.label_sets(metric)
        overflow = [a for a in series if a.get("otel.metric.overflow")]
        assert (len(series) - len(overflow), len(overflow)) == (2000, 1), metric
    assert cap.histogram("agentrel.tool.attempts").count == N  # overflow keeps the counts


def test_same_name_ten_thousand_times_is_one_entry(cap: testing.Capture) -> None:
    """The same tool defined 10,000 times (a factory in a loop): one inventory entry, one
    cold-start mark, one series per instrument, one cold start; every function collected."""
    before = _sizes()
    refs = _call_all(lambda i: _same_name(), agentrel.tool, "dyn-same")
    alive = sum(r() is not None for r in refs)
    assert alive == 0, f"{alive} of {len(refs)} dynamically decorated functions still alive"
    assert _delta(before, _sizes()) == {
        "registry": 1,
        "coldstart.SEEN": 1,
        "coldstart._attrs": 1,
        "record._run_attr_cache": 1,
        "callcounts._attrs": 1,
    }
    [entry] = [t for t in agentrel.registered_tools() if t.name == "same_tool"]
    assert entry.qualname == "_same_name.<locals>.same_tool"
    assert len(cap.spans("execute_tool same_tool")) == N
    cold = [
        s for s in cap.spans("execute_tool same_tool") if s.attributes.get("agentrel.cold_start")
    ]
    assert len(cold) == 1
    assert cap.histogram("agentrel.tool.first_call.duration").count == 1
    assert cap.label_sets("agentrel.tool.attempts") == [
        {"gen_ai.tool.name": "same_tool", "agentrel.outcome": "success"}
    ]
    assert cap.histogram("agentrel.tool.attempts").count == N


def test_tenacity_keeps_one_spec_per_retried_name(cap: testing.Capture) -> None:
    """10,000 dynamically created functions under tenacity's ``@retry`` (instrumented, no
    ``@agentrel.tool``): the integration caches one call spec per retried ``module.qualname``
    (10,000 entries, no function in them) and the cold-start marks grow by name; no inventory
    entry (its names come from the code at run time); every function is collected."""
    from tenacity import retry, stop_after_attempt, wait_fixed

    from agentrel import _instrumentor
    from agentrel.integrations import tenacity as agentrel_tenacity

    agentrel_tenacity.instrument()
    try:
        before = _sizes()
        refs = _call_all(
            lambda i: _factory(f"retried_{i}"),
            retry(stop=stop_after_attempt(2), wait=wait_fixed(0)),
            "dyn-tenacity",
        )
    finally:
        agentrel_tenacity.uninstrument()
    alive = sum(r() is not None for r in refs)
    assert alive == 0, f"{alive} of {len(refs)} retried functions still alive"
    assert _delta(before, _sizes()) == {
        "tenacity._specs": N,
        "coldstart.SEEN": N,
        "coldstart._attrs": N,
        "record._run_attr_cache": 1,
        "callcounts._attrs": 1,
    }
    assert f"tenacity:{__name__}.retried_9999" in _instrumentor._specs
    assert len(cap.spans()) == N + N // 100


def test_llm_functions_share_one_cache_entry_per_model(
    cap: testing.Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10,000 dynamically created ``@agentrel.llm`` functions (one model): ``_record``'s LLM
    attribute cache is keyed by (provider, model, response model), never by the call spec
    (which holds the function), so it grows by one entry and every function and wrapper is
    collected. An LLM call is named after its model: one cold-start mark, no inventory
    entry. (The cache starts empty here, as in a fresh process.)"""
    monkeypatch.setattr(_record, "_llm_attr_cache", {})
    before = _sizes()
    chat_m_known = "chat m" in _coldstart._attrs
    refs = _call_all(
        lambda i: _factory(f"ask_{i}"), agentrel.llm(model="m", provider="p"), "dyn-llm"
    )
    assert sum(r() is not None for r in refs) == 0  # functions and wrappers: all gone
    assert _delta(before, _sizes()) == {
        "record._llm_attr_cache": 1,
        "coldstart.SEEN": 1,
        **({} if chat_m_known else {"coldstart._attrs": 1}),
        "record._run_attr_cache": 1,
        "callcounts._attrs": 1,
    }
    assert len(cap.spans("chat m")) == N


def test_llm_functions_are_all_collected(
    cap: testing.Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the rule for tools says for LLM functions too: dropped means collected (in a
    process whose LLM attribute cache is not yet full)."""
    monkeypatch.setattr(_record, "_llm_attr_cache", {})
    refs = _call_all(
        lambda i: _factory(f"ask_more_{i}"),
        agentrel.llm(model="m2", provider="p"),
        "dyn-llm-2",
        count=2_000,
    )
    assert sum(r() is not None for r in refs) == 0


@pytest.mark.skipif(not HAS_PROC, reason="reads VmRSS from /proc/self/status")
def test_rss_flat_over_a_million_tool_calls(
    _million_child: subprocess.Popen[str] | None,
) -> None:
    """10,000 runs x 100 calls (1 in 97 failing, tokens on the rest), spans recorded and
    exported, metrics aggregated in memory: RSS grows < 8 MiB after the warm-up, and every
    call, run and failure was really recorded."""
    proc = _million_child
    assert proc is not None
    try:
        out, err = proc.communicate(timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:  # a hang bound, not a timing assert
        proc.kill()
        proc.communicate()
        raise
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    calls = (WARMUP_RUNS + RUNS) * CALLS_PER_RUN
    runs = WARMUP_RUNS + RUNS
    failures = sum(1 for r in range(RUNS) for i in range(r * 100, r * 100 + 100) if i % 97 == 0)
    failures += sum(
        1 for r in range(WARMUP_RUNS) for i in range(r * 100, r * 100 + 100) if i % 97 == 0
    )
    assert result["telemetry_errors"] == {}
    assert result["spans"] == calls + runs
    assert result["counts"] == {
        "agentrel.tool.attempts": calls,
        "agentrel.run.retry_depth": runs,
        "agentrel.tool.failures": failures,
    }
    growth = result["growth"]
    print(f"RSS growth over {RUNS * CALLS_PER_RUN:,} calls: {growth / 1024:.0f} KiB", result)
    assert growth < RSS_BOUND, f"RSS grew {growth / 1024:.0f} KiB: {result['checkpoints']}"
    # flat, not just small: the second 500,000 calls add less than 1 MiB (2 bytes a call)
    checkpoints = result["checkpoints"]
    assert checkpoints[-1] - checkpoints[4] < SECOND_HALF_BOUND, checkpoints


if __name__ == "__main__" and sys.argv[1:] == ["--million"]:
    print(json.dumps(_million()))
