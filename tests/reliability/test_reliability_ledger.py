"""Adversarial reliability suite, the run's ledger: production faults that live where a run's
figures change, each pinned to exact values.

* One ``agentrel.run(...)`` object entered by many concurrent handlers (and nested in itself):
  each entry is its own run.
* One absurd token count: refused where it enters, so OTLP export keeps working.
* A fork while another thread holds a run's lock: the child's tool call still completes.
* A finaliser that calls a decorated tool, run by the garbage collector inside the ledger's
  own update: no hang, no lost update, no error logged.
* Telemetry calls that raise (a span's ``add_event``, one histogram, one counter): the ledger
  is settled first, every other emission still happens, every span ends.
* Span processors that raise or sleep, and a metric exporter that hangs.

The rules are written up in the "The run's ledger" section of docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import agentrel
from agentrel import testing
from agentrel._catalogue import AGENT, DISPOSITION, OUTCOME
from agentrel._runtime import T
from agentrel._tokens import MAX_COUNT
from otlp_sink import OtlpSink, attrs, points

pytestmark = pytest.mark.timeout(120)  # a hang guard only

TESTS = Path(__file__).resolve().parent.parent
SRC = Path(agentrel.__file__).resolve().parent.parent


def _py(code: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """A snippet in a fresh interpreter, killed after ``timeout`` seconds (a hang fails)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": os.pathsep.join((str(SRC), str(TESTS))),
            **env,
        },
    )


# --- one run object, many entries -----------------------------------------------------------
@agentrel.tool
def two_tokens() -> str:
    agentrel.record_tokens(input=1, output=1, model="m")
    return "ok"


def _runs(cap: testing.Capture) -> int:
    return int(cap.histogram("agentrel.run.retry_depth", {AGENT: "support"}).count)


def test_one_scope_object_shared_by_100_concurrent_handlers(cap: testing.Capture) -> None:
    scope = agentrel.run("support")
    seen: list[Any] = []

    async def handler() -> None:
        async with scope as run:
            await asyncio.sleep(0)  # every handler is inside the scope at once
            two_tokens()
            await asyncio.sleep(0)
            assert agentrel.current_run() is run
            seen.append(run)

    async def main() -> None:
        await asyncio.gather(*(handler() for _ in range(100)))

    asyncio.run(main())
    assert len({id(r) for r in seen}) == 100
    assert all(r.outcome == "success" and r.tokens == 2 and r.attempts == 1 for r in seen)
    cap.collect()
    assert _runs(cap) == 100
    assert cap.counter("agentrel.tokens") == 200
    assert cap.counter("agentrel.tokens", {DISPOSITION: "useful"}) == 200
    assert len(cap.spans("invoke_agent support")) == 100
    assert T._runs == 0  # none left open
    assert agentrel.telemetry_errors() == {}


def test_one_scope_object_nested_in_itself_restores_the_current_run(
    cap: testing.Capture,
) -> None:
    scope = agentrel.run("support")
    with scope as outer:
        two_tokens()
        with scope as inner:
            assert inner is not outer and agentrel.current_run() is inner
            two_tokens()
            two_tokens()
        assert agentrel.current_run() is outer
        two_tokens()
    assert agentrel.current_run() is None
    assert (outer.tokens, outer.attempts, inner.tokens, inner.attempts) == (4, 2, 4, 2)
    cap.collect()
    assert _runs(cap) == 2 and cap.counter("agentrel.tokens") == 8
    assert T._runs == 0


def test_one_scope_object_shared_by_threads(cap: testing.Capture) -> None:
    scope = agentrel.run("support")
    barrier = threading.Barrier(8)
    runs: list[Any] = []

    def worker() -> None:
        with scope as run:
            barrier.wait(10)  # all eight inside at once
            for _ in range(5):
                two_tokens()
            runs.append(run)
        assert agentrel.current_run() is None

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len({id(r) for r in runs}) == 8
    assert all(r.tokens == 10 and r.attempts == 5 for r in runs)
    cap.collect()
    assert _runs(cap) == 8 and cap.counter("agentrel.tokens") == 80
    assert T._runs == 0


