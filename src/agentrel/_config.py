"""``agentrel.configure()``: the only place that touches the OpenTelemetry SDK.

It sets up providers only where the application has not: a tracer or meter provider that is
already set is used as it is and never replaced. After ``shutdown()`` the providers agentrel
created are retired (``_runtime``); a later ``configure()`` creates new ones, and since
OpenTelemetry's global providers can be set only once, agentrel records into them directly
(they are injected, not set globally; see docs/api.md, "configure").
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import metrics, trace

from . import _catalogue as cat
from . import _verdict
from ._guard import logger, telemetry_error
from ._otlp import OTLP_HISTOGRAMS, exporters, this_process_only
from ._runtime import T, is_set

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
        #: agentrel created these but could not set them globally (a provider of a configuration
        #: shut down before holds the global slot): they are injected into ``_runtime.T``
        self._private: tuple[Any, Any] = (None, None)
        self._injected = False
        # -- per process (multi-worker): what a forked child rebuilds, see _after_fork_in_child
        self._collector: Any = None
        self._rebuild: dict[str, Any] | None = None

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
        for p in providers:  # never bound again: a later configure() makes new ones
            T.retire(p)
        if providers and (self._injected or T._injected is None):
            T.uninject()  # back to the global providers that are still usable, or to no-ops
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


def _validate_port_range(prometheus_port: int | None, prometheus_port_range: object) -> None:
    if isinstance(prometheus_port_range, bool) or not isinstance(prometheus_port_range, int):
        raise TypeError(f"prometheus_port_range must be an int, got {prometheus_port_range!r}")
    if prometheus_port_range < 1:
        raise ValueError(f"prometheus_port_range must be >= 1, got {prometheus_port_range}")
    if prometheus_port_range > 1:
        if not prometheus_port:
            raise ValueError(
                "prometheus_port_range needs a fixed first port: prometheus_port=9464 (say)"
            )
        if prometheus_port + prometheus_port_range - 1 > 65535:
            raise ValueError(
                f"prometheus_port_range={prometheus_port_range} from port {prometheus_port} "
                "goes past 65535"
            )


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
        if not cat.has_utf8(c):  # a label value: OTLP could not encode it
            raise ValueError(f"every cohort must be encodable as UTF-8, got {c!r}")
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


def _resource(service_name: str | None) -> Any:
    """The resource agentrel's providers carry, with a ``service.instance.id`` per process
    (OTLP push from several workers must not merge them): the SDK's own detector sets one in
    recent SDKs, ``OTEL_RESOURCE_ATTRIBUTES`` may; otherwise a fresh UUID is added here."""
    from opentelemetry.sdk.resources import Resource

    attrs: dict[str, Any] = {"service.name": service_name} if service_name else {}
    resource = Resource.create(attrs)
    if "service.instance.id" not in resource.attributes:
        resource = resource.merge(Resource({"service.instance.id": str(uuid.uuid4())}))
    return resource


def configure(
    *,
    service_name: str | None = None,
    prometheus_port: int | None = None,
    prometheus_port_range: int = 1,
    prometheus_addr: str = "127.0.0.1",
    prometheus: bool = False,
    otlp_endpoint: str | None = None,
    cohorts: Iterable[str] = (),
    capture_content: bool = False,
    redact: Callable[[str], str] | None = None,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    prices: Any = None,
    otlp_histograms: str | None = None,
    verdicts: Iterable[str] = (),
    verdict_sources: Iterable[str] = (),
    verdict_agents: Iterable[str] = (),
) -> Configuration:
    """Set up OpenTelemetry for agentrel where the application has not, and return a handle.

    * ``prometheus_port``: serve ``/metrics`` (OpenMetrics with exemplars) on
      ``prometheus_addr`` (127.0.0.1 unless you choose otherwise; 0 picks a free port).
    * ``prometheus_port_range``: several worker processes on one host: each binds the first
      free port of ``prometheus_port .. prometheus_port + prometheus_port_range - 1``; scrape
      them all. A port that cannot be bound is never an exception: it is logged once, counted
      in ``telemetry_errors()["prometheus.endpoint"]``, and the process records without an
      endpoint. Safe across ``os.fork()`` (gunicorn ``--preload``): a forked child starts from
      zero with an endpoint and a ``service.instance.id`` of its own.
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
      ``None`` (default): genai-prices' bundled table when ``agentrel-otel[cost]`` is installed
      (never updated over the network), else no pricing. A mapping ``{model: (input,
      output, cached_input)}`` in US dollars per million tokens overrides it for those
      models. ``False``: no pricing. A model with no known price is counted in
      ``agentrel.cost.unpriced_tokens``, never guessed.
    * ``otlp_histograms``: ``"exponential"`` pushes every histogram over OTLP as a base-2
      exponential histogram (a Prometheus native histogram once received through an OTLP
      endpoint: one series per label set instead of one per bucket); ``"explicit"`` pushes
      the catalogue's buckets. ``None`` (default): the exporter's default, which honours
      ``OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION`` (explicit buckets unless it
      says ``base2_exponential_bucket_histogram``). The ``/metrics`` endpoint always serves
      the catalogue's buckets.
    * ``verdicts`` / ``verdict_sources``: the allowlists of ``agentrel.verdict``'s labels, as
      ``cohorts`` is for cohorts: ``correct`` and ``wrong`` are always allowed, any other
      verdict or source is recorded as ``other`` (no source: ``none``).
    * ``verdict_agents``: the agent names a verdict's ref may carry into the ``agentrel.verdicts``
      label when the ref was made in another process (a ref can be edited by whoever holds
      it); a ref made in this process keeps its agent name; any other name is ``other``.

    A provider the application already set globally is used, never replaced. Bad arguments
    raise ``TypeError``/``ValueError`` here. Calling ``configure()`` again while a
    configuration is live logs a warning and returns that configuration unchanged; after its
    ``shutdown()``, ``configure()`` makes a new, working configuration.
    """
    global _current
    from . import _cost  # prices (agentrel.cost)

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
    _validate_port_range(prometheus_port, prometheus_port_range)
    verdict_allowlists = (
        _verdict.validate_allowlist("verdicts", verdicts),
        _verdict.validate_allowlist("verdict_sources", verdict_sources),
        _verdict.validate_allowlist("verdict_agents", verdict_agents),
    )
    if otlp_histograms is not None and otlp_histograms not in OTLP_HISTOGRAMS:
        raise ValueError(
            f"otlp_histograms must be one of {OTLP_HISTOGRAMS} or None, got {otlp_histograms!r}"
        )
    with _lock:
        if _current is not None:
            logger.warning(
                "agentrel.configure() called again while a configuration is live: the live "
                "one is kept unchanged (call .shutdown() on it first to reconfigure)"
            )
            return _current
        T.cohorts = allowed
        _verdict.configure_allowlists(*verdict_allowlists)
        T.capture_content = capture_content
        T.redact = redact
        _cost.set_prices(*prices_cfg)
        _cost.PRICING.say_if_missing()
        cfg = Configuration()
        if (prometheus_port is not None or prometheus) and meter_provider is not None:
            raise ValueError(
                "prometheus_port needs a MeterProvider that agentrel creates; with your own "
                "meter_provider, add a Prometheus reader to it yourself"
            )
        endpoint = otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None
        cfg.otlp_endpoint = endpoint
        cfg._rebuild = {
            "service_name": service_name,
            "port": prometheus_port,
            "count": prometheus_port_range,
            "addr": prometheus_addr,
            "otlp_arg": otlp_endpoint,
            "histograms": otlp_histograms,
        }
        _setup(
            cfg,
            service_name,
            prometheus_port,
            prometheus_addr,
            prometheus,
            otlp_endpoint,
            endpoint,
            meters=meter_provider is None,
            traces=tracer_provider is None,
        )
        if tracer_provider is not None:  # the application's: agentrel never shuts it down
            cfg.tracer_provider = tracer_provider
        if meter_provider is not None:
            cfg.meter_provider = meter_provider
        inject_tp = tracer_provider if tracer_provider is not None else cfg._private[0]
        inject_mp = meter_provider if meter_provider is not None else cfg._private[1]
        if inject_tp is not None or inject_mp is not None:
            T.inject(inject_tp, inject_mp)
            cfg._injected = True
        else:
            T.refresh()
        _current = cfg
        _register_fork_hook()
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
    *,
    meters: bool = True,
    traces: bool = True,
) -> None:
    """Find or create the global providers; ``meters``/``traces`` False: the application
    passed its own provider for that signal, so agentrel neither creates nor sets one."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from ._prometheus import make_registry

    resource = _resource(service_name)
    if cfg._rebuild is not None:
        cfg._rebuild["resource"] = resource
    span_exporter = metric_exporter = None
    if endpoint:
        histograms = (cfg._rebuild or {}).get("histograms")
        span_exporter, metric_exporter = exporters(otlp_arg, histograms)

    current_mp = metrics.get_meter_provider()
    wants_prometheus = prometheus or prometheus_port is not None
    if not meters:
        pass
    elif is_set(current_mp):
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
            readers.append(PeriodicExportingMetricReader(this_process_only(metric_exporter)))
        if readers:
            mp = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
            if reader is not None:
                cfg.prometheus_registry, cfg._collector = make_registry(reader)
                if prometheus_port is not None:
                    _start_endpoint(cfg)
            if T.is_retired(current_mp):  # the global slot is taken for good: inject
                cfg._private = (cfg._private[0], mp)
            else:
                metrics.set_meter_provider(mp)
            cfg.meter_provider = mp
            cfg.owns_meter_provider = True

    current_tp = trace.get_tracer_provider()
    if not traces:
        pass
    elif is_set(current_tp):
        cfg.tracer_provider = current_tp
    else:
        tp = TracerProvider(resource=resource, shutdown_on_exit=False)
        if span_exporter is not None:
            tp.add_span_processor(BatchSpanProcessor(span_exporter))
        if T.is_retired(current_tp):  # the global slot is taken for good: inject
            cfg._private = (tp, cfg._private[1])
        else:
            trace.set_tracer_provider(tp)
        cfg.tracer_provider = tp
        cfg.owns_tracer_provider = True


