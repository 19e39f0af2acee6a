"""Helpers for tests, yours and ours: capture agentrel's spans and metrics in memory.

    from agentrel import testing

    def test_search_recovers():
        with testing.capture() as cap:
            answer_question()
        assert cap.histogram("agentrel.run.retry_depth", {"agentrel.outcome": "recovered"}).sum == 1
        assert cap.counter("agentrel.tool.failures", {"agentrel.absorbed": "true"}) == 1

``capture()`` injects private SDK providers into agentrel only (the global OpenTelemetry
providers are not touched), so it works whether or not the application configured any.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from . import _coldstart, _config, _cost, _guard, _instrumentor, _llm, _verdict
from ._runtime import T

__all__ = ["Capture", "HistogramData", "capture", "reset"]


@dataclass
class HistogramData:
    """A histogram's points that matched, added up."""

    count: int = 0
    sum: float = 0.0
    #: upper bound -> number of values in that bucket (not cumulative); ``inf`` for the last.
    buckets: dict[float, int] = field(default_factory=dict)
    #: trace ids (hex) of the exemplars attached to the matching points.
    exemplar_trace_ids: list[str] = field(default_factory=list)


def _matches(attrs: Mapping[str, Any], want: Mapping[str, Any] | None) -> bool:
    return not want or all(attrs.get(k) == v for k, v in want.items())


class Capture:
    """What agentrel recorded while ``capture()`` was open."""

    def __init__(self, span_exporter: Any, reader: Any, tp: Any, mp: Any) -> None:
        self._spans = span_exporter
        self._reader = reader
        self._data: Any = None
        #: The SDK providers the capture records into (for ``configure(tracer_provider=...)``).
        self.tracer_provider = tp
        self.meter_provider = mp

    # -- spans ------------------------------------------------------------------------------
    def spans(self, name: str | None = None) -> list[Any]:
        """Finished spans (``ReadableSpan``), optionally only those called ``name``."""
        spans = list(self._spans.get_finished_spans())
        return [s for s in spans if name is None or s.name == name]

    # -- metrics ----------------------------------------------------------------------------
    def collect(self) -> None:
        """Read the metrics now (done automatically by the accessors below)."""
        self._data = self._reader.get_metrics_data()

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """``(attributes, point)`` for every data point of metric ``name``."""
        self.collect()
        out: list[tuple[dict[str, Any], Any]] = []
        data = self._data
        if data is None:
            return out
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == name:
                        out.extend((dict(p.attributes or {}), p) for p in m.data.data_points)
        return out

    def metric_names(self) -> set[str]:
        self.collect()
        data = self._data
        if data is None:
            return set()
        return {
            m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        }

    def counter(self, name: str, attributes: Mapping[str, Any] | None = None) -> float:
        """Sum of a counter's points whose attributes include ``attributes``."""
        return float(sum(p.value for a, p in self.points(name) if _matches(a, attributes)))

    def histogram(self, name: str, attributes: Mapping[str, Any] | None = None) -> HistogramData:
        """A histogram's matching points added up (count, sum, per-bucket counts)."""
        h = HistogramData()
        for a, p in self.points(name):
            if not _matches(a, attributes):
                continue
            h.count += p.count
            h.sum += p.sum
            bounds = [*list(p.explicit_bounds), float("inf")]
            for b, n in zip(bounds, p.bucket_counts, strict=True):
                if n:
                    h.buckets[b] = h.buckets.get(b, 0) + n
            h.exemplar_trace_ids.extend(
                format(e.trace_id, "032x") for e in (p.exemplars or ()) if e.trace_id
            )
        return h

    def label_sets(self, name: str) -> list[dict[str, Any]]:
        """The attribute sets a metric was recorded with."""
        return [a for a, _ in self.points(name)]


@contextmanager
def capture() -> Iterator[Capture]:
    """Record agentrel's telemetry into memory for the duration of the block."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    previous = T.injected
    T.inject(tp, mp)
    try:
        yield Capture(exporter, reader, tp, mp)
    finally:
        if previous is None:
            T.uninject()
        else:
            T.inject(*previous)
        mp.shutdown()
        tp.shutdown()


def reset() -> None:
    """Reset agentrel's process-wide state: injected providers, cohort allowlist, content
    capture, the once-only log memory, the telemetry error counts, and work left to settle
    later (LLM streams and retry loops abandoned before the reset are never recorded: every
    integration instrumentor's ``_reset_for_tests()`` is called), the price configuration
    (back to the default), the verdict allowlists and which tools have had their first call.
    Global OpenTelemetry providers, once set, cannot be unset and stay as they are."""
    T.cohorts = frozenset()
    _verdict.reset()  # verdict and source allowlists
    T.capture_content = False
    T.redact = None
    if T.injected is not None:
        T.uninject()
    _guard.reset_guards()
    _config.forget()
    _llm.forget_streams()
    _cost.reset()  # default prices
    _coldstart.forget()  # every tool's next call is a first call again
    _instrumentor.reset_for_tests()  # each integration's own reset hook
