"""The OTLP exporters ``configure()`` creates (part of the configuration, the one place that
touches the OpenTelemetry SDK): the protocol and endpoint, the histogram aggregation, and an
exporter that exports only from the process that created it (``os.fork()``)."""

from __future__ import annotations

import os
from typing import Any

#: ``configure(otlp_histograms=...)``: how histograms are aggregated on the OTLP path
OTLP_HISTOGRAMS = ("explicit", "exponential")


def histogram_aggregation(histograms: str | None) -> dict[type, Any] | None:
    """The OTLP metric exporter's ``preferred_aggregation`` for ``otlp_histograms``.

    ``None``: the exporter's own default, which honours
    ``OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION``. ``"explicit"``: the
    catalogue's bucket boundaries (the instruments' advisory), whatever that variable says.
    ``"exponential"``: base-2 exponential histograms (Prometheus native histograms, once
    received through an OTLP endpoint)."""
    if histograms is None:
        return None
    from opentelemetry.sdk.metrics import Histogram
    from opentelemetry.sdk.metrics.view import (
        ExplicitBucketHistogramAggregation,
        ExponentialBucketHistogramAggregation,
    )

    if histograms == "exponential":
        return {Histogram: ExponentialBucketHistogramAggregation()}
    return {Histogram: ExplicitBucketHistogramAggregation()}  # boundaries=None: the advisory


def exporters(endpoint: str | None, histograms: str | None = None) -> tuple[Any, Any]:
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf").strip()
    kw: dict[str, Any] = {}
    aggregation = histogram_aggregation(histograms)
    if aggregation is not None:
        kw["preferred_aggregation"] = aggregation
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        if endpoint is None:
            return OTLPSpanExporter(), OTLPMetricExporter(**kw)
        return OTLPSpanExporter(endpoint=endpoint), OTLPMetricExporter(endpoint=endpoint, **kw)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HTTPMetricExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HTTPSpanExporter,
    )

    if endpoint is None:  # the exporters read OTEL_EXPORTER_OTLP_* themselves
        return HTTPSpanExporter(), HTTPMetricExporter(**kw)
    base = endpoint.rstrip("/")
    return HTTPSpanExporter(endpoint=base + "/v1/traces"), HTTPMetricExporter(
        endpoint=base + "/v1/metrics", **kw
    )


def this_process_only(inner: Any) -> Any:
    """A metric exporter that exports only from the process that created it.

    After ``os.fork()`` the SDK restarts the parent's periodic reader in the child; exporting
    the parent's cumulative points from every child would count them once per worker. The
    child exports through a provider of its own instead (``_after_fork_in_child``)."""
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult

    class ThisProcessOnly(MetricExporter):
        def __init__(self) -> None:
            super().__init__(
                preferred_temporality=getattr(inner, "_preferred_temporality", None),
                preferred_aggregation=getattr(inner, "_preferred_aggregation", None),
            )
            self.inner = inner
            self.pid = os.getpid()

        def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
            if os.getpid() != self.pid:
                return MetricExportResult.SUCCESS
            return inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            if os.getpid() != self.pid:
                return True
            return bool(inner.force_flush(timeout_millis=timeout_millis))

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            if os.getpid() == self.pid:
                inner.shutdown(timeout_millis=timeout_millis, **kwargs)

    return ThisProcessOnly()
