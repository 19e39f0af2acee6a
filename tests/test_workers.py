"""Several worker processes on one host: a port conflict never breaks the host, a port range
gives every worker an endpoint of its own, configure() survives os.fork(), and a real
Prometheus scraping real gunicorn/uvicorn workers sums the fleet exactly.

Everything that configures agentrel runs in a fresh interpreter (global providers are once per
process); every process started here is stopped by its PID.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import socket
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops.conftest import Processes, free_port, http_get_json, require, require_binary, wait_for
from pyproc import run_py

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def free_port_block(n: int) -> int:
    """The first port of ``n`` consecutive ports that are free on 127.0.0.1 right now."""
    for _ in range(200):
        base = free_port()
        if base + n > 65535:
            continue
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise AssertionError(f"no {n} consecutive free ports found")


# -- one host, no servers needed -------------------------------------------------------------
COUNT_RUNS = """
        import agentrel, re
        from prometheus_client import generate_latest

        def runs(cfg):
            text = generate_latest(cfg.prometheus_registry).decode()
            return sum(float(v) for v in
                       re.findall(r'^agentrel_run_retry_depth_count\\{.*\\} (\\S+)$', text, re.M))
"""


def test_port_in_use_is_logged_once_counted_and_the_process_keeps_recording() -> None:
    """The second process on a port does not die: configure() returns, the conflict is
    counted once per configure(), logged once with what to do, and runs still record."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        out = run_py(
            COUNT_RUNS
            + f"""
        import logging, io
        log = io.StringIO()
        logging.getLogger("agentrel").addHandler(logging.StreamHandler(log))
        cfg = agentrel.configure(prometheus_port={port})
        print(cfg.metrics_server, cfg.prometheus_url, dict(agentrel.telemetry_errors()))

        @agentrel.tool
        def t(fail):
            if fail:
                raise TimeoutError
        with agentrel.run("a") as r:
            try:
                t(True)
            except TimeoutError:
                t(False)
        print(r.outcome, r.retry_depth, runs(cfg))
        text = log.getvalue()
        print(text.count("PortsInUse:"), "prometheus_port_range=N" in text,
              "keeps recording" in text)
        """
        )
    finally:
        holder.close()
    assert out.splitlines() == [
        "None None {'prometheus.endpoint': 1}",
        "recovered 1 1.0",
        "1 True True",
    ]


