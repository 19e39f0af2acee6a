"""The native endpoint: OpenTelemetry's Prometheus names, OpenMetrics, exemplars."""

from __future__ import annotations

import re
import urllib.request

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

import agentrel
from agentrel import METRICS
from agentrel._catalogue import prometheus_metric_name
from agentrel._prometheus import MetricsServer, OpenTelemetryCollector, registry_for
from agentrel._runtime import T


def _scenario() -> None:
    """One run touching every instrument the core records."""

    from agentrel import _cost

    _cost.set_prices(*_cost.validate({"m": (1, 2, 0.5)}))  # agentrel.cost for model "m"

    @agentrel.tool(idempotent=False, system="stripe")
    def refund() -> str:
        agentrel.record_tokens(input=1, model="unlisted")  # agentrel.cost.unpriced_tokens
        raise TimeoutError

    @agentrel.llm(model="m", provider="sim")
    def ask() -> str:
        agentrel.record_tokens(input=5, output=7)
        return "a"

    with agentrel.run("support", cohort="smb") as first:
        for _ in range(2):
            try:
                refund()
            except TimeoutError:
                pass
        ask()
        agentrel.reject("bad")
        ask()
    try:
        with agentrel.run("support", cohort="smb"):
            refund()
    except TimeoutError:
        pass
    from agentrel.instrumentation import current_call

    @agentrel.tool
    def waits() -> None:
        call = current_call()
        assert call is not None
        call.attempt_failed(OSError())
        call.retry_wait(0.1)
        call.next_attempt()

    waits()
    assert first.ref is not None
    agentrel.verdict(first.ref, "wrong", source="thumbs")  # agentrel.verdicts
    T.fallbacks.add(1, {"agentrel.fallback.chain": "c", "agentrel.fallback.from_tier": "a"})


def _series(text: str) -> set[tuple[str, tuple[str, ...]]]:
    out = set()
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.endswith("_created"):
                continue
            # As Prometheus stores them: a label with an empty value is no label.
            out.add((s.name, tuple(sorted(k for k, v in s.labels.items() if k != "le" and v))))
    return out


