"""The native ``/metrics`` endpoint: OpenMetrics with exemplars, OpenTelemetry's names.

An ``InMemoryMetricReader`` (pull, cumulative) is read at scrape time and translated with the
same rules as OpenTelemetry's Prometheus translation (``_catalogue.prometheus_metric_name``),
so the series names equal those of the OTLP path. Histogram buckets carry the exemplar of a
run that landed in them (``trace_id``/``span_id``).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    InMemoryMetricReader,
    Metric,
    Sum,
)
from prometheus_client.core import Metric as PromMetric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Exemplar

from ._catalogue import has_utf8, prometheus_label, prometheus_metric_name, prometheus_unit
from ._guard import OwnMessage, telemetry_error


def _label_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_label_value(x) for x in v) + "]"
    return _utf8(str(v))


def _utf8(s: str) -> str:
    """``s`` with every lone surrogate (not encodable as UTF-8: a name decoded with
    ``surrogateescape``, say) replaced by U+FFFD. One such label value would otherwise make
    every scrape of the endpoint fail with a ``UnicodeEncodeError``."""
    if has_utf8(s):
        return s
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in s)


def _labels(attrs: Any) -> dict[str, str]:
    return {prometheus_label(k): _label_value(v) for k, v in (attrs or {}).items()}


def _exemplar(ex: Any) -> Exemplar | None:
    if not ex.trace_id:
        return None
    return Exemplar(
        {"trace_id": format(ex.trace_id, "032x"), "span_id": format(ex.span_id, "016x")},
        ex.value,
        ex.time_unix_nano / 1e9,
    )


def _fmt_bound(b: float) -> str:
    return repr(float(b))


class OpenTelemetryCollector(Collector):
    """A prometheus_client collector that serves an OpenTelemetry SDK reader's metrics."""

    def __init__(self, reader: InMemoryMetricReader) -> None:
        self._reader = reader
        self._init_state()

    def _init_state(self) -> None:
        # The SDK hands each exemplar out once (its reservoir resets at every collection), but
        # an endpoint has several readers: HA Prometheus pairs, an app's own readout. Keep the
        # latest exemplar per series and bucket, so every scrape sees it. Bounded by the
        # series count times the bucket count.
        self._exemplars: dict[tuple[str, frozenset[tuple[str, str]]], dict[int, Exemplar]] = {}
        self._lock = threading.Lock()

    def use_reader(self, reader: InMemoryMetricReader) -> None:
        """Serve ``reader`` from now on, with fresh state (a forked child's own reader: the
        lock may have been held by a scrape thread that does not exist in the child)."""
        self._reader = reader
        self._init_state()

    def collect(self) -> Iterable[PromMetric]:
        try:
            with self._lock:  # one collection at a time: the exemplar memory is shared
                return list(self._collect())
        except Exception as exc:
            telemetry_error("prometheus.collect", exc)
            return []

    def _collect(self) -> Iterator[PromMetric]:
        data = self._reader.get_metrics_data()
        if data is None:
            return
        families: dict[str, PromMetric] = {}
        for rm in data.resource_metrics:
            if rm.resource.attributes and "target_info" not in families:
                info = families["target_info"] = PromMetric(
                    "target_info", "Target metadata", "gauge"
                )
                info.add_sample("target_info", _labels(rm.resource.attributes), 1.0)
            for sm in rm.scope_metrics:
                scope = {"otel_scope_name": sm.scope.name}
                if sm.scope.version:
                    scope["otel_scope_version"] = sm.scope.version
                if sm.scope.schema_url:
                    scope["otel_scope_schema_url"] = sm.scope.schema_url
                for metric in sm.metrics:
                    self._add(families, metric, scope)
        yield from families.values()

    def _add(self, families: dict[str, PromMetric], metric: Metric, scope: dict[str, str]) -> None:
        d = metric.data
        if isinstance(d, Histogram):
            kind = "histogram"
        elif isinstance(d, Sum) and d.is_monotonic:
            kind = "counter"
        elif isinstance(d, (Sum, Gauge)):
            kind = "gauge"
        else:  # pragma: no cover - exponential histograms are not used by agentrel
            return
        name = prometheus_metric_name(metric.name, metric.unit or "", kind)
        family_name = name[: -len("_total")] if kind == "counter" else name
        fam = families.get(family_name)
        if fam is None:
            unit = prometheus_unit(metric.unit or "")
            if unit and not family_name.endswith("_" + unit):
                unit = ""
            fam = families[family_name] = PromMetric(
                family_name, metric.description or "", kind, unit
            )
        if isinstance(d, Histogram):
            self._add_histogram(fam, name, d, scope)
            return
        for ndp in d.data_points:
            labels = {**_labels(ndp.attributes), **scope}
            ex = None
            if kind == "counter":
                remembered = self._remember(name, labels)
                for raw in ndp.exemplars or ():
                    e = _exemplar(raw)
                    if e is not None:
                        remembered[0] = e
                ex = remembered.get(0)
            fam.add_sample(name, labels, ndp.value, None, ex)

    def _remember(self, name: str, labels: dict[str, str]) -> dict[int, Exemplar]:
        key = (name, frozenset(labels.items()))
        remembered = self._exemplars.get(key)
        if remembered is None:
            remembered = self._exemplars[key] = {}
        return remembered

    def _add_histogram(
        self, fam: PromMetric, name: str, d: Histogram, scope: dict[str, str]
    ) -> None:
        for dp in d.data_points:
            labels = {**_labels(dp.attributes), **scope}
            bounds = list(dp.explicit_bounds)
            exemplars = self._remember(name, labels)
            for raw in dp.exemplars or ():
                e = _exemplar(raw)
                if e is None:
                    continue
                idx = next((i for i, b in enumerate(bounds) if raw.value <= b), len(bounds))
                exemplars[idx] = e
            _histogram_samples(fam, name, labels, dp, bounds, exemplars)


