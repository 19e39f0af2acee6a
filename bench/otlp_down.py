"""An OTLP endpoint that is down costs tool calls no latency, as ratios measured in one process.

    python bench/otlp_down.py            # full run
    python bench/otlp_down.py --quick    # fewer rounds, for a smoke check

Four sets of SDK providers as ``configure(otlp_endpoint=...)`` builds them (a batch span
processor and a periodic metric reader, both exporting over OTLP/HTTP, the reader every
200 ms so that exports really happen while the calls run): to a receiver that answers (in a
process of its own; for information), to a port that refuses connections, to a black hole
(accepts the connection, never answers), and no exporter at all (in memory: the baseline).
agentrel records into each in
turn, in interleaved rounds; the figure is the ratio of the per-call medians of a run with one
tool call. Never asserted in tests.
"""

from __future__ import annotations

import gc
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from overhead import CALLS, ROUNDS, line, per_call

from otlp_sink import OtlpSink, refusing_endpoint


def providers(endpoint: str | None) -> tuple[Any, Any]:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        InMemoryMetricReader,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    tp = TracerProvider()
    if endpoint is None:
        tp.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
        return tp, MeterProvider(metric_readers=[InMemoryMetricReader()])
    tp.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint + "/v1/traces", timeout=2))
    )
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint + "/v1/metrics", timeout=2),
        export_interval_millis=200,
        export_timeout_millis=2000,
    )
    return tp, MeterProvider(metric_readers=[reader])


def receiver_process() -> tuple[Any, str]:
    """An answering receiver in a process of its own (decoding there, not in this one)."""
    import subprocess

    tests = str(Path(__file__).resolve().parent.parent / "tests")
    proc = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; sys.path.insert(0, sys.argv[1]); from otlp_sink import OtlpSink;"
         " s = OtlpSink(); print(s.endpoint, flush=True); time.sleep(3600)", tests],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    endpoint = proc.stdout.readline().strip()  # bounded: the child prints it or dies
    if not endpoint.startswith("http://127.0.0.1:"):
        proc.kill()
        raise RuntimeError("the receiver process did not start")
    return proc, endpoint


def main() -> None:
    import agentrel
    from agentrel._runtime import T

    @agentrel.tool
    def work(x: int) -> int:
        return x + 1

    def one_run(x: int) -> int:
        with agentrel.run("bench"):
            return work(x)

    blackhole = OtlpSink(mode="blackhole")
    receiver, receiver_endpoint = receiver_process()
    sets = {
        "up": providers(receiver_endpoint),
        "none": providers(None),
        "refusing": providers(refusing_endpoint()),
        "blackhole": providers(blackhole.endpoint),
    }
    times: dict[str, list[float]] = {k: [] for k in sets}
    calls = CALLS // 5
    try:
        for tp, mp in sets.values():  # warm-up
            T.inject(tp, mp)
            per_call(one_run, calls // 10)
        gc.disable()
        for _ in range(ROUNDS):
            for name, (tp, mp) in sets.items():
                T.inject(tp, mp)
                times[name].append(per_call(one_run, calls))
    finally:
        gc.enable()
        T.uninject()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"OTLP endpoint down ({ROUNDS} rounds × {calls:,} runs of one tool call)")
    for name in ("refusing", "blackhole"):
        line(
            f"run+@tool, OTLP to a {name} endpoint ÷ no exporter",
            (med[name], med["none"], med[name] / med["none"]),
            "≤ 1.05 (no added latency)",
        )
        line(
            f"run+@tool, OTLP to a {name} endpoint ÷ to a receiver",
            (med[name], med["up"], med[name] / med["up"]),
            "(info)",
        )
    line(
        "run+@tool, OTLP to a receiver ÷ no exporter",
        (med["up"], med["none"], med["up"] / med["none"]),
        "(info: the exporters' own work)",
    )
    for tp, mp in sets.values():  # bounded: the exporters give up within their timeouts
        mp.shutdown(timeout_millis=3000)
        tp.shutdown()
    blackhole.close()
    receiver.kill()
    receiver.wait(timeout=10)


if __name__ == "__main__":
    main()
