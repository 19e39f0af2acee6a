"""agentrel's overhead, as ratios measured in one process.

    python bench/overhead.py                  # full run (about a minute)
    python bench/overhead.py --quick          # fewer rounds, for a smoke check
    python bench/overhead.py --instructions   # instruction counts under valgrind (minutes)
    python bench/overhead.py --only NAME      # one case (see --list), timed or counted

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


def handwritten_runs(tp: Any, mp: Any) -> dict[str, Callable[[int], Any]]:
    """Hand-written runs: ``run-tool-hw``, a parent span (``invoke_agent``) around the
    hand-written tool (its span, a counter and a histogram per call) and one histogram record
    per run at its end; ``empty-run-hw``, the parent span alone; ``run-tool-floor``, the least
    that records what agentrel's contract records for that run (the tool's contract floor, the
    run span with the same attributes, and the four points of a run's end: retry depth,
    attempts, the two semconv call counts), written with the public API."""
    tracer = tp.get_tracer("handwritten")
    meter = mp.get_meter("handwritten")
    handwritten = handwritten_tools(tp, mp)["handwritten"]
    runs = meter.create_histogram("hw.run.attempts", unit="{attempt}")
    run_attrs = {"gen_ai.agent.name": "bench", "agentrel.outcome": "success"}
    span_attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "bench"}

    def run_tool_hw(x: int) -> int:
        with tracer.start_as_current_span("invoke_agent bench", attributes=span_attrs):
            result = handwritten(x)
            runs.record(1, run_attrs)
            return result

    def empty_run_hw(x: int) -> int:
        with tracer.start_as_current_span("invoke_agent bench", attributes=span_attrs):
            return x

    from opentelemetry import context, trace

    from agentrel import METRICS
    from agentrel._cost import PRICING

    specs = {m.name: m for m in METRICS}

    def histogram(name: str) -> Any:
        m = specs[name]
        return meter.create_histogram(
            "hwr." + name, unit=m.unit, explicit_bucket_boundaries_advisory=list(m.buckets or ())
        )

    floor_tool = handwritten_tools(tp, mp)["contract-floor"]
    depth, attempts = histogram("agentrel.run.retry_depth"), histogram("agentrel.run.attempts")
    tool_calls = histogram("gen_ai.invoke_agent.tool_calls")
    inference_calls = histogram("gen_ai.invoke_agent.inference_calls")
    start_attrs = {**span_attrs, "agentrel.cohort": "none"}
    outcome_attrs = {"gen_ai.agent.name": "bench", "agentrel.outcome": "success",
                     "agentrel.cohort": "none"}  # fmt: skip
    agent_attrs = {"gen_ai.agent.name": "bench"}
    end_attrs: dict[str, Any] = {
        "agentrel.outcome": "success", "agentrel.run.retry_depth": 0,
        "agentrel.run.attempts": 1, "agentrel.run.tokens": 0, "agentrel.run.wasted_tokens": 0,
    }  # fmt: skip
    if PRICING.enabled:  # agentrel puts the run's dollars on its span when it can price
        end_attrs.update({"agentrel.run.cost_usd": 0.0, "agentrel.run.wasted_cost_usd": 0.0})

    def run_tool_floor(x: int) -> int:
        span = tracer.start_span("invoke_agent bench", attributes=start_attrs)
        ctx = trace.set_span_in_context(span)
        token = context.attach(ctx)
        try:
            result = floor_tool(x)
        except Exception:
            span.end()
            context.detach(token)
            raise
        depth.record(0, outcome_attrs, ctx)
        attempts.record(1, outcome_attrs, ctx)
        tool_calls.record(1, agent_attrs, ctx)
        inference_calls.record(0, agent_attrs, ctx)
        span.set_attributes(end_attrs)
        span.end()
        context.detach(token)
        return result

    return {"run-tool-hw": run_tool_hw, "empty-run-hw": empty_run_hw,
            "run-tool-floor": run_tool_floor}  # fmt: skip


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
        "≤ 1.05",
    )

    del trace, tracer


def bench_run_tool(tp: Any, mp: Any) -> None:
    """One run around one tool call ÷ the hand-written parent span around the hand-written
    tool (its span, counter and histogram) with one histogram record per run."""
    import agentrel

    tool = agentrel.tool(work)
    hw = handwritten_runs(tp, mp)

    def in_run_tool(x: int) -> int:
        with agentrel.run("bench"):
            return tool(x)

    line(
        "configured run+@tool ÷ hand-written parent+child span, 2+1 records",
        compare(in_run_tool, hw["run-tool-hw"]),
        "≤ 1.30",
    )

    def empty_run(x: int) -> int:
        with agentrel.run("bench"):
            return x

    line(
        "configured empty run ÷ hand-written parent span",
        compare(empty_run, hw["empty-run-hw"]),
        "(info)",
    )


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
#: fewer calls for the LLM clients (each call is a whole SDK request through a mock transport)
LLM_N1, LLM_N2 = (50, 150) if QUICK else (100, 400)
#: variants that record into SDK providers (the child process configures them)
SDK_VARIANTS = frozenset(
    ("configured-tool", "handwritten", "contract-floor", "run-tool", "run-tool-hw",
     "empty-run", "empty-run-hw", "run-tool-floor", "openai", "openai-hw", "anthropic",
     "anthropic-hw")
)  # fmt: skip
LLM_VARIANTS = frozenset(("openai", "openai-hw", "anthropic", "anthropic-hw"))


def _llm_variants(tp: Any, mp: Any) -> dict[str, Callable[[int], Any]]:
    """The instrumented OpenAI and Anthropic clients and their hand-written GenAI floor
    (``llm_overhead.handwritten``), all answered by an in-process mock transport."""
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here.parent / "tests"))
    sys.path.insert(0, str(here))
    import llm_overhead as lo

    import agentrel
    from llm_mocks import Script, anthropic_client, chat_body, message_body, openai_client

    msgs = lo.MSGS
    oa_bare = openai_client(Script((200, chat_body())))
    oa_inst = agentrel.instrument(openai_client(Script((200, chat_body()))))
    an_bare = anthropic_client(Script((200, message_body())))
    an_inst = agentrel.instrument(anthropic_client(Script((200, message_body()))))

    def oa(client: Any) -> Callable[[], Any]:
        return lambda: client.chat.completions.create(model="gpt-4o", messages=msgs)

    def an(client: Any) -> Callable[[], Any]:
        return lambda: client.messages.create(model="claude-mock-1", max_tokens=10, messages=msgs)

    oa_hw = lo.handwritten(
        (tp, mp), oa(oa_bare), "openai", "gpt-4o",
        lambda r: (r.usage.prompt_tokens, r.usage.completion_tokens),
    )  # fmt: skip
    an_hw = lo.handwritten(
        (tp, mp), an(an_bare), "anthropic", "claude-mock-1",
        lambda r: (r.usage.input_tokens, r.usage.output_tokens),
    )  # fmt: skip
    fns = {
        "openai": oa(oa_inst),
        "openai-hw": oa_hw,
        "anthropic": an(an_inst),
        "anthropic-hw": an_hw,
    }

    def one_arg(f: Callable[[], Any]) -> Callable[[int], Any]:
        return lambda x: f()

    return {k: one_arg(f) for k, f in fns.items()}


def _variant(name: str) -> Callable[[int], Any]:
    """The function counted as ``name``, built as the timed benchmarks build it; configured
    ones record into SDK providers whose span processor never exports during the count (a
    batch processor with an hour's delay), so no timer thread adds instructions that depend
    on the clock."""
    import agentrel

    if name in SDK_VARIANTS:
        tp, mp = configure_sdk(span_delay_ms=3_600_000)
        if name in LLM_VARIANTS:
            return _llm_variants(tp, mp)[name]
        tool = agentrel.tool(work)

        def run_tool(x: int) -> int:
            with agentrel.run("bench"):
                return tool(x)

        def empty_run(x: int) -> int:
            with agentrel.run("bench"):
                return x

        ours = {"configured-tool": tool, "run-tool": run_tool, "empty-run": empty_run}
        return {**ours, **handwritten_tools(tp, mp), **handwritten_runs(tp, mp)}[name]

    def plain(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        return wrapper

    def one_arg(fn: Callable[[int], int]) -> Callable[[int], int]:
        def wrapper(x: int) -> int:
            return fn(x)

        return wrapper

    def unconfigured_empty_run(x: int) -> int:
        with agentrel.run("bench"):
            return x

    return {
        "unconfigured-tool": agentrel.tool(work),
        "functools": plain(work),
        "one-arg": one_arg(work),
        "unconfigured-empty-run": unconfigured_empty_run,
    }[name]


def _child(name: str, n: int) -> None:
    import os

    fn = _variant(name)
    for i in range(50):  # warm-up: caches, attribute sets
        fn(i)
    # As the timed rounds do: no cyclic collection during the count. Whether the call that
    # crosses a full collection's threshold falls inside the N1 or the N2 run decides a
    # million instructions per call of the LLM variants (the whole SDK heap is traversed).
    gc.disable()
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
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             sys.executable, __file__, "--child", name, str(n)],
            check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=3600,
        )  # fmt: skip
        with open(out) as f:
            for row in f:
                if row.startswith(("totals:", "summary:")):
                    return int(row.split()[1])
    raise RuntimeError("callgrind wrote no totals")


def per_call_instructions(name: str) -> float:
    n1, n2 = (LLM_N1, LLM_N2) if name in LLM_VARIANTS else (N1, N2)
    return (_count(name, n2) - _count(name, n1)) / (n2 - n1)


#: (case, label, variant, baseline or None for an absolute figure, target)
INSTRUCTION_LINES = (
    ("unconfigured", "unconfigured @tool ÷ plain functools wrapper", "unconfigured-tool",
     "functools", "≤ 1.5"),
    ("unconfigured", "unconfigured @tool ÷ one-argument wrapper", "unconfigured-tool",
     "one-arg", "≤ 3"),
    ("unconfigured-run", "unconfigured empty run (no provider)", "unconfigured-empty-run",
     None, "no provider refresh per open"),
    ("tool", "configured @tool ÷ hand-written span+counter+histogram", "configured-tool",
     "handwritten", "≤ 1.0"),
    ("tool", "configured @tool ÷ hand-written contract floor", "configured-tool",
     "contract-floor", "≤ 1.05"),
    ("run-tool", "run+@tool ÷ hand-written parent+child span, 2+1 records", "run-tool",
     "run-tool-hw", "≤ 1.30"),
    ("run-tool", "run+@tool ÷ its contract floor (same points and spans, by hand)", "run-tool",
     "run-tool-floor", "(info)"),
    ("run-tool", "run+@tool contract floor ÷ hand-written parent+child span", "run-tool-floor",
     "run-tool-hw", "(info: the least the contract costs)"),
    ("empty-run", "configured empty run ÷ hand-written parent span", "empty-run",
     "empty-run-hw", "(info)"),
    ("llm", "openai chat.completions ÷ hand-written GenAI floor", "openai", "openai-hw",
     "≤ 1.05"),
    ("llm", "anthropic messages ÷ hand-written GenAI floor", "anthropic", "anthropic-hw",
     "≤ 1.05"),
)  # fmt: skip


def bench_instructions(only: str | None) -> None:
    lines = [row for row in INSTRUCTION_LINES if only in (None, row[0])]
    if not lines:
        raise SystemExit(f"--only {only}: no such case ({', '.join(_cases(True))})")
    print(f"agentrel instruction counts (callgrind, ({N2} - {N1}) calls per variant, "
          f"({LLM_N2} - {LLM_N1}) per LLM variant)")  # fmt: skip
    ir: dict[str, float] = {}
    for _, label, a, b, target in lines:
        for name in (a, b):
            if name is not None and name not in ir:
                ir[name] = per_call_instructions(name)
        if b is None:
            print(f"{label:<58} {ir[a]:8.0f} Ir per run   target {target}")
        else:
            print(f"{label:<58} {ir[a] / ir[b]:6.3f}   ({ir[a]:8.0f} Ir ÷ {ir[b]:8.0f} Ir)   "
                  f"target {target}")  # fmt: skip
        sys.stdout.flush()


#: the timed cases (``--only NAME``)
TIMED_CASES = ("unconfigured", "tool", "run-tool", "hot-path", "memory", "retry", "llm")


def _cases(instructions: bool) -> list[str]:
    if instructions:
        return list(dict.fromkeys(row[0] for row in INSTRUCTION_LINES))
    return list(TIMED_CASES)


def main() -> None:
    if "--child" in sys.argv:
        i = sys.argv.index("--child")
        _child(sys.argv[i + 1], int(sys.argv[i + 2]))
    instructions = "--instructions" in sys.argv
    if "--list" in sys.argv:
        print("\n".join(_cases(instructions)))
        return
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    if instructions:
        bench_instructions(only)
        return
    if only is not None and only not in TIMED_CASES:
        raise SystemExit(f"--only {only}: no such case ({', '.join(TIMED_CASES)})")

    def wanted(case: str) -> bool:
        return only is None or only == case

    print(f"agentrel overhead (python {sys.version.split()[0]}, {ROUNDS} rounds × {CALLS:,} calls)")
    if wanted("unconfigured"):
        bench_unconfigured()
    tp, mp = configure_sdk()
    if wanted("tool"):
        bench_configured(tp, mp)
    if wanted("run-tool"):
        bench_run_tool(tp, mp)
    if wanted("hot-path"):
        bench_hot_path_checks()
    if wanted("memory"):
        bench_memory()
    here = Path(__file__).resolve().parent
    for case, extra in (("retry", "retry_overhead.py"), ("llm", "llm_overhead.py")):
        path = here / extra
        if wanted(case) and path.exists():
            import runpy

            from agentrel._runtime import T

            T.uninject()
            sys.stdout.flush()
            argv, sys.argv = sys.argv, [str(path), *(["--rounds", "5"] if QUICK else [])]
            try:
                runpy.run_path(str(path), run_name="__main__")
            finally:
                sys.argv = argv


if __name__ == "__main__":
    main()
