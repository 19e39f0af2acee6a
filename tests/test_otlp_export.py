"""OTLP proven end to end: what agentrel pushes is decoded (opentelemetry-proto) by a real
OTLP/HTTP receiver on loopback and checked against the catalogue and a scripted run whose
counts are known in advance. Each scenario runs in a fresh interpreter: ``configure()`` sets
the process-wide OpenTelemetry providers, which can be set only once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import agentrel
from agentrel import METRICS
from otlp_sink import OtlpSink, attrs, points, refusing_endpoint

HERE = Path(__file__).resolve().parent
#: The subprocess imports the agentrel this process imported (source tree or installed wheel).
SUBPATH = os.pathsep.join((str(HERE), str(Path(agentrel.__file__).resolve().parent.parent)))

#: The scripted run: a tool failing twice under tenacity then answering (150 tokens of a
#: priced model), a fallback chain whose primary fails, a non-idempotent tool the agent loop
#: calls again after it failed, and an OpenAI call whose SDK retried a 429 (30 tokens of an
#: unpriced model). Retry depth 2 + 1 + 1 + 1 = 5; attempts 3 + 2 + 2 + 2 = 9.
SCENARIO = """
import json, openai
from opentelemetry import trace
from tenacity import retry, stop_after_attempt, wait_none
import agentrel
from agentrel.integrations import tenacity as agentrel_tenacity
from llm_mocks import Script, chat_body, error, openai_client

cfg = agentrel.configure(CONFIGURE_ARGS)
agentrel_tenacity.instrument()
calls = {"search": 0, "refund": 0}

@agentrel.tool("search", system="kb")
@retry(stop=stop_after_attempt(3), wait=wait_none(), sleep=lambda s: None)
def search(q):
    calls["search"] += 1
    if calls["search"] < 3:
        raise TimeoutError("slow")
    agentrel.record_tokens(input=100, output=50, model="m-priced")
    return "found"

def primary(q):
    raise ConnectionError("down")

def secondary(q):
    return "fallback answer"

answer = agentrel.fallback("answer", primary, secondary)

@agentrel.tool("refund", idempotent=False, system="stripe")
def refund(order):
    calls["refund"] += 1
    if calls["refund"] == 1:
        raise ValueError("declined")
    return "refunded"

client = agentrel.instrument(openai_client(Script(
    error(429), (200, chat_body(model="gpt-test", prompt=20, completion=10))
)))

with agentrel.run("support") as run:
    trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
    search("q")
    answer("q")
    try:
        refund("o1")
    except ValueError:
        pass
    refund("o1")
    client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
agentrel.verdict(run.ref, "correct", source="thumbs")  # a later verdict: agentrel.verdicts
flushed = cfg.shutdown(timeout=20)
print(json.dumps({"trace_id": trace_id, "outcome": run.outcome, "depth": run.retry_depth,
                  "attempts": run.attempts, "useful": run.useful_tokens, "flushed": flushed}))
"""


def run_scenario(configure_args: str, env: dict[str, str]) -> dict[str, Any]:
    code = textwrap.dedent(SCENARIO).replace("CONFIGURE_ARGS", configure_args)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=120, cwd=HERE,
        env={**os.environ, "PYTHONPATH": SUBPATH, **env},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _sum(metric: Any, **want: Any) -> float:
    total = 0.0
    for p in points(metric):
        a = attrs(p.attributes)
        if all(a.get(k) == v for k, v in want.items()):
            total += p.sum if hasattr(p, "bucket_counts") else p.as_int or p.as_double
    return total


def _count(metric: Any, **want: Any) -> int:
    return sum(
        p.count
        for p in points(metric)
        if all(attrs(p.attributes).get(k) == v for k, v in want.items())
    )


@pytest.fixture(scope="module")
def pushed() -> Any:
    """The scenario pushed with ``configure(otlp_endpoint=..., prices=...)``."""
    with OtlpSink() as sink:
        out = run_scenario(
            f"service_name='svc-arg', otlp_endpoint={sink.endpoint!r}, "
            "prices={'m-priced': (1.0, 2.0, 0.5)}",
            {},
        )
        yield sink, out


def test_the_run_itself(pushed: Any) -> None:
    """The scripted run's own figures, as the handle reads them."""
    _, out = pushed
    assert (out["outcome"], out["depth"], out["attempts"], out["useful"]) == (
        "recovered", 5, 9, 180
    )  # fmt: skip
    assert out["flushed"] is True


