"""Fault injection: a meter, tracer, exporter or hook that raises never breaks the host.

The tool still returns its own value or raises its own exception object, and agentrel's
failure is counted (``agentrel.telemetry_errors()``) and logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry, generate_latest

import agentrel
from agentrel import testing
from agentrel._prometheus import OpenTelemetryCollector
from agentrel._runtime import T


class Boom(Exception):
    pass


class RaisingInstrument:
    def __init__(self) -> None:
        self.calls = 0

    def record(self, *a: Any, **k: Any) -> None:
        self.calls += 1
        raise Boom("meter")

    add = record


class RaisingTracer:
    def start_span(self, *a: Any, **k: Any) -> Any:
        raise Boom("tracer")


ERR = ValueError("the tool's own")


def _tools() -> tuple[Any, Any, Any]:
    @agentrel.tool
    def ok(x: int) -> int:
        return x + 1

    @agentrel.tool
    def bad() -> None:
        raise ERR

    @agentrel.tool
    async def aok() -> str:
        return "async"

    return ok, bad, aok


def _exercise(ok: Any, bad: Any, aok: Any) -> None:
    import asyncio

    for _ in range(3):
        with agentrel.run("r"):
            assert ok(1) == 2
            with pytest.raises(ValueError) as info:
                bad()
            assert info.value is ERR
            assert asyncio.run(aok()) == "async"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "telemetry failed" in r.getMessage()]


@pytest.mark.parametrize(
    "attr", ["tool_attempts", "execute_tool_duration", "run_retry_depth", "tool_failures"]
)
def test_raising_meter(
    cap: testing.Capture,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    attr: str,
) -> None:
    """An instrument that raises on every call: the host sees nothing; one log line per site."""
    broken = RaisingInstrument()
    monkeypatch.setattr(T, attr, broken)
    caplog.set_level(logging.WARNING, "agentrel")
    _exercise(*_tools())
    assert broken.calls >= 3
    errors = agentrel.telemetry_errors()
    assert sum(errors.values()) == broken.calls
    assert set(errors) <= {"call.metrics", "run.metrics"}
    assert len(_warnings(caplog)) == len(errors)  # once per site, however many failures
    # The rest of the bookkeeping survived: every span was ended and exported.
    assert len(cap.spans()) == 3 * 4


def test_raising_tracer(
    cap: testing.Capture, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A tracer whose start_span raises: tools and runs still work, errors counted."""
    monkeypatch.setattr(T, "tracer", RaisingTracer())
    caplog.set_level(logging.WARNING, "agentrel")
    _exercise(*_tools())
    errors = agentrel.telemetry_errors()
    # 3 runs x (run start + 3 calls) = 12 failed span starts
    assert errors == {"run.start": 3, "call.span": 9}
    assert len(_warnings(caplog)) == 2
    # Spans are lost, counts are not: 3 runs, each with one absorbed failure.
    depth = cap.histogram("agentrel.run.retry_depth", {"agentrel.outcome": "recovered"})
    assert (depth.count, depth.sum) == (3, 3)
    assert cap.histogram("agentrel.tool.attempts").count == 9


class RaisingExporter(SpanExporter):
    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.calls += 1
        raise Boom("exporter down")

    def shutdown(self) -> None:
        pass


def test_raising_exporter() -> None:
    """A span exporter that raises on every export does not reach the host."""
    exporter = RaisingExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    T.inject(tp, MeterProvider(metric_readers=[reader]))
    try:
        _exercise(*_tools())
    finally:
        T.uninject()
    assert exporter.calls == 3 * 4  # every span reached the exporter, which raised each time


def test_raising_failure_when_hook(cap: testing.Capture, caplog: pytest.LogCaptureFixture) -> None:
    """A failure_when predicate that raises counts as 'not flagged'; the value comes back."""

    def pred(result: Any) -> bool:
        raise Boom("hook")

    @agentrel.tool(failure_when=pred)
    def t() -> str:
        return "value"

    caplog.set_level(logging.WARNING, "agentrel")
    with agentrel.run("r") as run:
        assert t() == "value"
        assert t() == "value"
    assert run.outcome == "success"
    assert agentrel.telemetry_errors() == {"failure_when": 2}
    assert len(_warnings(caplog)) == 1


def test_raising_usage_extractor(cap: testing.Capture) -> None:
    """A usage= extractor that raises loses the tokens, never the answer."""

    @agentrel.llm(model="m", usage=lambda r: r["missing"])
    def ask() -> dict[str, str]:
        return {"text": "hi"}

    with agentrel.run("r") as run:
        assert ask() == {"text": "hi"}
    assert run.tokens == 0
    assert agentrel.telemetry_errors() == {"llm.usage": 1}


def test_bad_token_counts_do_not_raise(cap: testing.Capture) -> None:
    """record_tokens with nonsense is counted as a telemetry error, not raised."""
    with agentrel.run("r") as run:
        agentrel.record_tokens(input=-5)
        agentrel.record_tokens(input="12")  # type: ignore[arg-type]
        agentrel.record_tokens(input=None, output=4)  # type: ignore[arg-type]
    assert run.tokens == 4
    assert agentrel.telemetry_errors() == {"record_tokens": 2}


def test_raising_collection_serves_empty_scrape(monkeypatch: pytest.MonkeyPatch) -> None:
    """If reading the SDK fails at scrape time, /metrics answers (empty) instead of a 500."""
    reader = InMemoryMetricReader()

    def broken() -> None:
        raise Boom("reader")

    monkeypatch.setattr(reader, "get_metrics_data", broken)
    registry = CollectorRegistry()
    registry.register(OpenTelemetryCollector(reader))
    assert generate_latest(registry) == b""
    assert agentrel.telemetry_errors() == {"prometheus.collect": 1}


@pytest.mark.parametrize("attr", ["client_operation_duration", "client_token_usage"])
def test_raising_semconv_meter_on_an_llm_client(
    cap: testing.Capture, monkeypatch: pytest.MonkeyPatch, attr: str
) -> None:
    """A broken gen_ai.client.* instrument: the SDK's own response comes back, the span keeps
    its response model and usage, the run still gets its tokens."""
    from llm_mocks import Script, chat_body, openai_client

    broken = RaisingInstrument()
    monkeypatch.setattr(T, attr, broken)
    client = agentrel.instrument(openai_client(Script((200, chat_body()))))
    with agentrel.run("r"):
        result = client.chat.completions.create(model="gpt-4o", messages=[])
    assert type(result).__name__ == "ChatCompletion" and result.usage.prompt_tokens == 100
    assert broken.calls == 1
    assert agentrel.telemetry_errors() == {"call.metrics": 1}
    [span] = cap.spans("chat gpt-4o")
    assert span.attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert span.attributes["gen_ai.usage.input_tokens"] == 100
    assert span.attributes["gen_ai.usage.output_tokens"] == 50
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "useful"}) == 150