def test_a_scope_exited_in_another_context_still_ends_its_run(cap: testing.Capture) -> None:
    """Set-up and teardown in different contexts (an async test fixture): the object's most
    recent open entry is ended."""
    import contextvars

    scope = agentrel.run("support")
    run = contextvars.copy_context().run(scope.__enter__)
    assert agentrel.current_run() is None  # entered in the other context only
    scope.__exit__(None, None, None)
    assert run.outcome == "success" and T._runs == 0
    assert agentrel.current_run() is None and agentrel.telemetry_errors() == {}
    cap.collect()
    assert _runs(cap) == 1


def test_scopes_exited_out_of_order_end_both_runs(cap: testing.Capture) -> None:
    import contextvars

    a, b = agentrel.run("support"), agentrel.run("support")

    def out_of_order() -> tuple[Any, Any]:
        run_a = a.__enter__()
        run_b = b.__enter__()
        a.__exit__(None, None, None)  # the outer one first (an ExitStack used out of order)
        assert run_a.outcome == "success" and run_b.outcome is None
        b.__exit__(None, None, None)
        return run_a, run_b

    run_a, run_b = contextvars.copy_context().run(out_of_order)
    assert run_a.outcome == run_b.outcome == "success" and T._runs == 0
    cap.collect()
    assert _runs(cap) == 2


def test_integration_run_scope_object_is_per_entry_too(cap: testing.Capture) -> None:
    from agentrel import instrumentation as ai

    scope = ai.run_scope("support", join=False)
    with scope as a:
        with scope as b:
            assert a.run is not b.run and agentrel.current_run() is b.run
        assert agentrel.current_run() is a.run
    assert a.opened and b.opened and a.run is not None and a.run.outcome == "success"
    cap.collect()
    assert _runs(cap) == 2 and T._runs == 0


# --- one absurd token count ---------------------------------------------------------------------
@pytest.mark.parametrize("count", [MAX_COUNT + 1, 2**64])
def test_a_token_count_over_the_cap_is_refused_at_the_call(
    cap: testing.Capture, count: int
) -> None:
    from agentrel import instrumentation as ai

    spec = ai.tool_spec("handle_tokens", register=False)
    with agentrel.run("support") as run:
        agentrel.record_tokens(input=count, output=5)  # refused whole: not even the 5
        two_tokens()
        with ai.call(spec) as handle:
            handle.add_tokens(input=3, output=count)
            handle.add_tokens(input=3)
    assert run.tokens == 5
    assert agentrel.telemetry_errors() == {"record_tokens": 2}
    cap.collect()
    assert cap.counter("agentrel.tokens") == 5
    agentrel.record_tokens(input=MAX_COUNT)  # the cap itself is accepted
    cap.collect()
    assert cap.counter("agentrel.tokens") == 5 + MAX_COUNT


def test_usage_callback_over_the_cap_is_refused(cap: testing.Capture) -> None:
    @agentrel.llm(model="m", usage=lambda r: r)
    def ask(usage: tuple[int, int]) -> tuple[int, int]:
        return usage

    with agentrel.run("support") as run:
        assert ask((2**64, 1)) == (2**64, 1)
        ask((4, 1))
    assert run.tokens == 5
    assert sum(agentrel.telemetry_errors().values()) == 1


def test_after_a_refused_huge_count_otlp_export_still_succeeds() -> None:
    with OtlpSink() as sink:
        proc = _py(
            f"""
            import json, agentrel
            cfg = agentrel.configure(otlp_endpoint={sink.endpoint!r}, service_name="cap")

            @agentrel.tool
            def work():
                agentrel.record_tokens(input=30, output=7, model="m")

            with agentrel.run("support"):
                agentrel.record_tokens(input=2**64)
                work()
            agentrel.record_tokens(input=2**64, output=1)
            work()
            first = cfg.meter_provider.force_flush(timeout_millis=20_000)
            with agentrel.run("support"):
                work()
            ok = cfg.shutdown(timeout=20)
            print(json.dumps([first, ok, dict(agentrel.telemetry_errors())]))
            """,
            OTEL_METRIC_EXPORT_INTERVAL="600000",
        )
        assert proc.returncode == 0, proc.stderr
        first, ok, errors = __import__("json").loads(proc.stdout.strip().splitlines()[-1])
        assert first is True and ok is True
        assert errors == {"record_tokens": 2}
        assert len(sink.metrics) == 2  # force_flush and shutdown: both exports arrived
        tokens = sink.latest_metrics()["agentrel.tokens"]
        by = {
            (a.get("gen_ai.token.type"), a.get(AGENT)): p.as_int
            for p in points(tokens)
            for a in [attrs(p.attributes)]
        }
        assert by == {("input", "support"): 60, ("output", "support"): 14, ("input", None): 30,
                      ("output", None): 7}  # fmt: skip
        runs = sink.latest_metrics()["agentrel.run.retry_depth"]
        assert sum(p.count for p in points(runs)) == 2