def test_every_catalogue_metric_arrives_with_its_unit_attributes_and_buckets(
    pushed: Any,
) -> None:
    """Each catalogue metric is in the decoded request: unit, attribute keys drawn from the
    catalogue's, histogram bucket boundaries exactly the catalogue's."""
    sink, _ = pushed
    got = sink.latest_metrics()
    missing = [m.name for m in METRICS if m.name not in got]
    assert missing == []
    for spec in METRICS:
        metric = got[spec.name]
        assert metric.unit == spec.unit, spec.name
        kind = metric.WhichOneof("data")
        assert kind == ("histogram" if spec.kind == "histogram" else "sum"), spec.name
        for p in points(metric):
            assert set(attrs(p.attributes)) <= set(spec.attributes), spec.name
            if spec.kind == "histogram":
                assert list(p.explicit_bounds) == [float(b) for b in spec.buckets or ()]


def test_exact_values_from_the_wire(pushed: Any) -> None:
    """The decoded points hold the scenario's exact counts."""
    sink, _ = pushed
    m = sink.latest_metrics()
    depth = m["agentrel.run.retry_depth"]
    assert _count(depth, **{"agentrel.outcome": "recovered", "gen_ai.agent.name": "support"}) == 1
    assert _sum(depth) == 5
    assert _sum(m["agentrel.run.attempts"]) == 9
    failures = m["agentrel.tool.failures"]
    assert _sum(failures, **{"gen_ai.tool.name": "search", "error.type": "TimeoutError"}) == 2
    assert _sum(failures, **{"gen_ai.tool.name": "answer", "error.type": "ConnectionError"}) == 1
    assert _sum(failures, **{"gen_ai.tool.name": "refund", "error.type": "ValueError"}) == 1
    assert _sum(failures, **{"error.type": "RateLimitError"}) == 1
    assert _sum(failures, **{"agentrel.absorbed": "true"}) == 5
    tokens = m["agentrel.tokens"]
    assert _sum(tokens, **{"agentrel.token.disposition": "useful"}) == 180
    assert _sum(tokens, **{"agentrel.token.disposition": "wasted"}) == 0
    assert _sum(m["agentrel.run.token_amplification"]) == 1.0
    assert _sum(m["agentrel.fallbacks"], **{"agentrel.fallback.from_tier": "primary"}) == 1
    assert _sum(m["agentrel.unsafe_retries"], **{"gen_ai.tool.name": "refund"}) == 1
    assert _count(m["agentrel.retry.delay"], **{"gen_ai.tool.name": "search"}) == 2
    # 100 input at $1/Mtok + 50 output at $2/Mtok; the LLM's 30 tokens have no price.
    assert _sum(m["agentrel.cost"]) == pytest.approx(0.0002, rel=1e-12)
    assert _sum(m["agentrel.cost.unpriced_tokens"], **{"gen_ai.request.model": "gpt-test"}) == 30
    assert _sum(m["gen_ai.invoke_agent.tool_calls"]) == 5
    assert _sum(m["gen_ai.invoke_agent.inference_calls"]) == 2
    assert _count(m["agentrel.tool.attempts"], **{"gen_ai.tool.name": "search"}) == 1
    assert _sum(m["agentrel.tool.attempts"], **{"gen_ai.tool.name": "search"}) == 3
    usage = m["gen_ai.client.token.usage"]
    assert _sum(usage, **{"gen_ai.token.type": "input"}) == 20
    assert _sum(usage, **{"gen_ai.token.type": "output"}) == 10
    assert _count(m["gen_ai.client.operation.duration"]) == 1
    assert all(p.count == 1 for p in points(m["agentrel.tool.first_call.duration"]))