def test_port_range_binds_the_first_free_port() -> None:
    """With a range, a busy first port is no error: the next free one is bound; a range with
    every port busy is one counted error."""
    base = free_port_block(3)
    holders = []
    for p in (base, base + 1):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", p))
        s.listen()
        holders.append(s)
    try:
        code = """
        import agentrel
        cfg = agentrel.configure(prometheus_port={base}, prometheus_port_range={n})
        print(cfg.prometheus_port and cfg.prometheus_port - {base}, agentrel.telemetry_errors())
        """
        out = run_py(code.format(base=base, n=3)) + "\n" + run_py(code.format(base=base, n=2))
    finally:
        for s in holders:
            s.close()
    assert out.splitlines() == ["2 {}", "None {'prometheus.endpoint': 1}"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"prometheus_port": 9464, "prometheus_port_range": 0}, ValueError, ">= 1"),
        ({"prometheus_port": 9464, "prometheus_port_range": "4"}, TypeError, "int"),
        ({"prometheus_port": 9464, "prometheus_port_range": True}, TypeError, "int"),
        ({"prometheus_port": 0, "prometheus_port_range": 4}, ValueError, "fixed first port"),
        ({"prometheus_port_range": 4}, ValueError, "fixed first port"),
        ({"prometheus_port": 65534, "prometheus_port_range": 3}, ValueError, "65535"),
    ],
)
def test_bad_port_range_raises_at_configuration(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    import agentrel

    with pytest.raises(error, match=match):
        agentrel.configure(**kwargs)
    assert agentrel.current_configuration() is None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_configure_before_fork_each_process_serves_its_own() -> None:
    """gunicorn --preload in miniature: configure() and two runs in the parent, then a real
    os.fork(). The child serves only its own run on the next port of the range, with a
    service.instance.id of its own; the parent keeps serving its two, and neither endpoint
    counts the other's."""
    base = free_port_block(3)
    out = run_py(
        COUNT_RUNS
        + f"""
        import os, urllib.request, json

        def scrape(url):
            text = urllib.request.urlopen(url, timeout=5).read().decode()
            count = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                        if line.startswith("agentrel_run_retry_depth_count{{"))
            inst = re.search(r'service_instance_id="([^"]+)"', text).group(1)
            return count, inst

        @agentrel.tool
        def t():
            return 1

        cfg = agentrel.configure(prometheus_port={base}, prometheus_port_range=3)
        for _ in range(2):
            with agentrel.run("pre"):
                t()
        parent_url = cfg.prometheus_url
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                with agentrel.run("child"):
                    t()
                count, inst = scrape(cfg.prometheus_url)
                msg = [cfg.prometheus_port - {base}, count, inst, runs(cfg),
                       dict(agentrel.telemetry_errors())]
            except BaseException as exc:
                msg = [repr(exc)]
            os.write(w, json.dumps(msg).encode())
            os._exit(0)
        os.close(w)
        child = json.loads(os.read(r, 65536).decode())
        os.waitpid(pid, 0)
        with agentrel.run("pre"):
            t()
        count, inst = scrape(parent_url)
        print(child[:2], child[3:], child[2] != inst)
        print(cfg.prometheus_port - {base}, count, dict(agentrel.telemetry_errors()))
        cfg.shutdown()
        """
    )
    assert out.splitlines() == [
        "[1, 1.0] [1.0, {}] True",
        "0 3.0 {}",
    ]


class OTLPReceiver:
    """An OTLP/HTTP metrics receiver on 127.0.0.1 that keeps every decoded request."""

    def __init__(self) -> None:
        import http.server
        import threading

        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )

        self.requests: list[Any] = []
        received = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/v1/metrics":
                    received.append(ExportMetricsServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def runs_by_instance(self) -> dict[str, list[int]]:
        """Every cumulative run count pushed, per service.instance.id, in arrival order."""
        out: dict[str, list[int]] = collections.defaultdict(list)
        for req in list(self.requests):
            for rm in req.resource_metrics:
                attrs = {a.key: a.value.string_value for a in rm.resource.attributes}
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        if m.name == "agentrel.run.retry_depth":
                            n = sum(dp.count for dp in m.histogram.data_points)
                            out[attrs["service.instance.id"]].append(n)
        return dict(out)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_otlp_push_across_fork_one_instance_per_process() -> None:
    """OTLP push, configure() before a real fork: the child pushes its own run under a
    service.instance.id of its own; the parent's instance only ever carries the parent's runs
    (the child never re-exports the parent's points, though the SDK restarts the parent's
    periodic reader in it). Exports every 100 ms, so a stale reader in the child would push."""
    receiver = OTLPReceiver()
    try:
        out = run_py(
            f"""
        import os, time, agentrel

        @agentrel.tool
        def t():
            return 1

        cfg = agentrel.configure(service_name="w", otlp_endpoint="{receiver.url}")
        for _ in range(2):
            with agentrel.run("pre"):
                t()
        pid = os.fork()
        if pid == 0:
            with agentrel.run("child"):
                t()
            time.sleep(1.0)  # ten export intervals
            cfg.shutdown()
            os._exit(0)
        os.waitpid(pid, 0)
        with agentrel.run("pre"):
            t()
        print(cfg.shutdown(), dict(agentrel.telemetry_errors()))
        """,
            OTEL_METRIC_EXPORT_INTERVAL="100",
        )
        by_instance = receiver.runs_by_instance()
    finally:
        receiver.close()
    assert out == "True {}"
    assert len(by_instance) == 2, by_instance
    child = next(k for k, v in by_instance.items() if v[-1] == 1)
    parent = next(k for k in by_instance if k != child)
    assert set(by_instance[child]) == {1}
    assert by_instance[parent][-1] == 3
    # the parent's instance, pushed from either process, is never more than the parent's own
    # runs at that time and never goes down (a re-export from the child would repeat 2 after 3)
    counts = by_instance[parent]
    assert counts == sorted(counts) and set(counts) <= {2, 3}, counts


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_exporter_wrapper_exports_only_from_its_own_process() -> None:
    """The wrapper around agentrel's OTLP metric exporter: after a real fork the child's
    export() succeeds without reaching the exporter; the parent's reaches it."""
    out = run_py(
        """
        import os
        from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
        from agentrel._otlp import this_process_only

        class Recording(MetricExporter):
            def __init__(self):
                super().__init__()
                self.calls = 0
            def export(self, metrics_data, timeout_millis=10_000, **kwargs):
                self.calls += 1
                return MetricExportResult.SUCCESS
            def force_flush(self, timeout_millis=10_000):
                return True
            def shutdown(self, timeout_millis=30_000, **kwargs):
                pass

        inner = Recording()
        wrapped = this_process_only(inner)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            result = wrapped.export(None)
            os.write(w, f"{result.name} {inner.calls}".encode())
            os._exit(0)
        os.close(w)
        child = os.read(r, 100).decode()
        os.waitpid(pid, 0)
        print(child, wrapped.export(None).name, inner.calls)
        """
    )
    assert out == "SUCCESS 0 SUCCESS 1"


# -- real servers: gunicorn / uvicorn workers scraped by a real Prometheus --------------------
MAX_ATTEMPTS = 3  # examples/fastapi_service.py
#: failures per request: 0 = success, 1-2 = recovered, 3+ = exhausted
PATTERN = [0, 1, 0, 2, 3, 0, 1, 5]
REQUESTS = 48
INPUT, OUTPUT = 800, 60


def expected() -> dict[str, Any]:
    failures = [PATTERN[i % len(PATTERN)] for i in range(REQUESTS)]
    outcome = collections.Counter(
        "success" if f == 0 else "recovered" if f < MAX_ATTEMPTS else "exhausted" for f in failures
    )
    depth = sum(min(f, MAX_ATTEMPTS) for f in failures)
    exhausted = outcome["exhausted"]
    ok = REQUESTS - exhausted
    absorbed = sum(min(f, MAX_ATTEMPTS) for f in failures if f < MAX_ATTEMPTS)
    return {
        "failures": failures,
        "outcome": dict(outcome),
        "depth": depth,
        "tokens": {
            ("input", "useful"): INPUT * ok,
            ("output", "useful"): OUTPUT * ok,
            ("input", "wasted"): INPUT * exhausted,
            ("output", "wasted"): OUTPUT * exhausted,
        },
        "tool_failures": {"true": absorbed, "false": MAX_ATTEMPTS * exhausted},
    }


def test_expected_figures_are_what_the_pattern_says() -> None:
    """The scripted load, spelled out: 48 requests, 18 success, 18 recovered, 12 exhausted."""
    e = expected()
    assert e["outcome"] == {"success": 18, "recovered": 18, "exhausted": 12}
    assert e["depth"] == 6 * (1 + 2 + 3 + 1 + 3)
    assert e["tool_failures"] == {"true": 24, "false": 36}


def query(prom: str, expr: str) -> dict[tuple[str, ...], float]:
    body = http_get_json(f"{prom}/api/v1/query", {"query": expr})
    assert body["status"] == "success", body
    return {tuple(r["metric"].values()): float(r["value"][1]) for r in body["data"]["result"]}


def ask(app: str, failures: int) -> tuple[int, dict[str, Any]]:
    url = f"{app}/ask?question=q&plan=smb&failures={failures}"
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


SERVERS = {
    "gunicorn": (["-m", "gunicorn", "-w", "3", "-k", "uvicorn.workers.UvicornWorker"], 3),
    "gunicorn-preload": (
        ["-m", "gunicorn", "--preload", "-w", "3", "-k", "uvicorn.workers.UvicornWorker"],
        4,  # the master configures before the fork and keeps the first port (zero runs)
    ),
    "uvicorn": (["-m", "uvicorn", "--workers", "3"], 3),
}


@pytest.mark.servers
@pytest.mark.parametrize("server", list(SERVERS))
def test_workers_scraped_by_prometheus_sum_exactly(server: str, tmp_path: Path) -> None:
    """3 workers, one port each from a range, a real Prometheus scraping the range: the
    fleet totals by outcome, retry depth, tool failures and tokens are exact, and every
    worker's count equals the requests that worker answered."""
    prometheus = require_binary("prometheus")
    for module in ("gunicorn" if server.startswith("gunicorn") else "uvicorn", "fastapi"):
        require(importlib.util.find_spec(module) is not None, f"the {module} package")
    args, endpoints = SERVERS[server]
    span = 5
    base = free_port_block(span)
    app_port, prom_port = free_port(), free_port()
    bind = (
        ["-b", f"127.0.0.1:{app_port}", "--chdir", str(EXAMPLES), "--graceful-timeout", "5"]
        if server.startswith("gunicorn")
        else ["--host", "127.0.0.1", "--port", str(app_port), "--app-dir", str(EXAMPLES)]
    )
    env = {
        **os.environ,
        "METRICS_PORT": str(base),
        "METRICS_PORT_RANGE": str(span),
        "PYTHONPATH": str(EXAMPLES),
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    procs = Processes(tmp_path)
    try:
        procs.start("app", [sys.executable, *args, *bind, "fastapi_service:app"], env=env)
        config = {
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "agentrel-workers",
                    "static_configs": [
                        {"targets": [f"127.0.0.1:{p}" for p in range(base, base + span)]}
                    ],
                }
            ],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        procs.start(
            "prometheus",
            [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'prom-data'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
        )  # fmt: skip
        prom = f"http://127.0.0.1:{prom_port}"

        def targets_up() -> bool:
            for name, proc in procs.started:
                if proc.poll() is not None:
                    pytest.fail(f"{name} exited early ({proc.returncode}):\n{procs.log(name)}")
            body = http_get_json(f"{prom}/api/v1/targets")
            up = [t for t in body["data"]["activeTargets"] if t["health"] == "up"]
            return len(up) == endpoints

        wait_for(targets_up, timeout=60, what=f"Prometheus to scrape {endpoints} endpoints")
        e = expected()
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(
                pool.map(lambda f: ask(f"http://127.0.0.1:{app_port}", f), e["failures"])
            )
        statuses = collections.Counter(status for status, _ in answers)
        assert statuses == {
            200: REQUESTS - e["outcome"]["exhausted"],
            503: e["outcome"]["exhausted"],
        }
        assert [a["retry_depth"] for _, a in answers] == [min(f, 3) for f in e["failures"]]
        served = collections.Counter(f"127.0.0.1:{a['metrics_port']}" for _, a in answers)
        pids = {a["pid"] for _, a in answers}
        assert len(pids) == len(served) and None not in served

        total = "sum(agentrel_run_retry_depth_count)"
        wait_for(
            lambda: query(prom, total) == {(): float(REQUESTS)},
            timeout=30,
            what=f"Prometheus to see {REQUESTS} runs",
        )
        by_outcome = query(prom, "sum by (agentrel_outcome) (agentrel_run_retry_depth_count)")
        assert by_outcome == {(k,): float(v) for k, v in e["outcome"].items()}
        assert query(prom, "sum(agentrel_run_retry_depth_sum)") == {(): float(e["depth"])}
        tokens = query(
            prom,
            "sum by (gen_ai_token_type, agentrel_token_disposition) (agentrel_tokens_total)",
        )
        assert {tuple(sorted(k)): v for k, v in tokens.items()} == {
            tuple(sorted(k)): float(v) for k, v in e["tokens"].items()
        }
        failures = query(prom, "sum by (agentrel_absorbed) (agentrel_tool_failures_total)")
        assert failures == {(k,): float(v) for k, v in e["tool_failures"].items()}
        # every worker's runs counted once, by the worker that answered them
        per_instance = query(prom, "sum by (instance) (agentrel_run_retry_depth_count)")
        assert per_instance == {(k,): float(v) for k, v in served.items()}
        print(f"{server}: {REQUESTS} requests over workers {dict(served)}; "
              f"{endpoints} endpoints up; fleet totals exact")  # fmt: skip
    finally:
        procs.stop_all()
