"""A small OTLP/HTTP receiver for tests: what agentrel pushes, decoded with opentelemetry-proto.

``OtlpSink()`` listens on 127.0.0.1 (a free port) for ``POST /v1/metrics`` and
``POST /v1/traces`` (protobuf, gzip or not), keeps every decoded request and its headers, and
answers as a collector does. ``mode="blackhole"`` accepts the connection and never answers
(a collector that hangs); ``refusing_endpoint()`` names a port nobody listens on. ``close()``
stops the server thread and closes every socket it holds.
"""

from __future__ import annotations

import gzip
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


class OtlpSink:
    """An OTLP/HTTP endpoint on loopback that records what it receives."""

    def __init__(self, mode: str = "answer") -> None:
        self.mode = mode
        self.metrics: list[ExportMetricsServiceRequest] = []
        self.traces: list[ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._release = threading.Event()  # lets black-holed handlers go at close()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if sink.mode == "blackhole":
                    sink._release.wait(60)  # never answers (until the test closes the sink)
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/metrics":
                    request: Any = ExportMetricsServiceRequest()
                    reply = ExportMetricsServiceResponse()
                elif self.path == "/v1/traces":
                    request = ExportTraceServiceRequest()
                    reply = ExportTraceServiceResponse()
                else:
                    self.send_error(404)
                    return
                request.ParseFromString(body)
                with sink._lock:
                    sink.headers.append({k.lower(): v for k, v in self.headers.items()})
                    (sink.metrics if self.path == "/v1/metrics" else sink.traces).append(request)
                out = reply.SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> OtlpSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading what arrived ---------------------------------------------------------------
    def latest_metrics(self) -> dict[str, Any]:
        """Metric name -> the last ``Metric`` message received for it (cumulative points)."""
        out: dict[str, Any] = {}
        with self._lock:
            for request in self.metrics:
                for rm in request.resource_metrics:
                    for sm in rm.scope_metrics:
                        for m in sm.metrics:
                            out[m.name] = m
        return out

    def resources(self) -> list[dict[str, Any]]:
        with self._lock:
            requests = [*self.metrics, *self.traces]
        found = []
        for request in requests:
            for group in (*getattr(request, "resource_metrics", ()),
                          *getattr(request, "resource_spans", ())):  # fmt: skip
                found.append({a.key: value(a.value) for a in group.resource.attributes})
        return found

    def spans(self) -> list[Any]:
        with self._lock:
            requests = list(self.traces)
        return [
            s
            for request in requests
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for s in ss.spans
        ]


def value(v: Any) -> Any:
    """The Python value of an OTLP ``AnyValue``."""
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def attrs(kv: Any) -> dict[str, Any]:
    return {a.key: value(a.value) for a in kv}


def points(metric: Any) -> list[Any]:
    kind = metric.WhichOneof("data")
    return list(getattr(metric, kind).data_points)


def refusing_endpoint() -> str:
    """An http:// endpoint on loopback where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
