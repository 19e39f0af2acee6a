"""configure(): validation at configuration time, never replacing providers, the endpoint,
OTLP. Anything that sets global providers runs in a fresh interpreter."""

from __future__ import annotations

from typing import Any

import pytest

import agentrel
from pyproc import run_py

#: An OTLP "collector" on 127.0.0.1 that accepts requests and never answers in time.
STALLED_COLLECTOR = """
        import threading, time, agentrel
        from http.server import BaseHTTPRequestHandler, HTTPServer

        class Stall(BaseHTTPRequestHandler):
            def do_POST(self):
                time.sleep(120)
            def log_message(self, *a):
                pass

        srv = HTTPServer(("127.0.0.1", 0), Stall)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
"""


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param({"prometheus_port": 70000}, ValueError, "0..65535", id="port-range"),
        pytest.param({"prometheus_port": -1}, ValueError, "0..65535", id="port-negative"),
        pytest.param({"prometheus_port": "9464"}, TypeError, "int", id="port-str"),
        pytest.param({"prometheus_port": True}, TypeError, "int", id="port-bool"),
        pytest.param({"prometheus_addr": "my host"}, ValueError, "IP address", id="addr"),
        pytest.param({"otlp_endpoint": "collector:4318"}, ValueError, "http", id="otlp"),
        pytest.param({"cohorts": "enterprise"}, TypeError, "iterable of str", id="cohorts-str"),
        pytest.param({"cohorts": ["a", 3]}, TypeError, "cohort", id="cohorts-int"),
        pytest.param({"service_name": ""}, TypeError, "service_name", id="service"),
        pytest.param({"capture_content": "yes"}, TypeError, "capture_content", id="capture"),
        pytest.param({"redact": "x"}, TypeError, "redact", id="redact"),
        pytest.param({"tracer_provider": object()}, TypeError, "TracerProvider", id="tp"),
        pytest.param({"meter_provider": 1}, TypeError, "MeterProvider", id="mp"),
    ],
)
def test_bad_arguments_raise_at_configuration(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    """A bad argument is a clear TypeError/ValueError from configure() itself."""
    with pytest.raises(error, match=match):
        agentrel.configure(**kwargs)
    assert agentrel.current_configuration() is None


def test_never_replaces_application_providers() -> None:
    """Providers the application set stay in place, and agentrel records into them."""
    out = run_py(
        """
        import agentrel
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
        tp = TracerProvider(); tp.add_span_processor(SimpleSpanProcessor(exporter))
        mp = MeterProvider(metric_readers=[reader])
        trace.set_tracer_provider(tp); metrics.set_meter_provider(mp)
        cfg = agentrel.configure(service_name="ignored")
        assert trace.get_tracer_provider() is tp and metrics.get_meter_provider() is mp
        assert not cfg.owns_tracer_provider and not cfg.owns_meter_provider

        @agentrel.tool
        def t():
            return 1

        with agentrel.run("app"):
            t()
        names = sorted(m.name for rm in reader.get_metrics_data().resource_metrics
                       for sm in rm.scope_metrics for m in sm.metrics)
        print(len(exporter.get_finished_spans()), "agentrel.run.retry_depth" in names)
        assert agentrel.configure(prometheus_port=0) is cfg  # live config: returned as is
        cfg.shutdown()
        try:
            agentrel.configure(prometheus_port=0)
        except ValueError as e:
            print("refused:", "already set" in str(e))
        """
    )
    assert out.splitlines() == ["2 True", "refused: True"]


def test_providers_passed_in_are_used_and_never_owned() -> None:
    """configure(tracer_provider=, meter_provider=): agentrel records into those, sets no global
    provider of its own (not even with an OTLP endpoint in the environment), and shutdown()
    leaves the application's providers running."""
    out = run_py(
        """
        import agentrel
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
        tp = TracerProvider(); tp.add_span_processor(SimpleSpanProcessor(exporter))
        mp = MeterProvider(metric_readers=[reader])
        cfg = agentrel.configure(tracer_provider=tp, meter_provider=mp)
        print(type(trace.get_tracer_provider()).__name__,
              type(metrics.get_meter_provider()).__name__)
        assert cfg.tracer_provider is tp and cfg.meter_provider is mp
        assert not cfg.owns_tracer_provider and not cfg.owns_meter_provider

        @agentrel.tool
        def t():
            return 1

        with agentrel.run("app"):
            t()
        assert cfg.shutdown() is True
        with tp.get_tracer("app").start_as_current_span("after"):
            pass  # a provider that was shut down records nothing
        print(sorted(s.name for s in exporter.get_finished_spans()))
        """,
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
    )
    assert out.splitlines() == [
        "ProxyTracerProvider _ProxyMeterProvider",
        "['after', 'execute_tool t', 'invoke_agent app']",
    ]


def test_endpoint_service_name_and_idempotence() -> None:
    """configure(prometheus_port=0) serves /metrics on 127.0.0.1 with OTEL_SERVICE_NAME in
    target_info; a second configure() returns the same live configuration."""
    out = run_py(
        """
        import urllib.request, agentrel
        cfg = agentrel.configure(prometheus_port=0, cohorts=["smb"])
        assert agentrel.configure(prometheus_port=0) is cfg
        assert cfg.metrics_server.addr == "127.0.0.1"

        @agentrel.tool
        def t():
            return 1

        with agentrel.run("svc", cohort="smb"):
            t()
        with urllib.request.urlopen(cfg.prometheus_url, timeout=10) as r:
            body = r.read().decode()
        cfg.shutdown()
        cfg.shutdown()  # idempotent
        print('service_name="from-env"' in body)
        from prometheus_client.parser import text_string_to_metric_families
        print([(s.labels["agentrel_cohort"], s.labels["agentrel_outcome"], s.value)
               for f in text_string_to_metric_families(body) for s in f.samples
               if s.name == "agentrel_run_retry_depth_count"])
        try:
            urllib.request.urlopen(cfg.prometheus_url, timeout=2)
            print("still up")
        except OSError:
            print("stopped")
        """,
        OTEL_SERVICE_NAME="from-env",
    )
    assert out.splitlines() == ["True", "[('smb', 'success', 1.0)]", "stopped"]


def test_otlp_push_reaches_a_collector() -> None:
    """With otlp_endpoint, spans and metrics are pushed over OTLP/HTTP to that address."""
    out = run_py(
        """
        import threading, agentrel
        from http.server import BaseHTTPRequestHandler, HTTPServer
        seen = []

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                seen.append(self.path)
                self.send_response(200); self.end_headers()
            def log_message(self, *a):
                pass

        srv = HTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        cfg = agentrel.configure(otlp_endpoint=f"http://127.0.0.1:{srv.server_port}")

        @agentrel.tool
        def t():
            return 1

        with agentrel.run("pushed"):
            t()
        cfg.force_flush()
        cfg.shutdown()
        srv.shutdown()
        print(sorted(set(seen)))
        """
    )
    assert out == "['/v1/metrics', '/v1/traces']"


def test_otlp_env_endpoint_is_honoured() -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT alone turns on OTLP export."""
    out = run_py(
        """
        import agentrel
        cfg = agentrel.configure()
        print(cfg.otlp_endpoint, cfg.owns_meter_provider)
        cfg.shutdown()
        """,
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
    )
    assert out == "http://127.0.0.1:9 True"


def test_exporter_down_does_not_break_the_agent() -> None:
    """An OTLP collector that is not there: runs complete, shutdown still returns."""
    out = run_py(
        """
        import agentrel
        cfg = agentrel.configure(otlp_endpoint="http://127.0.0.1:9")

        @agentrel.tool
        def t(x):
            return x

        with agentrel.run("r") as run:
            total = sum(t(i) for i in range(100))
        print(total, run.outcome)
        """,
        OTEL_EXPORTER_OTLP_TIMEOUT="1",
        OTEL_BSP_EXPORT_TIMEOUT="1000",
    )
    assert out == "4950 success"


def test_prometheus_registry_without_a_listener() -> None:
    """configure(prometheus=True) collects for Prometheus with no port of its own: the app
    serves cfg.prometheus_registry."""
    out = run_py(
        """
        import agentrel
        from prometheus_client import generate_latest
        cfg = agentrel.configure(prometheus=True)
        assert cfg.metrics_server is None and cfg.prometheus_port is None

        @agentrel.tool
        def t():
            return 1

        with agentrel.run("app"):
            t()
        text = generate_latest(cfg.prometheus_registry).decode()
        print("agentrel_run_retry_depth_count" in text, cfg.shutdown())
        """
    )
    assert out == "True True"


def test_shutdown_is_bounded_when_the_collector_is_unreachable() -> None:
    """shutdown(timeout=) gives up waiting, and the process exits, although the collector
    never answers and the exporter would wait 60 s (a hang shows as TimeoutExpired)."""
    out = run_py(
        STALLED_COLLECTOR
        + """
        cfg = agentrel.configure(otlp_endpoint=f"http://127.0.0.1:{srv.server_port}")

        @agentrel.tool
        def t():
            return 1

        with agentrel.run("r"):
            t()
        print(cfg.shutdown(timeout=1.0))
        """,
        timeout=30,
        OTEL_EXPORTER_OTLP_TIMEOUT="60",
    )
    assert out == "False"


def test_exit_without_shutdown_is_bounded() -> None:
    """An application that never calls shutdown() still exits: agentrel's atexit flush is
    bounded (EXIT_TIMEOUT), unlike the SDK's own, which would wait for the exporter."""
    out = run_py(
        STALLED_COLLECTOR
        + """
        agentrel.configure(otlp_endpoint=f"http://127.0.0.1:{srv.server_port}")

        @agentrel.tool
        def t():
            return 1

        with agentrel.run("r"):
            t()
        print("done")
        """,
        timeout=40,
        OTEL_EXPORTER_OTLP_TIMEOUT="60",
    )
    assert out == "done"


def test_configure_after_shutdown_is_a_new_working_configuration() -> None:
    """After shutdown(), configure(prometheus_port=0) is a new configuration (it was a
    ValueError: "a MeterProvider is already set"): spans and metrics go to its new providers,
    and its new endpoint serves exactly the runs made since, from zero. While no configuration
    is live, agentrel records nothing. A plain configure() after that shutdown records spans
    into a new tracer provider, not the shut-down one."""
    out = run_py(
        """
        import urllib.request, agentrel
        from opentelemetry import trace, metrics
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from prometheus_client.parser import text_string_to_metric_families
        from agentrel._runtime import T

        @agentrel.tool
        def t(fail):
            if fail:
                raise TimeoutError
            return 1

        def run(name, fail_first=False):
            with agentrel.run(name):
                try:
                    t(fail_first)
                except TimeoutError:
                    t(False)

        def scrape(cfg):
            with urllib.request.urlopen(cfg.prometheus_url, timeout=10) as r:
                body = r.read().decode()
            return sorted(
                (s.name, tuple(sorted((k, v) for k, v in s.labels.items()
                                      if k in ("gen_ai_agent_name", "agentrel_outcome",
                                               "gen_ai_tool_name", "error_type"))), s.value)
                for f in text_string_to_metric_families(body) for s in f.samples
                if s.name in ("agentrel_run_retry_depth_count", "agentrel_run_retry_depth_sum",
                              "agentrel_tool_failures_total")
            )

        def spans_into(cfg):
            exporter = InMemorySpanExporter()
            cfg.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
            return exporter

        cfg1 = agentrel.configure(prometheus_port=0)
        s1 = spans_into(cfg1)
        run("one", fail_first=True)
        print(scrape(cfg1))
        url1 = cfg1.prometheus_url
        print(cfg1.shutdown(), T.active, T.armed)
        run("between")
        print([s.name for s in s1.get_finished_spans()])

        cfg2 = agentrel.configure(prometheus_port=0)
        s2 = spans_into(cfg2)
        print(cfg2 is not cfg1, cfg2.prometheus_url != url1, T.active)
        print(cfg2.meter_provider is not cfg1.meter_provider,
              cfg2.tracer_provider is not cfg1.tracer_provider,
              trace.get_tracer_provider() is cfg1.tracer_provider,
              metrics.get_meter_provider() is cfg1.meter_provider)
        run("two", fail_first=True)
        run("two")
        print(scrape(cfg2))
        print([s.name for s in s2.get_finished_spans()])
        try:
            urllib.request.urlopen(url1, timeout=2)
            print("old endpoint up")
        except OSError:
            print("old endpoint stopped")
        print(cfg2.shutdown())

        cfg3 = agentrel.configure()
        s3 = spans_into(cfg3)
        print(cfg3.tracer_provider not in (cfg1.tracer_provider, cfg2.tracer_provider))
        run("three")
        print([s.name for s in s3.get_finished_spans()], len(s2.get_finished_spans()))
        print(cfg3.shutdown(), agentrel.telemetry_errors())
        """
    )
    one = [
        (
            "agentrel_run_retry_depth_count",
            (("agentrel_outcome", "recovered"), ("gen_ai_agent_name", "one")),
            1.0,
        ),
        (
            "agentrel_run_retry_depth_sum",
            (("agentrel_outcome", "recovered"), ("gen_ai_agent_name", "one")),
            1.0,
        ),
        (
            "agentrel_tool_failures_total",
            (("error_type", "TimeoutError"), ("gen_ai_tool_name", "t")),
            1.0,
        ),
    ]
    two = [
        (
            "agentrel_run_retry_depth_count",
            (("agentrel_outcome", "recovered"), ("gen_ai_agent_name", "two")),
            1.0,
        ),
        (
            "agentrel_run_retry_depth_count",
            (("agentrel_outcome", "success"), ("gen_ai_agent_name", "two")),
            1.0,
        ),
        (
            "agentrel_run_retry_depth_sum",
            (("agentrel_outcome", "recovered"), ("gen_ai_agent_name", "two")),
            1.0,
        ),
        (
            "agentrel_run_retry_depth_sum",
            (("agentrel_outcome", "success"), ("gen_ai_agent_name", "two")),
            0.0,
        ),
        (
            "agentrel_tool_failures_total",
            (("error_type", "TimeoutError"), ("gen_ai_tool_name", "t")),
            1.0,
        ),
    ]
    tool_and_run = ["execute_tool t", "execute_tool t", "invoke_agent {}"]
    assert out.splitlines() == [
        repr(one),
        "True False False",
        repr([n.format("one") for n in tool_and_run]),
        "True True True",
        "True True True True",
        repr(two),
        repr([n.format("two") for n in tool_and_run] + ["execute_tool t", "invoke_agent two"]),
        "old endpoint stopped",
        "True",
        "True",
        "['execute_tool t', 'invoke_agent three'] 5",
        "True {}",
    ]


def test_is_set_tells_the_api_proxies_and_retired_providers_apart() -> None:
    """Nothing set yet: the API's own proxy provider types (by isinstance, not by class
    name); any other provider is set, the API's no-op ones included (an application may set
    them), except a provider agentrel created and shut down (retired), which is never bound
    again."""
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.metrics._internal import _ProxyMeterProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider

    from agentrel._runtime import T, is_set

    class NamedLikeAProxy(TracerProvider):
        pass

    NamedLikeAProxy.__name__ = "ProxyTracerProvider"
    assert not is_set(ProxyTracerProvider())
    assert not is_set(_ProxyMeterProvider())
    assert is_set(TracerProvider()) and is_set(MeterProvider())
    assert is_set(NoOpTracerProvider()) and is_set(NoOpMeterProvider())
    assert is_set(NamedLikeAProxy())  # the old class-name test called this "not set"
    retired = TracerProvider()
    T.retire(retired)
    T.retire(retired)  # once is enough
    assert not is_set(retired)
    assert sum(p is retired for p in T._retired) == 1