# -- several workers: the endpoint's port range, and os.fork() -----------------------------------
def _start_endpoint(cfg: Configuration) -> None:
    """Bind the first free port of the configured range; a failure is reported, not raised."""
    from ._prometheus import MetricsServer

    r = cfg._rebuild or {}
    try:
        cfg.metrics_server = MetricsServer(
            cfg.prometheus_registry, r["addr"], r["port"], r.get("count", 1)
        )
    except Exception as exc:  # PortsInUse, or any other bind failure: never into the host
        cfg.metrics_server = None
        telemetry_error("prometheus.endpoint", exc)


def _after_fork_in_child() -> None:
    """``os.register_at_fork(after_in_child=...)``: make the live configuration this process's.

    The child inherits the parent's meter provider (holding the parent's values so far), a copy
    of its listening socket (served by a thread that exists only in the parent) and its
    ``service.instance.id``. It gets a fresh meter provider with the same readers, a new
    instance id and an endpoint from the port range; agentrel's hot-path instruments are
    rebound to it (injected into ``_runtime.T``: the global meter provider cannot be set
    twice). The parent is untouched and keeps serving its own.
    """
    global _lock
    _lock = threading.Lock()  # a thread of the parent may have held it at fork time
    cfg = _current
    if cfg is None or cfg._shutdown or not cfg.owns_meter_provider:
        return
    try:
        if cfg.metrics_server is not None:
            server, cfg.metrics_server = cfg.metrics_server, None
            server.abandon()
        mp = _child_meter_provider(cfg)
        cfg.meter_provider = mp
        T.inject(cfg.tracer_provider, mp)
        cfg._injected = True
        if cfg._rebuild is not None and cfg._rebuild.get("port") is not None:
            _start_endpoint(cfg)
    except Exception as exc:
        telemetry_error("configure.after_fork", exc)