def test_native_names_equal_opentelemetry_translation() -> None:
    """The same scenario, read by agentrel's endpoint and by opentelemetry-exporter-prometheus
    (OpenTelemetry's own Prometheus translation), gives identical series and label names."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    ref_registry = CollectorRegistry()
    ref = PrometheusMetricReader(registry=ref_registry)
    ours = InMemoryMetricReader()
    mp = MeterProvider(
        metric_readers=[ref, ours], resource=Resource.create({"service.name": "parity"})
    )
    T.inject(TracerProvider(), mp)
    try:
        _scenario()
        registry = CollectorRegistry()
        registry.register(OpenTelemetryCollector(ours))
        native = _series(generate_latest(registry).decode())
        reference = _series(generate_latest(ref_registry).decode())
    finally:
        T.uninject()
        mp.shutdown()
    assert native == reference
    [info] = [labels for name, labels in native if name == "target_info"]
    assert "service_name" in info
    names = {n for n, _ in native}
    for m in METRICS:  # the scenario touches every instrument of the contract
        assert m.prometheus_name + ("" if m.kind == "counter" else "_count") in names, m.name


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        ("agentrel.run.retry_depth", "{retry}", "histogram", "agentrel_run_retry_depth"),
        ("agentrel.run.recovery_time", "s", "histogram", "agentrel_run_recovery_time_seconds"),
        ("agentrel.tool.failures", "{failure}", "counter", "agentrel_tool_failures_total"),
        ("agentrel.run.token_amplification", "1", "histogram", "agentrel_run_token_amplification"),
        ("http.server.request.duration", "s", "histogram", "http_server_request_duration_seconds"),
        ("x.bytes", "By", "counter", "x_bytes_total"),
    ],
)
def test_name_translation(name: str, unit: str, kind: str, expected: str) -> None:
    """Dots become underscores, s becomes _seconds, {annotations} vanish, counters get _total."""
    assert prometheus_metric_name(name, unit, kind) == expected


def test_endpoint_serves_openmetrics_with_exemplars() -> None:
    """Over HTTP on 127.0.0.1, histogram buckets carry the trace id of a run that landed there."""
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    tp = TracerProvider()
    T.inject(tp, mp)
    server = MetricsServer(registry_for(reader), "127.0.0.1", 0)
    try:
        with agentrel.run("ex") as run:
            pass
        trace_id = format(run._span.get_span_context().trace_id, "032x")  # type: ignore[union-attr]
        req = urllib.request.Request(
            server.url, headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read().decode()
            ctype = resp.headers["Content-Type"]
        assert server.url.startswith("http://127.0.0.1:")
    finally:
        server.shutdown()
        T.uninject()
        mp.shutdown()
    assert ctype.startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")
    line = next(
        ln
        for ln in body.splitlines()
        if ln.startswith("agentrel_run_retry_depth_bucket") and 'le="0.0"' in ln
    )
    assert re.search(rf'# {{span_id="[0-9a-f]{{16}}",trace_id="{trace_id}"}} 0', line), line


def test_name_filter_serves_the_families_asked_for() -> None:
    """``/metrics?name[]=...`` (prometheus_client's filter) serves exactly the series asked for,
    though agentrel's collector learns its names only at scrape time."""
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    T.inject(TracerProvider(), mp)
    server = MetricsServer(registry_for(reader), "127.0.0.1", 0)
    try:
        with agentrel.run("flt"):
            pass
        url = server.url + "?name[]=agentrel_run_retry_depth_count&name[]=agentrel_run_attempts_sum"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = resp.read().decode()
    finally:
        server.shutdown()
        T.uninject()
        mp.shutdown()
    samples = [ln.split("{")[0] for ln in body.splitlines() if ln and not ln.startswith("#")]
    assert sorted(samples) == ["agentrel_run_attempts_sum", "agentrel_run_retry_depth_count"]


def test_openmetrics_is_parseable_and_typed() -> None:
    """The OpenMetrics exposition declares the right type for every contract metric."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse

    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    T.inject(TracerProvider(), mp)
    try:
        _scenario()
        registry = CollectorRegistry()
        registry.register(OpenTelemetryCollector(reader))
        text = generate_openmetrics(registry).decode()
    finally:
        T.uninject()
        mp.shutdown()
    types = {f.name: f.type for f in om_parse(text)}
    for m in METRICS:
        family = m.prometheus_name.removesuffix("_total")
        if family in types:
            assert types[family] == m.kind, m.name
    assert types["agentrel_run_retry_depth"] == "histogram"
    assert types["agentrel_tool_failures"] == "counter"


def test_every_reader_sees_the_exemplars() -> None:
    """The SDK hands an exemplar out once per collection; the endpoint remembers the latest
    per bucket, so a second scraper (an HA Prometheus pair, the demo's own readout) sees it
    too, and a newer run replaces it."""
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    T.inject(TracerProvider(), mp)
    registry = registry_for(reader)

    def exemplar_trace_ids() -> list[str]:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as om

        text = generate_openmetrics(registry).decode()
        return [
            smp.exemplar.labels["trace_id"]
            for fam in om(text)
            for smp in fam.samples
            if smp.name == "agentrel_run_retry_depth_bucket"
            and smp.labels["le"] == "0.0"
            and smp.exemplar is not None
        ]

    try:
        with agentrel.run("ex") as first:
            pass
        want = format(first._span.get_span_context().trace_id, "032x")  # type: ignore[union-attr]
        assert exemplar_trace_ids() == [want]  # scraper A
        assert exemplar_trace_ids() == [want]  # scraper B: still there
        with agentrel.run("ex") as second:
            pass
        newer = format(second._span.get_span_context().trace_id, "032x")  # type: ignore[union-attr]
        assert exemplar_trace_ids() == [newer]
    finally:
        T.uninject()
        mp.shutdown()