def test_histogram_exemplars_carry_the_runs_trace_id(pushed: Any) -> None:
    """An on-call engineer goes from a retry-depth bucket to the run's trace in one click."""
    sink, out = pushed
    (point,) = points(sink.latest_metrics()["agentrel.run.retry_depth"])
    assert [e.trace_id.hex() for e in point.exemplars] == [out["trace_id"]]
    (tool_point,) = [
        p
        for p in points(sink.latest_metrics()["agentrel.tool.attempts"])
        if attrs(p.attributes)["gen_ai.tool.name"] == "search"
    ]
    assert {e.trace_id.hex() for e in tool_point.exemplars} == {out["trace_id"]}


def test_spans_arrive_with_their_attributes_and_parents(pushed: Any) -> None:
    """invoke_agent, execute_tool and chat spans, with outcome attributes and the tree."""
    sink, out = pushed
    spans = {s.name: s for s in sink.spans()}
    run = spans["invoke_agent support"]
    assert run.trace_id.hex() == out["trace_id"]
    run_attrs = attrs(run.attributes)
    assert run_attrs["agentrel.outcome"] == "recovered"
    assert run_attrs["agentrel.run.retry_depth"] == 5
    assert run_attrs["agentrel.run.attempts"] == 9
    assert run_attrs["agentrel.run.cost_usd"] == pytest.approx(0.0002, rel=1e-12)
    search = spans["execute_tool search"]
    assert search.parent_span_id == run.span_id
    search_attrs = attrs(search.attributes)
    assert (search_attrs["agentrel.outcome"], search_attrs["agentrel.call.attempts"]) == (
        "recovered", 3
    )  # fmt: skip
    assert search_attrs["agentrel.tool.system"] == "kb"
    assert [attrs(e.attributes)["error.type"] for e in search.events if e.name ==
            "agentrel.attempt" and "error.type" in attrs(e.attributes)] == [
        "TimeoutError", "TimeoutError"
    ]  # fmt: skip
    chat = spans["chat gpt-test"]
    assert chat.kind == chat.SPAN_KIND_CLIENT
    assert chat.parent_span_id == run.span_id
    assert attrs(chat.attributes)["gen_ai.usage.input_tokens"] == 20
    assert {r["service.name"] for r in sink.resources()} == {"svc-arg"}