def _child_meter_provider(cfg: Configuration) -> Any:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader

    r = cfg._rebuild or {}
    readers: list[Any] = []
    if cfg._collector is not None:
        reader = InMemoryMetricReader()
        cfg._collector.use_reader(reader)
        readers.append(reader)
    if cfg.otlp_endpoint:
        exporter = exporters(r.get("otlp_arg"), r.get("histograms"))[1]
        readers.append(PeriodicExportingMetricReader(this_process_only(exporter)))
    # The parent's resource with a new instance id (no resource detectors: they run in a
    # thread pool, which is not to be used inside an at-fork hook).
    from opentelemetry.sdk.resources import Resource

    resource = r["resource"].merge(Resource({"service.instance.id": str(uuid.uuid4())}))
    return MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)


_fork_hook_registered = False


def _register_fork_hook() -> None:
    """Register ``_after_fork_in_child`` once, at the end of the first ``configure()``: hooks
    run in registration order, so the SDK's and ``concurrent.futures``' own (imported by
    ``configure()``) have re-initialised their locks when ours runs."""
    global _fork_hook_registered
    if not _fork_hook_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook_registered = True


def current_configuration() -> Configuration | None:
    """The live configuration, if ``configure()`` was called and not shut down."""
    return _current


def forget() -> None:
    """For tests: forget the live configuration (the global providers stay as they are)."""
    global _current
    with _lock:
        _current = None
