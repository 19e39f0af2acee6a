"""With no OpenTelemetry SDK anywhere, agentrel is a cheap no-op (run in fresh interpreters,
since the global providers can be set only once per process)."""

from __future__ import annotations

from pyproc import run_py as _run_py


def run_py(code: str) -> str:
    return _run_py(code, PYTHONPATH="")


def test_unconfigured_tool_makes_no_span_or_instrument_call() -> None:
    """Outside a run, an unconfigured @tool calls straight through: no tracer, no meter."""
    out = run_py(
        """
        import sys, agentrel
        from agentrel._runtime import T

        class Spy:
            calls = 0
            def __getattr__(self, name):
                Spy.calls += 1
                raise AssertionError("touched " + name)

        T.tracer = Spy()
        for attr in ("tool_attempts", "execute_tool_duration", "tool_failures", "tokens"):
            setattr(T, attr, Spy())

        @agentrel.tool
        def add(a, b):
            return a + b

        @agentrel.tool
        async def aadd(a, b):
            return a + b

        import asyncio
        assert add(1, 2) == 3
        assert asyncio.run(aadd(2, 3)) == 5
        assert list(agentrel.tool(lambda: iter([1]))()) == [1]
        print(Spy.calls, T.active, "opentelemetry.sdk" in sys.modules)
        """
    )
    assert out == "0 False False"


def test_unconfigured_run_still_counts() -> None:
    """Inside a run the handle's figures are right even with no SDK (no-op spans/metrics)."""
    out = run_py(
        """
        import agentrel

        @agentrel.tool
        def flaky(n=[0]):
            n[0] += 1
            if n[0] == 1:
                raise TimeoutError
            return "ok"

        with agentrel.run("r") as run:
            try:
                flaky()
            except TimeoutError:
                pass
            flaky()
        print(run.outcome, run.retry_depth, run.attempts)
        """
    )
    assert out == "recovered 1 2"


def test_provider_set_later_is_picked_up() -> None:
    """An application that sets its SDK provider after decorating tools gets spans."""
    out = run_py(
        """
        import agentrel
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        @agentrel.tool
        def t():
            return 1

        t()
        exporter = InMemorySpanExporter()
        tp = TracerProvider()
        tp.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(tp)
        t()
        print([s.name for s in exporter.get_finished_spans()])
        """
    )
    assert out == "['execute_tool t']"


def test_a_provider_set_later_is_learnt_without_polling() -> None:
    """Set through the public API after agentrel was imported, a provider is bound at once:
    the very next tool call outside any run is recorded (no per-call polling needed)."""
    out = run_py(
        """
        import agentrel
        from agentrel._runtime import T
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        @agentrel.tool
        def search(q):
            return q

        search("before")
        before = T.active
        exporter = InMemorySpanExporter()
        tp = TracerProvider()
        tp.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(tp)
        search("after")
        print(before, T.active, [s.name for s in exporter.get_finished_spans()])
        """
    )
    assert out == "False True ['execute_tool search']"


def test_a_provider_set_before_import_is_bound_at_import() -> None:
    """An application (or opentelemetry-instrument) that set providers first: agentrel binds
    them when it is imported."""
    out = run_py(
        """
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        metrics.set_meter_provider(MeterProvider())
        from agentrel._runtime import T
        print(T.active)
        """
    )
    assert out == "True"


def test_a_setter_reference_taken_before_import_is_learnt_at_once() -> None:
    """``from opentelemetry.trace import set_tracer_provider`` before agentrel is imported:
    the provider that reference sets is bound when it is set (the API's own setter tells
    agentrel), and a run opening with nothing bound looks for no provider."""
    out = run_py(
        """
        from opentelemetry.trace import set_tracer_provider
        import agentrel
        from agentrel._runtime import T, Telemetry
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        refreshes = [0]
        real = Telemetry.refresh
        def counting(self):
            refreshes[0] += 1
            return real(self)
        Telemetry.refresh = counting
        for _ in range(3):
            with agentrel.run("idle") as r:
                pass
        exporter = InMemorySpanExporter()
        tp = TracerProvider()
        tp.add_span_processor(SimpleSpanProcessor(exporter))
        set_tracer_provider(tp)
        active = T.active
        with agentrel.run("bench"):
            pass
        print(T.hooked, r.outcome, refreshes[0], active,
              [s.name for s in exporter.get_finished_spans()])
        """
    )
    assert out == "True success 1 True ['invoke_agent bench']"


def test_without_the_private_setters_a_run_opening_looks_for_a_provider() -> None:
    """An API without the private setters agentrel wraps: it wraps the public ones, and a
    provider set behind its back (through the API's own setter, here a reference taken first)
    is learnt when the next run opens."""
    out = run_py(
        """
        import opentelemetry.trace as api
        raw = api._set_tracer_provider  # a way of setting agentrel cannot see
        import agentrel
        from agentrel import _runtime
        from agentrel._runtime import T
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        hooked = _runtime.hook_setters((("opentelemetry.trace", "_no_such_setter"),))
        public = getattr(api.set_tracer_provider, "_agentrel_notifies", False)
        exporter = InMemorySpanExporter()
        tp = TracerProvider()
        tp.add_span_processor(SimpleSpanProcessor(exporter))
        raw(tp, log=True)
        before = T.active
        with agentrel.run("bench"):
            pass
        print(hooked, T.hooked, public, before, T.active,
              [s.name for s in exporter.get_finished_spans()])
        """
    )
    assert out == "False False True False True ['invoke_agent bench']"


def test_the_cheap_exit_flag_follows_open_runs() -> None:
    """Unconfigured, the decorators' first check (``T.armed``) is off until a run opens and
    off again once every run has finished, however often a run is finished; a run open in
    another thread does not make this thread's calls count, and its own calls count exactly."""
    out = run_py(
        """
        import threading
        import agentrel
        from agentrel._runtime import T

        @agentrel.tool
        def search(q):
            return q

        seen = [T.armed]
        opened, release = threading.Event(), threading.Event()
        box = {}

        def worker():
            with agentrel.run("bg") as run:
                search("a")
                opened.set()
                release.wait(10)
                search("b")
            box["run"] = run

        t = threading.Thread(target=worker)
        t.start()
        opened.wait(10)
        seen.append(T.armed)
        search("outside")  # this thread is in no run: straight through
        release.set()
        t.join(10)
        seen.append(T.armed)
        with agentrel.run("r") as r2:
            search("c")
        seen.append(T.armed)
        print(seen, box["run"].attempts, r2.attempts)
        """
    )
    assert out == "[False, True, False, False] 2 1"
