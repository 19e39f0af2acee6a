"""agentrel's overhead, as ratios measured in one process.

    python bench/overhead.py                  # full run (about a minute)
    python bench/overhead.py --quick          # fewer rounds, for a smoke check
    python bench/overhead.py --instructions   # instruction counts under valgrind (minutes)

Each line compares two variants of the same work, timed in interleaved rounds (A, B, A, B,
...) so that machine noise hits both alike; the figure is the ratio of the per-call medians.
Targets are printed beside each figure. Nothing here is asserted in tests:
wall-clock figures are too noisy on shared machines.

``--instructions`` counts instructions instead of time, with ``valgrind --tool=callgrind``
(the same count whatever else the machine does): each variant runs in a child process twice,
with N1 and N2 calls, and the per-call figure is the difference of the two totals divided by
N2 - N1, so interpreter start-up and imports cancel out.
"""

from __future__ import annotations

import functools
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

QUICK = "--quick" in sys.argv
ROUNDS = 5 if QUICK else 15
CALLS = 2_000 if QUICK else 10_000


def per_call(fn: Callable[[int], Any], calls: int) -> float:
    t0 = time.perf_counter_ns()
    for i in range(calls):
        fn(i)
    return (time.perf_counter_ns() - t0) / calls


def compare(
    a: Callable[[int], Any], b: Callable[[int], Any], calls: int = CALLS
) -> tuple[float, float, float]:
    """Median ns/call of a and b over interleaved rounds, and their ratio a/b."""
    per_call(a, calls // 10)
    per_call(b, calls // 10)
    ta, tb = [], []
    gc.disable()
    try:
        for _ in range(ROUNDS):
            ta.append(per_call(a, calls))
            tb.append(per_call(b, calls))
    finally:
        gc.enable()
    ma, mb = statistics.median(ta), statistics.median(tb)
    return ma, mb, ma / mb


def line(label: str, result: tuple[float, float, float], target: str) -> None:
    a, b, ratio = result
    print(f"{label:<58} {ratio:6.3f}   ({a:8.0f} ns ÷ {b:8.0f} ns)   target {target}")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def bench_unconfigured() -> None:
    import agentrel

    def work(x: int) -> int:
        return x + 1

    def plain_decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        return wrapper

    def one_arg_decorator(fn: Callable[[int], int]) -> Callable[[int], int]:
        def wrapper(x: int) -> int:
            return fn(x)

        return wrapper

    tool = agentrel.tool(work)
    line(
        "unconfigured @tool ÷ plain functools wrapper",
        compare(tool, plain_decorator(work), CALLS * 10),
        "≤ 1.5",
    )
    line(
        "unconfigured @tool ÷ one-argument wrapper",
        compare(tool, one_arg_decorator(work), CALLS * 10),
        "≤ 3",
    )


def configure_sdk(span_delay_ms: int = 5000) -> Any:
    """SDK providers as an application would have them: a span processor (batch, exporting
    to nowhere) and a metric reader; agentrel and the hand-written code share them."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from agentrel._runtime import T

    class Null(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tp = TracerProvider()
    tp.add_span_processor(
        BatchSpanProcessor(
            Null(), max_queue_size=1_000_000, schedule_delay_millis=span_delay_ms,
            max_export_batch_size=1_000_000 if span_delay_ms > 60_000 else 512,
        )
    )  # fmt: skip
    mp = MeterProvider(metric_readers=[InMemoryMetricReader()])
    T.inject(tp, mp)
    return tp, mp


def work(x: int) -> int:
    return x + 1


def handwritten_tools(tp: Any, mp: Any) -> dict[str, Callable[[int], Any]]:
    """What a user would hand-write around ``work`` with the OpenTelemetry API:

    * ``handwritten``: a span (2 attributes), a counter and a histogram (the least);
    * ``contract-floor``: the least that records what agentrel's contract records for a tool
      call: the span with the same attributes (tool metadata, then outcome and attempts) and
      the two histograms of the catalogue (``agentrel.tool.attempts``,
      ``gen_ai.execute_tool.duration``) with their buckets.
    """
    from opentelemetry import context, trace

    from agentrel import METRICS
    from agentrel.instrumentation import tool_spec

    tracer = tp.get_tracer("handwritten")
    meter = mp.get_meter("handwritten")
    counter = meter.create_counter("hw.calls")
    hist = meter.create_histogram("hw.duration", unit="s")
    span_attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "work"}
    c_attrs = {"gen_ai.tool.name": "work", "agentrel.outcome": "success"}
    h_attrs = {"gen_ai.tool.name": "work"}

    def handwritten(x: int) -> int:
        with tracer.start_as_current_span("execute_tool work", attributes=span_attrs) as span:
            t0 = time.perf_counter()
            try:
                result = work(x)
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                raise
            counter.add(1, c_attrs)
            hist.record(time.perf_counter() - t0, h_attrs)
            return result

    specs = {m.name: m for m in METRICS}

    def histogram(name: str) -> Any:
        m = specs[name]
        return meter.create_histogram(
            "hw." + name, unit=m.unit, explicit_bucket_boundaries_advisory=list(m.buckets or ())
        )

    attempts = histogram("agentrel.tool.attempts")
    duration = histogram("gen_ai.execute_tool.duration")
    full_attrs = dict(tool_spec("work", register=False).span_attrs)
    end_attrs = {"agentrel.outcome": "success", "agentrel.call.attempts": 1}

    def contract_floor(x: int) -> int:
        span = tracer.start_span("execute_tool work", attributes=full_attrs)
        ctx = trace.set_span_in_context(span)
        token = context.attach(ctx)
        t0 = time.perf_counter()
        try:
            result = work(x)
        except Exception as exc:
            span.set_attribute("error.type", type(exc).__qualname__)
            span.end()
            context.detach(token)
            raise
        attempts.record(1, c_attrs, ctx)
        duration.record(time.perf_counter() - t0, h_attrs, ctx)
        span.set_attributes(end_attrs)
        span.end()
        context.detach(token)
        return result

    return {"handwritten": handwritten, "contract-floor": contract_floor}


def bench_configured(tp: Any, mp: Any) -> None:
    from opentelemetry import trace

    import agentrel

    tool = agentrel.tool(work)
    hw = handwritten_tools(tp, mp)
    tracer = tp.get_tracer("handwritten")
    line(
        "configured @tool ÷ hand-written OTel span+counter+histogram",
        compare(tool, hw["handwritten"]),
        "≤ 1.0",
    )
    line(
        "configured @tool ÷ hand-written contract floor (same span, 2 histograms)",
        compare(tool, hw["contract-floor"]),
        "(info)",
    )

    def in_run_tool(x: int) -> int:
        with agentrel.run("bench"):
            return tool(x)

    def in_span_handwritten(x: int) -> int:
        with tracer.start_as_current_span("invoke_agent bench"):
            return hw["handwritten"](x)

    line(
        "configured run+@tool ÷ hand-written span around the above",
        compare(in_run_tool, in_span_handwritten),
        "(info)",
    )
    del trace


def bench_hot_path_checks() -> None:
    """Cost and cold starts on the tool hot path: the cold-start check (one set lookup per
    call) and the semconv call counts (two histogram records per run), same process."""
    import agentrel
    from agentrel import _callcounts, _coldstart

    def work(x: int) -> int:
        return x + 1

    tool = agentrel.tool(work)
    tool(0)  # its first call: from now on the check finds it

    class Spec:
        __slots__ = ("name",)

        def __init__(self) -> None:
            self.name = "work"

    spec = Spec()

    def with_check(x: int) -> int:  # the very expression finish_call evaluates
        if spec.name not in _coldstart.SEEN:
            return 0
        return x

    def without_check(x: int) -> int:
        return x

    a, b, _ = compare(with_check, without_check, CALLS * 10)
    t_tool, _, _ = compare(tool, without_check)
    print(
        f"{'cold-start check (name in set) per call':<58} {a - b:6.0f} ns   "
        f"= {(a - b) / t_tool:.2%} of a configured @tool call ({t_tool:.0f} ns)   target < 2%"
    )

    def in_run(x: int) -> int:
        with agentrel.run("bench"):
            return tool(x)

    real = _callcounts.record

    def counts_on(x: int) -> int:
        _callcounts.record = real
        return in_run(x)

    def counts_off(x: int) -> int:
        _callcounts.record = _no_record
        return in_run(x)

    try:
        line(
            "run+@tool, semconv call counts on ÷ off",
            compare(counts_on, counts_off),
            "(info: two histogram records per run)",
        )
    finally:
        _callcounts.record = real


def _no_record(*args: Any) -> None:
    return None


def bench_memory() -> None:
    import agentrel

    @agentrel.tool
    def work(x: int) -> int:
        if x % 97 == 0:
            raise ValueError
        agentrel.record_tokens(input=3, output=2, model="m")
        return x

    def one_run(base: int) -> None:
        with agentrel.run("mem", cohort="smb"):
            for i in range(base, base + 100):
                try:
                    work(i)
                except ValueError:
                    pass

    total = 100_000 if QUICK else 1_000_000
    for r in range(100):  # warm-up: caches, attribute sets, allocator pools
        one_run(r * 100)
    gc.collect()
    before = rss_bytes()
    for r in range(total // 100):
        one_run(r * 100)
    gc.collect()
    growth = rss_bytes() - before
    print(f"{'RSS growth over ' + format(total, ',') + ' decorated calls in runs':<58} "
          f"{growth / 1024:6.0f} KiB   target < 1024 KiB")  # fmt: skip


# --- instruction counts -----------------------------------------------------------------------
N1, N2 = (200, 1200) if QUICK else (500, 3000)


def _variants() -> dict[str, Callable[[int], Any]]:
    """The functions compared by instruction count, built as the timed benchmarks build
    them; configured ones record into SDK providers whose span processor never exports
    during the count (a batch processor with an hour's delay), so no timer thread adds
    instructions that depend on the clock."""
    import os

    import agentrel

    def plain(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        return wrapper

    def one_arg(fn: Callable[[int], int]) -> Callable[[int], int]:
        def wrapper(x: int) -> int:
            return fn(x)

        return wrapper

    if os.environ.get("AGENTREL_BENCH_SDK"):
        tp, mp = configure_sdk(span_delay_ms=3_600_000)
        return {"configured-tool": agentrel.tool(work), **handwritten_tools(tp, mp)}
    return {
        "unconfigured-tool": agentrel.tool(work),
        "functools": plain(work),
        "one-arg": one_arg(work),
    }


def _child(name: str, n: int) -> None:
    import os

    fn = _variants()[name]
    for i in range(50):  # warm-up: caches, attribute sets
        fn(i)
    for i in range(n):
        fn(i)
    sys.stdout.flush()
    os._exit(0)  # no exporter shutdown: the same for every variant


def _count(name: str, n: int) -> int:
    import os
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        env = dict(os.environ, PYTHONHASHSEED="0")  # same hashing, same instructions
        if name in ("configured-tool", "handwritten", "contract-floor"):
            env["AGENTREL_BENCH_SDK"] = "1"
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             sys.executable, __file__, "--child", name, str(n)],
            check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=1800,
        )  # fmt: skip
        with open(out) as f:
            for row in f:
                if row.startswith(("totals:", "summary:")):
                    return int(row.split()[1])
    raise RuntimeError("callgrind wrote no totals")


def per_call_instructions(name: str) -> float:
    return (_count(name, N2) - _count(name, N1)) / (N2 - N1)


def bench_instructions() -> None:
    print(f"agentrel instruction counts (callgrind, ({N2} - {N1}) calls per variant)")
    ir = {
        name: per_call_instructions(name)
        for name in (
            "unconfigured-tool", "functools", "one-arg",
            "configured-tool", "handwritten", "contract-floor",
        )
    }  # fmt: skip
    for label, a, b, target in (
        ("unconfigured @tool ÷ plain functools wrapper", "unconfigured-tool", "functools", "≤ 1.5"),
        ("unconfigured @tool ÷ one-argument wrapper", "unconfigured-tool", "one-arg", "≤ 3"),
        ("configured @tool ÷ hand-written span+counter+histogram", "configured-tool",
         "handwritten", "≤ 1.0"),
        ("configured @tool ÷ hand-written contract floor", "configured-tool",
         "contract-floor", "(info)"),
    ):  # fmt: skip
        print(f"{label:<58} {ir[a] / ir[b]:6.3f}   ({ir[a]:8.0f} Ir ÷ {ir[b]:8.0f} Ir)   "
              f"target {target}")  # fmt: skip


def main() -> None:
    if "--child" in sys.argv:
        i = sys.argv.index("--child")
        _child(sys.argv[i + 1], int(sys.argv[i + 2]))
    if "--instructions" in sys.argv:
        bench_instructions()
        return
    print(f"agentrel overhead (python {sys.version.split()[0]}, {ROUNDS} rounds × {CALLS:,} calls)")
    bench_unconfigured()
    tp, mp = configure_sdk()
    bench_configured(tp, mp)
    bench_hot_path_checks()
    bench_memory()
    here = Path(__file__).resolve().parent
    for extra in ("retry_overhead.py", "llm_overhead.py"):
        path = here / extra
        if path.exists():
            import runpy

            from agentrel._runtime import T

            T.uninject()
            sys.stdout.flush()
            runpy.run_path(str(path), run_name="__main__")


if __name__ == "__main__":
    main()