def test_environment_variables_are_honoured() -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT, _HEADERS and OTEL_SERVICE_NAME alone, no arguments."""
    with OtlpSink() as sink:
        out = run_scenario(
            "",
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
                "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme,authorization=Bearer%20t0k",
                "OTEL_SERVICE_NAME": "svc-env",
            },
        )
        assert out["depth"] == 5
        assert sink.metrics and sink.traces
        assert all(h.get("x-tenant") == "acme" for h in sink.headers)
        assert all(h.get("authorization") == "Bearer t0k" for h in sink.headers)
        assert {r["service.name"] for r in sink.resources()} == {"svc-env"}
        assert _sum(sink.latest_metrics()["agentrel.run.retry_depth"]) == 5


@pytest.mark.parametrize("where", ["refusing", "blackhole"])
def test_an_endpoint_down_keeps_shutdown_and_exit_bounded(where: str) -> None:
    """A refusing endpoint or a black hole: the run's figures are unaffected, shutdown()
    reports the exporters did not finish within its timeout, and the interpreter exits."""
    sink = OtlpSink(mode="blackhole") if where == "blackhole" else None
    endpoint = sink.endpoint if sink is not None else refusing_endpoint()
    try:
        code = textwrap.dedent(
            """
            import json, sys, agentrel
            cfg = agentrel.configure(otlp_endpoint=sys.argv[1])

            @agentrel.tool
            def t():
                return 1

            with agentrel.run("r") as run:
                t(); t()
            print(json.dumps({"attempts": run.attempts, "flushed": cfg.shutdown(timeout=2)}))
            """
        )
        proc = subprocess.run(
            [sys.executable, "-c", code, endpoint], capture_output=True, text=True, timeout=90
        )
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out["attempts"] == 2
        assert out["flushed"] is False  # the exporters could not deliver in time
    finally:
        if sink is not None:
            sink.close()


def test_interpreter_exit_with_a_black_hole_is_bounded() -> None:
    """No shutdown() called: the process still exits (agentrel's exit hook bounds the flush),
    with the run's figures printed first."""
    with OtlpSink(mode="blackhole") as sink:
        code = textwrap.dedent(
            """
            import sys, agentrel
            agentrel.configure(otlp_endpoint=sys.argv[1])

            @agentrel.tool
            def t():
                return 1

            with agentrel.run("r") as run:
                t()
            print(run.attempts, run.outcome)
            """
        )
        proc = subprocess.run(
            [sys.executable, "-c", code, sink.endpoint], capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "success"]


#: the standard variable asking OTLP metric exporters for exponential histograms
EXPONENTIAL_ENV = {
    "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION": "base2_exponential_bucket_histogram"
}


@pytest.mark.parametrize(
    ("configure_args", "env"),
    [("otlp_histograms='exponential'", {}), ("", EXPONENTIAL_ENV)],
    ids=["argument", "environment"],
)  # fmt: skip
def test_exponential_histograms_over_otlp(configure_args: str, env: dict[str, str]) -> None:
    """``otlp_histograms="exponential"`` (or the standard environment variable): every
    catalogue histogram arrives as a base-2 exponential histogram, with the scenario's exact
    counts and sums; counters are unchanged."""
    with OtlpSink() as sink:
        args = f"otlp_endpoint={sink.endpoint!r}, prices={{'m-priced': (1.0, 2.0, 0.5)}}"
        out = run_scenario(f"{args}, {configure_args}" if configure_args else args, env)
        assert (out["outcome"], out["depth"], out["attempts"]) == ("recovered", 5, 9)
        m = sink.latest_metrics()
    kinds = {spec.name: m[spec.name].WhichOneof("data") for spec in METRICS}
    want = {s.name: "exponential_histogram" if s.kind == "histogram" else "sum" for s in METRICS}
    assert kinds == want
    (depth,) = points(m["agentrel.run.retry_depth"])
    assert (depth.count, depth.sum, depth.zero_count) == (1, 5.0, 0)
    assert depth.positive.bucket_counts and sum(depth.positive.bucket_counts) == 1
    (attempts,) = points(m["agentrel.run.attempts"])
    assert (attempts.count, attempts.sum) == (1, 9.0)
    search = [
        p
        for p in points(m["agentrel.tool.attempts"])
        if attrs(p.attributes)["gen_ai.tool.name"] == "search"
    ]
    assert [(p.count, p.sum) for p in search] == [(1, 3.0)]
    assert _sum(m["agentrel.tool.failures"], **{"agentrel.absorbed": "true"}) == 5


def test_explicit_histograms_win_over_the_environment() -> None:
    """``otlp_histograms="explicit"`` keeps the catalogue's buckets even when the environment
    asks for exponential ones."""
    with OtlpSink() as sink:
        run_scenario(
            f"otlp_endpoint={sink.endpoint!r}, otlp_histograms='explicit'", EXPONENTIAL_ENV
        )
        m = sink.latest_metrics()
    for spec in METRICS:
        if spec.kind == "histogram":
            assert m[spec.name].WhichOneof("data") == "histogram", spec.name
            for p in points(m[spec.name]):
                assert list(p.explicit_bounds) == [float(b) for b in spec.buckets or ()]


@pytest.mark.parametrize("bad", ["native", "", 3])
def test_otlp_histograms_refuses_other_values(bad: object) -> None:
    import agentrel

    with pytest.raises(ValueError, match="otlp_histograms must be one of"):
        agentrel.configure(otlp_histograms=bad)  # type: ignore[arg-type]