def _histogram_samples(
    fam: PromMetric,
    name: str,
    labels: dict[str, str],
    dp: Any,
    bounds: list[float],
    exemplars: dict[int, Exemplar],
) -> None:
    cumulative = 0
    for i, count in enumerate(dp.bucket_counts):
        cumulative += count
        le = _fmt_bound(bounds[i]) if i < len(bounds) else "+Inf"
        fam.add_sample(name + "_bucket", {**labels, "le": le}, cumulative, None, exemplars.get(i))
    fam.add_sample(name + "_count", labels, dp.count)
    fam.add_sample(name + "_sum", labels, dp.sum)


def registry_for(reader: InMemoryMetricReader) -> CollectorRegistry:
    """A prometheus_client registry that serves ``reader``'s metrics at scrape time."""
    return make_registry(reader)[0]


def make_registry(
    reader: InMemoryMetricReader,
) -> tuple[CollectorRegistry, OpenTelemetryCollector]:
    """``registry_for`` that also returns the collector (to switch readers after a fork)."""
    collector = OpenTelemetryCollector(reader)
    try:  # names known only at scrape time: ``/metrics?name[]=...`` must still find them
        registry = CollectorRegistry(auto_describe=False, support_collectors_without_names=True)
    except TypeError:  # prometheus_client < 0.21: ``name[]`` filters find nothing
        registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry, collector


#: Connections the kernel queues while the serving thread is busy. socketserver's default (5)
#: made the kernel drop the connections of concurrent scrapes (clients then wait for SYN
#: retransmits, seconds, and time out); the kernel caps this at ``net.core.somaxconn``.
LISTEN_BACKLOG = 1024


#: Seconds a connection may go without sending (or reading) a byte before the endpoint closes
#: it: a client that never finishes its request holds a thread until then, not forever.
#: Prometheus's own scrape timeout is 10 s by default.
REQUEST_TIMEOUT = 30.0


