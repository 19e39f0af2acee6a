"""pytest plugin: run a host library's own test suite with agentrel switched on, or off.

Loaded with ``-p agentrel_switch`` (this folder on ``PYTHONPATH``) in both runs of a suite, so
the two runs differ only in ``--agentrel=on``:

* ``--agentrel=off`` (default): agentrel is not even imported. The plugin only puts each
  test's node id into the JUnit XML (a ``nodeid`` property), so the two runs compare by id.
* ``--agentrel=on``: real OpenTelemetry SDK providers (a span exporter that tallies what it
  receives, an in-memory metric reader) are handed to ``agentrel.configure``, every
  integration's ``instrument()`` is called, each sync test's call phase runs inside
  ``agentrel.run(...)`` (async tests are left to open their runs through the integrations,
  as an application's event loop would), and every OpenAI / Anthropic client a fixture
  returns is handed to the test as ``agentrel.instrument(client)``. The global OpenTelemetry
  providers are left alone. At session end the tally goes to ``--agentrel-report`` as JSON:
  spans by name (the first word: ``execute_tool``, ``invoke_agent``, ``chat``), calls with
  more than one attempt, attempt events, runs by outcome, agentrel's telemetry errors, and
  which integrations were switched on.
"""

from __future__ import annotations

import collections
import importlib
import inspect
import json
import sys
import threading
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import pytest

RUN_NAME = "host_suite"
# agentrel.integrations.<module> whose instrument() the "on" run calls, with the host library
# each needs (an integration whose library is not installed is reported as such, not an error).
INTEGRATIONS = (
    ("tenacity", "tenacity"),
    ("stamina", "stamina"),
    ("langgraph", "langgraph"),
    ("openai_agents", "agents"),
    ("pydantic_ai", "pydantic_ai"),
)
# backoff has no instrument(): its handlers are passed to the decorator by the user.
LLM_CLIENTS = (
    ("openai", ("OpenAI", "AsyncOpenAI")),
    ("anthropic", ("Anthropic", "AsyncAnthropic")),
)


class SpanTally:
    """What the span exporter saw, as counts, not spans (a suite records thousands)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spans: collections.Counter[str] = collections.Counter()
        self.retried: collections.Counter[str] = collections.Counter()
        self.attempt_events = 0
        self.max_attempts = 0

    def add(self, span: Any) -> None:
        kind = span.name.split(" ", 1)[0]
        attempts = (span.attributes or {}).get("agentrel.call.attempts", 0)
        events = sum(1 for e in span.events if e.name == "agentrel.attempt")
        with self._lock:
            self.spans[kind] += 1
            self.attempt_events += events
            if isinstance(attempts, int) and attempts > 1:
                self.retried[kind] += 1
                self.max_attempts = max(self.max_attempts, attempts)


def _exporter(tally: SpanTally) -> Any:
    """A real SDK span exporter that hands every span to ``tally``."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class TallyExporter(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            for span in spans:
                tally.add(span)
            return SpanExportResult.SUCCESS

    return TallyExporter()


class _Switch:
    def __init__(self, report: Path | None) -> None:
        self.report = report
        self.tally = SpanTally()
        self.reader: Any = None
        self.instrumented: dict[str, str] = {}
        self.clients = 0
        self.tests_in_runs = 0
        self.async_tests: set[str] = set()

    def start(self) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        import agentrel

        tracer_provider = TracerProvider()
        # Simple, not batch: no exporter thread that a host test counting threads would see.
        tracer_provider.add_span_processor(SimpleSpanProcessor(_exporter(self.tally)))
        self.reader = InMemoryMetricReader()
        meter_provider = MeterProvider(metric_readers=[self.reader])
        agentrel.configure(tracer_provider=tracer_provider, meter_provider=meter_provider)
        for module, needs in INTEGRATIONS:
            try:
                importlib.import_module(needs)
            except ImportError:
                self.instrumented[module] = "library not installed"
                continue
            integration = importlib.import_module(f"agentrel.integrations.{module}")
            integration.instrument()
            self.instrumented[module] = "on"

    def client(self, value: Any) -> Any:
        """``agentrel.instrument(value)`` if it is an LLM client agentrel instruments."""
        for module, names in LLM_CLIENTS:
            mod = sys.modules.get(module)
            if mod is None:
                continue
            classes = tuple(c for c in (getattr(mod, n, None) for n in names) if c is not None)
            if classes and isinstance(value, classes):
                import agentrel

                if type(value).__module__.startswith("agentrel"):
                    return value  # a proxy already
                self.clients += 1
                return agentrel.instrument(value)
        return value

    def finish(self, exitstatus: int) -> None:
        import agentrel

        runs: collections.Counter[str] = collections.Counter()
        tool_calls = 0
        failures = 0
        data = self.reader.get_metrics_data() if self.reader is not None else None
        for rm in getattr(data, "resource_metrics", None) or ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.data.data_points:
                        if metric.name == "agentrel.run.retry_depth":
                            runs[str(point.attributes.get("agentrel.outcome"))] += point.count
                        elif metric.name == "agentrel.tool.attempts":
                            tool_calls += point.count
                        elif metric.name == "agentrel.tool.failures":
                            failures += point.value
        report = {
            "spans": dict(sorted(self.tally.spans.items())),
            "calls_with_retries": dict(sorted(self.tally.retried.items())),
            "max_attempts": self.tally.max_attempts,
            "attempt_events": self.tally.attempt_events,
            "runs_by_outcome": dict(sorted(runs.items())),
            "tool_calls": tool_calls,
            "failed_attempts": failures,
            "telemetry_errors": dict(agentrel.telemetry_errors()),
            "integrations": self.instrumented,
            "clients_instrumented": self.clients,
            "tests_in_runs": self.tests_in_runs,
            "async_tests": len(self.async_tests),
            "exitstatus": int(exitstatus),
        }
        if self.report is not None:
            self.report.parent.mkdir(parents=True, exist_ok=True)
            self.report.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


_SWITCH: _Switch | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agentrel", "agentrel switched on in a host library's suite")
    group.addoption("--agentrel", choices=("off", "on"), default="off")
    group.addoption("--agentrel-report", metavar="PATH", default=None)


def pytest_configure(config: pytest.Config) -> None:
    global _SWITCH
    if config.getoption("--agentrel") != "on":
        return
    report = config.getoption("--agentrel-report")
    _SWITCH = _Switch(Path(report) if report else None)
    _SWITCH.start()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.user_properties.append(("nodeid", item.nodeid))
        # Seen here, before a plugin such as pytest-asyncio wraps the test in a sync runner.
        if _SWITCH is not None and inspect.iscoroutinefunction(getattr(item, "obj", None)):
            _SWITCH.async_tests.add(item.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Generator[None, Any, Any]:
    result = yield
    if _SWITCH is None:
        return result
    proxied = _SWITCH.client(result)
    if proxied is not result:
        cached = fixturedef.cached_result
        if cached is not None and cached[0] is result:
            fixturedef.cached_result = (proxied, *cached[1:])
    return proxied


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    if _SWITCH is None or item.nodeid in _SWITCH.async_tests:
        return (yield)
    import agentrel

    _SWITCH.tests_in_runs += 1
    with agentrel.run(RUN_NAME):
        return (yield)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _SWITCH is not None:
        _SWITCH.finish(exitstatus)