# --- fork while a worker thread holds a run's lock ----------------------------------------------
FORK = """
import os, sys, threading, time, agentrel

@agentrel.tool
def work(i):
    agentrel.record_tokens(input=1, model="m")
    return i

def wait_child(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return "hung"

results = []
with agentrel.run("support") as run:
    work(0)
    # 1. deterministic: a worker thread holds the run's lock at the fork
    held, release = threading.Event(), threading.Event()
    def holder():
        with run.ledger._lock:
            held.set()
            release.wait(30)
    t = threading.Thread(target=holder)
    t.start()
    held.wait(10)
    pid = os.fork()
    if pid == 0:
        work(1)  # its first tool call in that run
        os._exit(0 if run.attempts == 2 and run.tokens == 2 else 3)
    release.set()
    t.join()
    results.append(wait_child(pid))
    # 2. under load: workers call tools in the run while the main thread forks
    stop = threading.Event()
    import contextvars
    def busy():
        while not stop.is_set():
            work(2)
    workers = [threading.Thread(target=contextvars.copy_context().run, args=(busy,))
               for _ in range(3)]
    for w in workers:
        w.start()
    for _ in range(FORKS):
        pid = os.fork()
        if pid == 0:
            before = run.attempts
            work(3)
            os._exit(0 if run.attempts == before + 1 else 3)
        results.append(wait_child(pid))
    stop.set()
    for w in workers:
        w.join()
print(results)
"""