class _QuietHandler(WSGIRequestHandler):
    """No access log on the application's stderr; a connection idle for ``REQUEST_TIMEOUT``
    is closed (quietly: wsgiref would print a traceback for it)."""

    timeout = REQUEST_TIMEOUT

    def handle(self) -> None:
        try:
            super().handle()
        except TimeoutError:  # the client went quiet mid-request or stopped reading
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _metrics_app(registry: CollectorRegistry) -> Callable[..., list[bytes]]:
    """prometheus_client's WSGI app, with three differences at the edges of HTTP:

    * an ``Accept`` header it cannot read (``version=garbage``, where its version comparison
      raises) is served as if absent (the text format), not as a 500;
    * ``HEAD`` is answered like ``GET`` without the body (same status, headers and
      ``Content-Length``), not as a 405 that carries a body;
    * anything the app raises is a counted telemetry error (``prometheus.scrape``) and a
      short 500, not a traceback on the application's stderr per scrape.
    """
    from prometheus_client.exposition import choose_encoder, make_wsgi_app

    inner = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        environ = dict(environ)
        try:
            choose_encoder(environ.get("HTTP_ACCEPT") or "")
        except Exception:
            environ.pop("HTTP_ACCEPT", None)
        head = environ.get("REQUEST_METHOD") == "HEAD"
        if head:
            environ["REQUEST_METHOD"] = "GET"
        answer: list[Any] = []
        try:
            body = b"".join(
                inner(environ, lambda status, headers, *_: answer.extend((status, headers)))
            )
        except Exception as exc:
            telemetry_error("prometheus.scrape", exc)
            start_response(
                "500 Internal Server Error", [("Content-Type", "text/plain; charset=utf-8")]
            )
            return [b"agentrel: this scrape failed; see agentrel.telemetry_errors()\n"]
        status, headers = answer
        headers = [
            ("Allow", "OPTIONS,GET,HEAD") if k.lower() == "allow" else (k, v) for k, v in headers
        ]
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [b""] if head else [body]

    return app


def _serve(registry: CollectorRegistry, addr: str, port: int) -> tuple[Any, threading.Thread]:
    """prometheus_client's ``start_http_server`` (a thread per request, daemon threads), with
    a listen backlog that holds concurrent scrapes and :func:`_metrics_app`."""
    from prometheus_client.exposition import ThreadingWSGIServer

    family, _, _, _, sockaddr = socket.getaddrinfo(
        addr, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]

    class Server(ThreadingWSGIServer):
        address_family = family
        request_queue_size = LISTEN_BACKLOG

    server = make_server(
        str(sockaddr[0]), port, _metrics_app(registry), Server, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="agentrel-metrics", daemon=True)
    thread.start()
    return server, thread


class PortsInUse(OwnMessage, OSError):
    """No port of the requested range could be bound. Never raised into the application:
    ``configure()`` counts it in ``telemetry_errors()`` and logs it once, with what to do."""


class MetricsServer:
    """A running ``/metrics`` endpoint; ``shutdown()`` stops it.

    ``count`` > 1 tries ``port``, ``port + 1``, ... ``port + count - 1`` and binds the first
    that is free (one port per worker process on one host); :class:`PortsInUse` if none is.
    """

    def __init__(self, registry: CollectorRegistry, addr: str, port: int, count: int = 1) -> None:
        self.registry = registry
        self.addr = addr
        last_error: OSError | None = None
        for candidate in range(port, port + max(count, 1)):
            try:
                server, self._thread = _serve(registry, addr, candidate)
            except OSError as exc:
                last_error = exc
                continue
            break
        else:
            last = port + max(count, 1) - 1
            ports = f"port {port}" if last == port else f"ports {port}..{last}"
            raise PortsInUse(
                f"agentrel cannot serve /metrics: {addr} {ports} "
                f"{'is' if last == port else 'are all'} unavailable ({last_error}). This process "
                "keeps recording its runs (Configuration.prometheus_registry holds them) but "
                "serves no /metrics endpoint of its own. Several processes on one host (gunicorn "
                f"or uvicorn workers)? Give each its own port: configure(prometheus_port={port}, "
                "prometheus_port_range=N) with N at least the number of processes (one more "
                "with gunicorn --preload) and let Prometheus scrape every port of the range, or "
                "push OTLP; see 'Several workers' in docs/operations.md."
            ) from None
        self._server: Any = server
        self.port: int = server.server_address[1]
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"http://{host}:{self.port}/metrics"

    def shutdown(self) -> None:
        with self._lock:
            if self._server is None:
                return
            server, self._server = self._server, None
        server.shutdown()
        server.server_close()
        self._thread.join(timeout=5)

    def abandon(self) -> None:
        """In a forked child: close this process's copy of the parent's listening socket.
        The serving thread exists only in the parent, which keeps serving; ``shutdown()``
        would wait for a thread that is not there."""
        server, self._server = self._server, None
        if server is not None:
            server.server_close()
