"""``agentrel.configure()``: the only place that touches the OpenTelemetry SDK.

It sets up providers only where the application has not: a tracer or meter provider that is
already set is used as it is and never replaced.
"""

from __future__ import annotations

import atexit
import ipaddress
import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import metrics, trace

from ._runtime import T

logger = logging.getLogger("agentrel")

_lock = threading.Lock()
_current: Configuration | None = None
#: Seconds the interpreter waits at exit for agentrel's providers to flush.
EXIT_TIMEOUT = 5.0


class Configuration:
    """What ``configure()`` set up. ``shutdown()`` flushes and stops what agentrel started."""

    def __init__(self) -> None:
        self.tracer_provider: Any = None
        self.meter_provider: Any = None
        self.owns_tracer_provider = False
        self.owns_meter_provider = False
        self.metrics_server: Any = None
        #: the prometheus_client registry serving agentrel's metrics (``prometheus=True`` or
        #: a ``prometheus_port``): mount it in your own web app, e.g.
        #: ``prometheus_client.make_asgi_app(registry=cfg.prometheus_registry)``.
        self.prometheus_registry: Any = None
        self.otlp_endpoint: str | None = None
        self._shutdown = False

    @property
    def prometheus_url(self) -> str | None:
        """``http://addr:port/metrics`` of the native endpoint, if one was started."""
        return self.metrics_server.url if self.metrics_server is not None else None

    @property
    def prometheus_port(self) -> int | None:
        """The port the endpoint listens on (useful with ``prometheus_port=0``)."""
        return self.metrics_server.port if self.metrics_server is not None else None

    def force_flush(self) -> None:
        """Export pending spans and metrics now (OTLP)."""
        for p in (self.tracer_provider, self.meter_provider):
            if p is not None and hasattr(p, "force_flush"):
                p.force_flush()

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Stop the endpoint and shut down the providers agentrel created, flushing what they
        hold. Waits at most ``timeout`` seconds (an unreachable OTLP collector would otherwise
        hold the process for the exporters' own retry budget); returns whether everything
        finished in time. Idempotent."""
        global _current
        if self._shutdown:
            return True
        self._shutdown = True
        with _lock:
            if _current is self:
                _current = None
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
        providers = [
            p
            for p, owned in (
                (self.meter_provider, self.owns_meter_provider),
                (self.tracer_provider, self.owns_tracer_provider),
            )
            if owned and p is not None
        ]
        if not providers:
            return True

        def stop() -> None:
            for p in providers:
                try:
                    p.shutdown()
                except Exception as exc:
                    logger.warning("agentrel: shutting down %r failed: %s", p, exc)

        worker = threading.Thread(target=stop, name="agentrel-shutdown", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            logger.warning(
                "agentrel: exporters did not finish within %.1f s (is the OTLP collector "
                "reachable?); continuing without waiting",
                timeout,
            )
            return False
        return True

    def __enter__(self) -> Configuration:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def _validate(
    service_name: object,
    prometheus_port: object,
    prometheus_addr: object,
    otlp_endpoint: object,
    cohorts: object,
    capture_content: object,
    redact: object,
    tracer_provider: object,
    meter_provider: object,
) -> frozenset[str]:
    if service_name is not None and (not isinstance(service_name, str) or not service_name):
        raise TypeError(f"service_name must be a non-empty str, got {service_name!r}")
    if prometheus_port is not None:
        if isinstance(prometheus_port, bool) or not isinstance(prometheus_port, int):
            raise TypeError(f"prometheus_port must be an int, got {prometheus_port!r}")
        if not 0 <= prometheus_port <= 65535:
            raise ValueError(f"prometheus_port must be in 0..65535, got {prometheus_port}")
    if not isinstance(prometheus_addr, str) or not prometheus_addr:
        raise TypeError(f"prometheus_addr must be a non-empty str, got {prometheus_addr!r}")
    if prometheus_addr != "localhost":
        try:
            ipaddress.ip_address(prometheus_addr)
        except ValueError:
            raise ValueError(
                f"prometheus_addr must be an IP address or 'localhost', got {prometheus_addr!r}"
            ) from None
    if otlp_endpoint is not None and (
        not isinstance(otlp_endpoint, str) or not otlp_endpoint.startswith(("http://", "https://"))
    ):
        raise ValueError(f"otlp_endpoint must be an http(s):// URL, got {otlp_endpoint!r}")
    if isinstance(cohorts, (str, bytes)) or not isinstance(cohorts, Iterable):
        raise TypeError(f"cohorts must be an iterable of str, got {cohorts!r}")
    allowed = []
    for c in cohorts:
        if not isinstance(c, str) or not c:
            raise TypeError(f"every cohort must be a non-empty str, got {c!r}")
        allowed.append(c)
    if not isinstance(capture_content, bool):
        raise TypeError(f"capture_content must be True or False, got {capture_content!r}")
    if redact is not None and not callable(redact):
        raise TypeError("redact must be callable")
    if tracer_provider is not None and not hasattr(tracer_provider, "get_tracer"):
        raise TypeError("tracer_provider must be an OpenTelemetry TracerProvider")
    if meter_provider is not None and not hasattr(meter_provider, "get_meter"):
        raise TypeError("meter_provider must be an OpenTelemetry MeterProvider")
    return frozenset(allowed)


def _is_set(provider: object) -> bool:
    return type(provider).__name__ not in ("ProxyTracerProvider", "_ProxyMeterProvider")


def _otlp_exporters(endpoint: str | None) -> tuple[Any, Any]:
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf").strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        if endpoint is None:
            return OTLPSpanExporter(), OTLPMetricExporter()
        return OTLPSpanExporter(endpoint=endpoint), OTLPMetricExporter(endpoint=endpoint)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HTTPMetricExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HTTPSpanExporter,
    )

    if endpoint is None:  # the exporters read OTEL_EXPORTER_OTLP_* themselves
        return HTTPSpanExporter(), HTTPMetricExporter()
    base = endpoint.rstrip("/")
    return HTTPSpanExporter(endpoint=base + "/v1/traces"), HTTPMetricExporter(
        endpoint=base + "/v1/metrics"
    )


def configure(
    *,
    service_name: str | None = None,
    prometheus_port: int | None = None,
    prometheus_addr: str = "127.0.0.1",
    prometheus: bool = False,
    otlp_endpoint: str | None = None,
    cohorts: Iterable[str] = (),
    capture_content: bool = False,
    redact: Callable[[str], str] | None = None,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    prices: Any = None,
) -> Configuration:
    """Set up OpenTelemetry for agentrel where the application has not, and return a handle.

    * ``prometheus_port``: serve ``/metrics`` (OpenMetrics with exemplars) on
      ``prometheus_addr`` (127.0.0.1 unless you choose otherwise; 0 picks a free port).
    * ``prometheus=True``: collect for Prometheus without a listener of agentrel's own; serve
      ``Configuration.prometheus_registry`` from your web app instead.
    * ``otlp_endpoint``: push spans and metrics over OTLP; ``OTEL_EXPORTER_OTLP_ENDPOINT`` (and
      ``OTEL_EXPORTER_OTLP_PROTOCOL``, default ``http/protobuf``) are honoured when it is None.
    * ``service_name``: the resource's ``service.name`` (else ``OTEL_SERVICE_NAME``).
    * ``cohorts``: the allowlist of cohort labels; any other cohort is recorded as ``other``.
    * ``capture_content``: put exception messages and (for instrumented clients) prompt and
      completion text on spans, passed through ``redact`` first. Off by default.
    * ``tracer_provider`` / ``meter_provider``: use these instead of the global providers.
    * ``prices``: what tokens cost, for ``agentrel.cost``, ``Run.cost_usd`` and the run span.
      ``None`` (default): genai-prices' bundled table when ``agentrel[cost]`` is installed
      (never updated over the network), else no pricing. A mapping ``{model: (input,
      output, cached_input)}`` in US dollars per million tokens overrides it for those
      models. ``False``: no pricing. A model with no known price is counted in
      ``agentrel.cost.unpriced_tokens``, never guessed.

    A provider the application already set globally is used, never replaced. Bad arguments
    raise ``TypeError``/``ValueError`` here. Calling ``configure()`` again while a
    configuration is live logs a warning and returns that configuration unchanged.
    """
    global _current
    from . import _cost  # issue 13

    prices_cfg = _cost.validate(prices)
    if not isinstance(prometheus, bool):
        raise TypeError(f"prometheus must be True or False, got {prometheus!r}")
    allowed = _validate(
        service_name,
        prometheus_port,
        prometheus_addr,
        otlp_endpoint,
        cohorts,
        capture_content,
        redact,
        tracer_provider,
        meter_provider,
    )
    with _lock:
        if _current is not None:
            logger.warning(
                "agentrel.configure() called again while a configuration is live: the live "
                "one is kept unchanged (call .shutdown() on it first to reconfigure)"
            )
            return _current
        T.cohorts = allowed
        T.capture_content = capture_content
        T.redact = redact
        _cost.set_prices(*prices_cfg)  # issue 13
        cfg = Configuration()
        if tracer_provider is not None or meter_provider is not None:
            if (prometheus_port is not None or prometheus) and meter_provider is not None:
                raise ValueError(
                    "prometheus_port needs a MeterProvider that agentrel creates; with your own "
                    "meter_provider, add a Prometheus reader to it yourself"
                )
            T.inject(tracer_provider, meter_provider)
        endpoint = otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None
        cfg.otlp_endpoint = endpoint
        _setup(
            cfg, service_name, prometheus_port, prometheus_addr, prometheus, otlp_endpoint, endpoint
        )
        if tracer_provider is not None:
            cfg.tracer_provider = tracer_provider
        if meter_provider is not None:
            cfg.meter_provider = meter_provider
        if tracer_provider is None and meter_provider is None:
            T.refresh()
        _current = cfg
        if cfg.owns_meter_provider or cfg.owns_tracer_provider:
            # One bounded flush at exit instead of the SDK's own, which waits for the
            # exporters' whole retry budget when a collector is unreachable.
            atexit.register(cfg.shutdown, EXIT_TIMEOUT)
        return cfg


def _setup(
    cfg: Configuration,
    service_name: str | None,
    prometheus_port: int | None,
    prometheus_addr: str,
    prometheus: bool,
    otlp_arg: str | None,
    endpoint: str | None,
) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from ._prometheus import MetricsServer, registry_for

    resource = Resource.create({"service.name": service_name} if service_name else {})
    span_exporter = metric_exporter = None
    if endpoint:
        span_exporter, metric_exporter = _otlp_exporters(otlp_arg)

    current_mp = metrics.get_meter_provider()
    wants_prometheus = prometheus or prometheus_port is not None
    if _is_set(current_mp):
        if wants_prometheus:
            raise ValueError(
                "a MeterProvider is already set by the application and agentrel never replaces "
                "it: add a Prometheus reader to your provider instead of prometheus_port"
            )
        cfg.meter_provider = current_mp
        if metric_exporter is not None:
            logger.info("agentrel: MeterProvider already set; OTLP metrics are its business")
    else:
        readers: list[Any] = []
        reader = None
        if wants_prometheus:
            reader = InMemoryMetricReader()
            readers.append(reader)
        if metric_exporter is not None:
            readers.append(PeriodicExportingMetricReader(metric_exporter))
        if readers:
            mp = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
            if reader is not None:
                cfg.prometheus_registry = registry_for(reader)
                if prometheus_port is not None:
                    cfg.metrics_server = MetricsServer(
                        cfg.prometheus_registry, prometheus_addr, prometheus_port
                    )
            metrics.set_meter_provider(mp)
            cfg.meter_provider = mp
            cfg.owns_meter_provider = True

    current_tp = trace.get_tracer_provider()
    if _is_set(current_tp):
        cfg.tracer_provider = current_tp
    else:
        tp = TracerProvider(resource=resource, shutdown_on_exit=False)
        if span_exporter is not None:
            tp.add_span_processor(BatchSpanProcessor(span_exporter))
        trace.set_tracer_provider(tp)
        cfg.tracer_provider = tp
        cfg.owns_tracer_provider = True


def current_configuration() -> Configuration | None:
    """The live configuration, if ``configure()`` was called and not shut down."""
    return _current


def _forget() -> None:
    """For tests: forget the live configuration (the global providers stay as they are)."""
    global _current
    with _lock:
        _current = None