def test_fork_while_a_thread_holds_a_runs_lock_child_finishes_its_tool_call() -> None:
    proc = _py(FORK.replace("FORKS", "30"), timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str([0] * 31)


# --- a finaliser that calls a tool ------------------------------------------------------------
GC_FINALISER = """
import gc, json, logging
import agentrel
from agentrel import testing

logs = []
class Keep(logging.Handler):
    def emit(self, record):
        logs.append(record.getMessage())
logging.getLogger().addHandler(Keep(logging.WARNING))

inner_calls = 0

@agentrel.tool
def inner():
    global inner_calls
    inner_calls += 1
    raise KeyError("from a finaliser")  # a failure of the run, wherever the GC ran it

class Finalised:
    def __init__(self):
        self.me = self  # a reference cycle: only the garbage collector frees it
    def __del__(self):
        try:
            inner()
        except KeyError:
            pass

armed = False
class Model(str):
    # a model name whose hashing runs the garbage collector: it is hashed while the run's
    # ledger merges a call's tokens, so the collection (and the finaliser's tool call) runs
    # inside the ledger's own update
    def __hash__(self):
        if armed:
            Finalised()
            gc.collect()
        return str.__hash__(self)

MODEL = Model("gc-model")

@agentrel.tool
def outer(i):
    agentrel.record_tokens(input=2, model=MODEL)
    if i % 3 == 0:
        raise ValueError("boom")

with testing.capture() as cap:
    gc.set_threshold(1)  # and a collection at (nearly) every allocation besides
    with agentrel.run("support") as run:
        armed = True
        for i in range(60):
            Finalised()
            try:
                outer(i)
            except ValueError:
                pass
        armed = False
        gc.collect()
    gc.set_threshold(700)
    cap.collect()
    print(json.dumps({
        "inner": inner_calls, "attempts": run.attempts, "depth": run.retry_depth,
        "tokens": run.tokens, "wasted": run.wasted_tokens,
        "tool_calls": cap.histogram("agentrel.tool.attempts").count,
        "token_counter": cap.counter("agentrel.tokens"),
        "failures": cap.counter("agentrel.tool.failures"),
        "errors": dict(agentrel.telemetry_errors()), "logs": logs,
    }))
"""


def test_a_finaliser_calling_a_tool_inside_the_ledgers_update_neither_hangs_nor_loses_counts() -> (
    None
):
    proc = _py(GC_FINALISER, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = __import__("json").loads(proc.stdout.strip().splitlines()[-1])
    n = out["inner"]
    assert n >= 60  # at least one finaliser per loop, most of them inside the ledger's update
    assert out["attempts"] == 60 + n
    assert out["depth"] == 20 + n  # outer(0), outer(3), ... outer(57), and every inner()
    assert out["tokens"] == 2 * 60 and out["wasted"] == 2 * 20
    assert out["tool_calls"] == 60 + n
    assert out["failures"] == 20 + n
    assert out["token_counter"] == 2 * 60
    assert out["errors"] == {} and out["logs"] == []


# --- telemetry calls that raise ---------------------------------------------------------------
class Boom(RuntimeError):
    pass


def _raising(obj: Any, name: str) -> Any:
    """A proxy of ``obj`` whose method ``name`` raises (everything else passes through)."""

    class Proxy:
        def __getattr__(self, attr: str) -> Any:
            if attr == name:

                def fail(*args: Any, **kwargs: Any) -> None:
                    raise Boom(attr)

                return fail
            return getattr(obj, attr)

    return Proxy()


def test_a_span_whose_add_event_raises_costs_the_event_not_the_hand_over(
    cap: testing.Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_tracer = T.tracer
    spans: list[Any] = []

    class Tracer:
        def start_span(self, name: str, **kw: Any) -> Any:
            span = real_tracer.start_span(name, **kw)
            spans.append(span)
            return _raising(span, "add_event") if name.startswith("execute_tool") else span

    monkeypatch.setattr(T, "tracer", Tracer())
    n = {"i": 0}

    @agentrel.tool
    def flaky() -> None:
        n["i"] += 1
        agentrel.record_tokens(input=4, output=3)
        if n["i"] == 1:
            raise TimeoutError

    with agentrel.run("support") as run:
        with pytest.raises(TimeoutError):
            flaky()  # its attempt event raises inside the call's finish
        flaky()
    assert (run.tokens, run.wasted_tokens, run.retry_depth, run.attempts) == (14, 7, 1, 2)
    assert run.outcome == "recovered"
    assert all(s.end_time is not None for s in spans) and len(spans) == 3
    assert agentrel.telemetry_errors() == {"call.span": 1}


def test_one_raising_histogram_costs_its_point_not_the_runs_counters(
    cap: testing.Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(T, "run_retry_depth", _raising(T.run_retry_depth, "record"))

    @agentrel.tool
    def fails() -> None:
        agentrel.record_tokens(input=5, output=2)
        raise ValueError

    with agentrel.run("support") as run:
        with pytest.raises(ValueError):
            fails()
        two_tokens()
    assert (run.outcome, run.retry_depth, run.attempts, run.tokens) == ("recovered", 1, 2, 9)
    cap.collect()
    assert "agentrel.run.retry_depth" not in cap.metric_names()
    assert cap.histogram("agentrel.run.attempts", {OUTCOME: "recovered"}).sum == 2
    assert cap.counter("agentrel.tool.failures", {"agentrel.absorbed": "true"}) == 1
    assert cap.counter("agentrel.tokens", {DISPOSITION: "wasted"}) == 7
    assert cap.counter("agentrel.tokens", {DISPOSITION: "useful"}) == 2
    assert cap.histogram("gen_ai.invoke_agent.tool_calls").sum == 2
    [span] = cap.spans("invoke_agent support")
    assert span.attributes["agentrel.run.tokens"] == 9
    assert agentrel.telemetry_errors() == {"run.metrics": 1}
    assert T._runs == 0


def test_a_raising_counter_on_a_failing_call_outside_any_run_still_ends_its_span(
    cap: testing.Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(T, "tool_failures", _raising(T.tool_failures, "add"))

    @agentrel.tool
    def fails() -> None:
        agentrel.record_tokens(input=5, output=2)
        raise ValueError

    with pytest.raises(ValueError):
        fails()
    cap.collect()
    [span] = cap.spans("execute_tool fails")
    assert span.end_time is not None and span.attributes[OUTCOME] == "failed"
    assert cap.counter("agentrel.tokens", {DISPOSITION: "wasted"}) == 7
    assert cap.histogram("agentrel.tool.attempts").count == 1
    assert agentrel.telemetry_errors() == {"call.metrics": 1}


def test_a_run_span_whose_set_attributes_raises_is_still_ended(
    cap: testing.Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_tracer = T.tracer
    spans: list[Any] = []

    class Tracer:
        def start_span(self, name: str, **kw: Any) -> Any:
            span = real_tracer.start_span(name, **kw)
            spans.append(span)
            return _raising(span, "set_attributes") if name.startswith("invoke") else span

    monkeypatch.setattr(T, "tracer", Tracer())
    with agentrel.run("support") as run:
        two_tokens()
    assert run.tokens == 2 and all(s.end_time is not None for s in spans)
    cap.collect()
    assert cap.counter("agentrel.tokens") == 2 and _runs(cap) == 1
    assert agentrel.telemetry_errors() == {"run.span": 1}


# --- span processors that raise or sleep, a metric exporter that hangs (they hold today) ----
def test_span_processors_that_raise_or_sleep() -> None:
    proc = _py(
        """
        import json, time, agentrel
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SpanProcessor

        class Raises(SpanProcessor):
            def on_start(self, span, parent_context=None):
                raise RuntimeError("on_start")
            def on_end(self, span):
                raise RuntimeError("on_end")

        class Sleeps(SpanProcessor):
            def on_end(self, span):
                time.sleep(0.01)

        tp = TracerProvider()
        tp.add_span_processor(Raises())
        tp.add_span_processor(Sleeps())
        agentrel.configure(tracer_provider=tp)
        n = 0

        @agentrel.tool
        def flaky():
            global n
            n += 1
            agentrel.record_tokens(input=3)
            if n == 1:
                raise TimeoutError
            return "ok"

        with agentrel.run("support") as run:
            try:
                flaky()
            except TimeoutError:
                pass
            got = flaky()
        print(json.dumps([got, run.outcome, run.retry_depth, run.attempts, run.tokens,
                          sum(agentrel.telemetry_errors().values()) >= 0]))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == '["ok", "recovered", 1, 2, 6, true]'


def test_a_metric_exporter_that_hangs_neither_blocks_the_host_nor_shutdown() -> None:
    proc = _py(
        """
        import json, threading, time, agentrel
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import (
            MetricExporter, MetricExportResult, PeriodicExportingMetricReader)

        forever, exporting = threading.Event(), threading.Event()
        class Hangs(MetricExporter):
            def __init__(self):
                super().__init__()
            def export(self, metrics_data, timeout_millis=10_000, **kw):
                exporting.set()
                forever.wait(600)
                return MetricExportResult.SUCCESS
            def force_flush(self, timeout_millis=10_000):
                return True
            def shutdown(self, timeout_millis=30_000, **kw):
                pass

        reader = PeriodicExportingMetricReader(Hangs(), export_interval_millis=50)
        cfg = agentrel.configure(meter_provider=MeterProvider(metric_readers=[reader]))

        @agentrel.tool
        def work(i):
            agentrel.record_tokens(input=3)
            if i % 10 == 0:
                raise ValueError
            return "ok"

        with agentrel.run("warm"):
            work(1)
        exporting.wait(10)  # the exporter thread is stuck in export from here on
        t0 = time.monotonic()
        with agentrel.run("support") as run:
            for i in range(100):
                try:
                    work(i)
                except ValueError:
                    pass
        work_took = time.monotonic() - t0
        t0 = time.monotonic()
        cfg.shutdown(timeout=2)
        shutdown_took = time.monotonic() - t0
        print(json.dumps([exporting.is_set(), run.outcome, run.retry_depth, run.attempts,
                          run.tokens, run.wasted_tokens, work_took < 10, shutdown_took < 10]),
              flush=True)
        import os
        os._exit(0)  # the exporter thread never returns
        """,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == (
        '[true, "recovered", 10, 100, 300, 30, true, true]'
    )
