"""OTLP, point by point: tests/otlp_scenario.py (three runs, every catalogue metric, counts
known in advance) pushed to the loopback receiver of tests/otlp_sink.py, and EVERY decoded
point checked: the exact set of attribute sets per metric, exact counts and sums, the
catalogue's bucket boundaries, exemplars on every histogram point carrying the trace id of the
run that point belongs to, the span tree, gzip and headers from the environment alone, and a
shutdown against a down endpoint held to a hard 30 s watchdog.

tests/test_otlp_export.py covers one run with filtered sums; this file pins every point, so a
point that appears, disappears or moves to other attributes fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import agentrel
from agentrel import METRICS
from otlp_scenario import COHORTS, EXHAUST, PRICES, RECOVER, SUCCESS, WAIT
from otlp_sink import OtlpSink, attrs, points, refusing_endpoint

HERE = Path(__file__).resolve().parent
#: The subprocess imports the agentrel this process imported (source tree or installed wheel).
SUBPATH = os.pathsep.join((str(HERE), str(Path(agentrel.__file__).resolve().parent.parent)))
SCRIPT = str(HERE / "otlp_scenario.py")

# Attribute keys, short.
TOOL, OUT, AGENT, COH = (
    "gen_ai.tool.name",
    "agentrel.outcome",
    "gen_ai.agent.name",
    "agentrel.cohort",
)
ERR, ABS, TT, DISP = (
    "error.type",
    "agentrel.absorbed",
    "gen_ai.token.type",
    "agentrel.token.disposition",
)
RM = "gen_ai.request.model"
CHAT = "chat gpt-4o"
LLM_OK = {
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", RM: "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
}  # fmt: skip
LLM_ERR = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", RM: "gpt-4o",
           ERR: "InternalServerError"}  # fmt: skip
A = {AGENT: RECOVER, COH: "smb"}
B = {AGENT: EXHAUST, COH: "other"}
C = {AGENT: SUCCESS, COH: "none"}

#: Every point of every metric the scenario produces: (attributes, run, expected).
#: expected is the counter's value, or (count, sum) for a histogram; a sum of None is a
#: duration measured on the wall clock (only its count is exact; its sum is checked >= the
#: time the scenario really slept there, see MIN_SUM). run names the run the point belongs to
#: (its exemplars must carry that run's trace id).
EXPECTED: dict[str, list[tuple[dict[str, str], str, Any]]] = {
    "agentrel.run.retry_depth": [
        ({**A, OUT: "recovered"}, RECOVER, (1, 6)),  # 2 lookup + refund + 429 + rejected + tier
        ({**B, OUT: "exhausted"}, EXHAUST, (1, 3)),  # the 500 + 2 flaky
        ({**C, OUT: "success"}, SUCCESS, (1, 0)),
    ],
    "agentrel.run.attempts": [
        ({**A, OUT: "recovered"}, RECOVER, (1, 10)),  # 3 + 2 + 2 + 1 + 2
        ({**B, OUT: "exhausted"}, EXHAUST, (1, 4)),  # 1 + 1 + 2
        ({**C, OUT: "success"}, SUCCESS, (1, 1)),
    ],
    "agentrel.run.token_amplification": [
        (A, RECOVER, (1, 170 / 150)),  # 150 useful + 20 rejected
        (C, SUCCESS, (1, 1.0)),
    ],
    "agentrel.run.recovery_time": [
        ({**A, OUT: "recovered"}, RECOVER, (1, None)),
        ({**B, OUT: "exhausted"}, EXHAUST, (1, None)),
    ],
    "agentrel.tool.attempts": [
        ({TOOL: "lookup", OUT: "recovered"}, RECOVER, (1, 3)),
        ({TOOL: "refund", OUT: "recovered"}, RECOVER, (1, 2)),
        ({TOOL: CHAT, OUT: "recovered"}, RECOVER, (1, 2)),
        ({TOOL: "draft", OUT: "success"}, RECOVER, (1, 1)),  # rejected after it finished
        ({TOOL: "answer", OUT: "recovered"}, RECOVER, (1, 2)),
        ({TOOL: "plan", OUT: "success"}, EXHAUST, (1, 1)),
        ({TOOL: CHAT, OUT: "failed"}, EXHAUST, (1, 1)),
        ({TOOL: "flaky", OUT: "exhausted"}, EXHAUST, (1, 2)),
        ({TOOL: "ping", OUT: "success"}, SUCCESS, (1, 1)),
    ],
    "agentrel.tool.failures": [
        ({TOOL: "lookup", ERR: "ConnectionError", ABS: "true"}, RECOVER, 2),
        ({TOOL: "refund", ERR: "TimeoutError", ABS: "true"}, RECOVER, 1),
        ({TOOL: CHAT, ERR: "RateLimitError", ABS: "true"}, RECOVER, 1),
        ({TOOL: "draft", ERR: "rejected", ABS: "true"}, RECOVER, 1),
        ({TOOL: "answer", ERR: "ValueError", ABS: "true"}, RECOVER, 1),
        ({TOOL: CHAT, ERR: "InternalServerError", ABS: "false"}, EXHAUST, 1),
        ({TOOL: "flaky", ERR: "OSError", ABS: "false"}, EXHAUST, 2),
    ],
    "agentrel.retry.delay": [  # tenacity's computed waits are exact; the SDK's is measured
        ({TOOL: "lookup"}, RECOVER, (2, 2 * WAIT)),
        ({TOOL: "refund"}, RECOVER, (1, WAIT)),
        ({TOOL: CHAT}, RECOVER, (1, None)),
        ({TOOL: "flaky"}, EXHAUST, (1, WAIT)),
    ],
    "agentrel.fallbacks": [
        (
            {
                "agentrel.fallback.chain": "answer",
                "agentrel.fallback.from_tier": "primary",
                "agentrel.fallback.to_tier": "cache",
                ERR: "ValueError",
            },
            RECOVER,
            1,
        ),
    ],
    "agentrel.tokens": [
        ({**A, TT: "input", DISP: "useful", RM: "gpt-4o"}, RECOVER, 100),
        ({**A, TT: "output", DISP: "useful", RM: "gpt-4o"}, RECOVER, 50),
        ({**A, TT: "input", DISP: "wasted", RM: "local-m"}, RECOVER, 10),
        ({**A, TT: "output", DISP: "wasted", RM: "local-m"}, RECOVER, 10),
        ({**B, TT: "input", DISP: "wasted", RM: "local-m"}, EXHAUST, 7),
        ({**B, TT: "output", DISP: "wasted", RM: "local-m"}, EXHAUST, 3),
        ({**C, TT: "input", DISP: "useful", RM: "local-m"}, SUCCESS, 4),
        ({**C, TT: "output", DISP: "useful", RM: "local-m"}, SUCCESS, 1),
    ],
    "agentrel.unsafe_retries": [({TOOL: "refund"}, RECOVER, 1)],
    "agentrel.verdicts": [
        (
            {
                **A,
                OUT: "recovered",
                "agentrel.verdict": "wrong",
                "agentrel.verdict.source": "other",
            },
            RECOVER,
            1,
        )
    ],
    "gen_ai.execute_tool.duration": [
        ({TOOL: "lookup"}, RECOVER, (1, None)),
        ({TOOL: "refund"}, RECOVER, (1, None)),
        ({TOOL: "draft"}, RECOVER, (1, None)),
        ({TOOL: "plan"}, EXHAUST, (1, None)),
        ({TOOL: "flaky", ERR: "OSError"}, EXHAUST, (1, None)),
        ({TOOL: "ping"}, SUCCESS, (1, None)),
    ],
    "gen_ai.client.token.usage": [
        ({**LLM_OK, TT: "input"}, RECOVER, (1, 100)),
        ({**LLM_OK, TT: "output"}, RECOVER, (1, 50)),
    ],
    "gen_ai.client.operation.duration": [
        (LLM_OK, RECOVER, (1, None)),
        (LLM_ERR, EXHAUST, (1, None)),
    ],
    "agentrel.cost": [  # 100 input x $2/M + 50 output x $8/M
        ({**A, RM: "gpt-4o", DISP: "useful"}, RECOVER, 100 * 2e-6 + 50 * 8e-6),
    ],
    "agentrel.cost.unpriced_tokens": [({RM: "local-m"}, RECOVER, 20 + 10 + 5)],
    "gen_ai.invoke_agent.tool_calls": [
        ({AGENT: RECOVER}, RECOVER, (1, 6)),  # 5 calls made, the rejected draft is one of them
        ({AGENT: EXHAUST}, EXHAUST, (1, 3)),
        ({AGENT: SUCCESS}, SUCCESS, (1, 1)),
    ],
    "gen_ai.invoke_agent.inference_calls": [
        ({AGENT: RECOVER}, RECOVER, (1, 2)),
        ({AGENT: EXHAUST}, EXHAUST, (1, 1)),
        ({AGENT: SUCCESS}, SUCCESS, (1, 0)),
    ],
    "agentrel.tool.first_call.duration": [  # the first call of each name in this process
        ({TOOL: t}, run, (1, None))
        for t, run in (
            ("lookup", RECOVER),
            ("refund", RECOVER),
            (CHAT, RECOVER),
            ("draft", RECOVER),
            ("answer", RECOVER),
            ("plan", EXHAUST),
            ("flaky", EXHAUST),
            ("ping", SUCCESS),
        )
    ],
}

#: Catalogue metrics this scenario is NOT expected to produce, each with the reason. A metric
#: added to the catalogue later fails test_every_catalogue_metric_is_expected by name until
#: the scenario produces it (and EXPECTED pins its points) or it is listed here.
NOT_PRODUCED: dict[str, str] = {}

#: Lower bounds (seconds really slept by tenacity's waits) for wall-clock sums.
MIN_SUM = {
    ("agentrel.run.recovery_time", RECOVER): 3 * WAIT,
    ("agentrel.run.recovery_time", EXHAUST): WAIT,
}


def _scenario(configure: dict[str, Any], env: dict[str, str], ending: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, SCRIPT, json.dumps(configure), ending],
        capture_output=True, text=True, timeout=120, cwd=HERE,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": SUBPATH,
             "OTEL_METRIC_EXPORT_INTERVAL": "600000", **env},
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


APP_SAW = {
    "lookup": "doc", "refund": "refunded", "chat": 100, "draft": "draft", "answer": "cached",
    "plan": "plan", "bad_chat": "InternalServerError", "flaky": "OSError", "ping": "pong",
    "llm_requests": [2, 1],
    "runs": {
        RECOVER: {"outcome": "recovered", "retry_depth": 6, "attempts": 10, "tokens": 170,
                  "useful": 150, "wasted": 20},
        EXHAUST: {"outcome": "exhausted", "retry_depth": 3, "attempts": 4, "tokens": 10,
                  "useful": 0, "wasted": 10},
        SUCCESS: {"outcome": "success", "retry_depth": 0, "attempts": 1, "tokens": 5,
                  "useful": 5, "wasted": 0},
    },
}  # fmt: skip


def _app_part(out: dict[str, Any]) -> dict[str, Any]:
    return {k: out[k] for k in APP_SAW}


@pytest.fixture(scope="module")
def by_argument() -> Any:
    """configure(otlp_endpoint=..., service_name=..., cohorts=..., prices=...), no OTEL_* env."""
    with OtlpSink() as sink:
        out = _scenario(
            {"otlp_endpoint": sink.endpoint, "service_name": "otlp-arg", "cohorts": COHORTS,
             "prices": PRICES},
            {}, "flush-shutdown",
        )  # fmt: skip
        yield sink, out


@pytest.fixture(scope="module")
def by_environment() -> Any:
    """configure(cohorts=..., prices=...) with the endpoint, headers, service name and gzip
    from OTEL_* variables only."""
    with OtlpSink() as sink:
        out = _scenario(
            {"cohorts": COHORTS, "prices": PRICES},
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
                "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme,authorization=Bearer%20s3cr3t",
                "OTEL_SERVICE_NAME": "otlp-env",
                "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
            },
            "flush-shutdown",
        )
        yield sink, out


BOTH = ["by_argument", "by_environment"]


def test_every_catalogue_metric_is_expected() -> None:
    """The scenario's table names every catalogue metric (or says why it is not produced)."""
    names = {m.name for m in METRICS}
    unplanned = sorted(names - set(EXPECTED) - set(NOT_PRODUCED))
    assert unplanned == [], f"catalogue metrics the OTLP scenario does not produce: {unplanned}"
    assert sorted((set(EXPECTED) | set(NOT_PRODUCED)) - names) == []


@pytest.mark.parametrize("how", BOTH)
def test_the_application_was_unaffected(how: str, request: pytest.FixtureRequest) -> None:
    """Return values, exceptions and the run handles' figures; shutdown reports success."""
    _, out = request.getfixturevalue(how)
    assert _app_part(out) == APP_SAW
    assert out["shutdown"] is True
    assert out["telemetry_errors"] == {}


def _metrics(sink: OtlpSink) -> tuple[dict[str, Any], dict[str, Any]]:
    """(last metrics request's metrics by name, first request's) from scope agentrel."""
    assert len(sink.metrics) == 2, "one export from force_flush(), one from shutdown()"

    def by_name(req: Any) -> dict[str, Any]:
        (rm,) = req.resource_metrics
        (sm,) = [s for s in rm.scope_metrics if s.scope.name == "agentrel"]
        return {m.name: m for m in sm.metrics}

    return by_name(sink.metrics[-1]), by_name(sink.metrics[0])


@pytest.mark.parametrize("how", BOTH)
def test_every_point_exact(how: str, request: pytest.FixtureRequest) -> None:
    """For every catalogue metric: unit, type, temporality, bucket boundaries, and exactly the
    expected points with exactly the expected values, in both exports (cumulative)."""
    sink, _ = request.getfixturevalue(how)
    last, first = _metrics(sink)
    specs = {m.name: m for m in METRICS}
    assert sorted(set(last) - set(specs)) == []  # nothing outside the catalogue
    assert sorted(set(EXPECTED) - set(last)) == []  # every expected metric arrived
    for name, want in EXPECTED.items():
        spec = specs[name]
        for metric in (last[name], first[name]):
            assert metric.unit == spec.unit, name
            kind = metric.WhichOneof("data")
            assert kind == ("histogram" if spec.kind == "histogram" else "sum"), name
            data = getattr(metric, kind)
            assert data.aggregation_temporality == 2, name  # CUMULATIVE
            if kind == "sum":
                assert data.is_monotonic, name
            got = {}
            for p in points(metric):
                key = frozenset(attrs(p.attributes).items())
                assert key not in got, (name, key)
                got[key] = p
            expected_keys = {frozenset(a.items()) for a, _, _ in want}
            assert set(got) == expected_keys, (name, set(got) ^ expected_keys)
            seen_keys: set[str] = set()
            for a, run, value in want:
                p = got[frozenset(a.items())]
                seen_keys |= set(a)
                if spec.kind == "counter":
                    v = p.as_int if p.WhichOneof("value") == "as_int" else p.as_double
                    assert v == pytest.approx(value, rel=1e-12, abs=0), (name, a)
                    continue
                count, total = value
                assert list(p.explicit_bounds) == [float(b) for b in spec.buckets or ()], name
                assert len(p.bucket_counts) == len(p.explicit_bounds) + 1, name
                assert (p.count, sum(p.bucket_counts)) == (count, count), (name, a)
                if total is None:
                    assert MIN_SUM.get((name, run), 0.0) <= p.sum < 60, (name, a, p.sum)
                else:
                    assert p.sum == pytest.approx(total, rel=1e-12, abs=1e-12), (name, a)
            assert seen_keys <= set(spec.attributes), name
            assert seen_keys == set(spec.attributes), (name, "an attribute never exercised")


def _trace_ids(sink: OtlpSink) -> dict[str, bytes]:
    return {
        attrs(s.attributes)["gen_ai.agent.name"]: s.trace_id
        for s in sink.spans()
        if s.name.startswith("invoke_agent ")
    }


@pytest.mark.parametrize("how", BOTH)
def test_exemplars_on_every_histogram_point(how: str, request: pytest.FixtureRequest) -> None:
    """Each histogram point of the first export (the SDK hands an exemplar out once per
    collection) carries exemplars, all with the trace id of the invoke_agent span of the
    run the point belongs to, and a span id of a span in that trace."""
    sink, _ = request.getfixturevalue(how)
    _, first = _metrics(sink)
    trace_of = _trace_ids(sink)
    assert sorted(trace_of) == sorted([RECOVER, EXHAUST, SUCCESS])
    assert len(set(trace_of.values())) == 3
    spans_of: dict[bytes, set[bytes]] = {}
    for s in sink.spans():
        spans_of.setdefault(s.trace_id, set()).add(s.span_id)
    checked = 0
    for name, want in EXPECTED.items():
        if first[name].WhichOneof("data") != "histogram":
            continue
        got = {frozenset(attrs(p.attributes).items()): p for p in points(first[name])}
        for a, run, _ in want:
            p = got[frozenset(a.items())]
            assert len(p.exemplars) >= 1, (name, a)
            assert {e.trace_id for e in p.exemplars} == {trace_of[run]}, (name, a)
            assert {e.span_id for e in p.exemplars} <= spans_of[trace_of[run]], (name, a)
            checked += 1
    assert checked == sum(
        len(w) for n, w in EXPECTED.items() if first[n].WhichOneof("data") == "histogram"
    )


@pytest.mark.parametrize("how", BOTH)
def test_span_tree_and_attributes(how: str, request: pytest.FixtureRequest) -> None:
    """invoke_agent spans are roots; execute_tool, chat and fallback spans are their children
    with the outcome and attempts; fallback tiers are children of the chain."""
    sink, _ = request.getfixturevalue(how)
    spans = sink.spans()
    by_id = {s.span_id: s for s in spans}
    runs = {attrs(s.attributes)["gen_ai.agent.name"]: s for s in spans
            if s.name.startswith("invoke_agent ")}  # fmt: skip
    for agent, outcome, depth, attempts in (
        (RECOVER, "recovered", 6, 10), (EXHAUST, "exhausted", 3, 4), (SUCCESS, "success", 0, 1)
    ):  # fmt: skip
        run = runs[agent]
        a = attrs(run.attributes)
        assert run.parent_span_id == b"", agent
        assert (a["gen_ai.operation.name"], a["agentrel.outcome"]) == ("invoke_agent", outcome)
        assert (a["agentrel.run.retry_depth"], a["agentrel.run.attempts"]) == (depth, attempts)
    children: dict[str, list[tuple[str, str, int]]] = {}
    for s in spans:
        if s.name.startswith(("execute_tool ", "chat ", "fallback ")):
            parent = by_id[s.parent_span_id]
            assert parent.trace_id == s.trace_id
            a = attrs(s.attributes)
            children.setdefault(parent.name, []).append(
                (s.name, a["agentrel.outcome"], a["agentrel.call.attempts"])
            )
    assert sorted(children) == [f"invoke_agent {EXHAUST}", f"invoke_agent {RECOVER}",
                                f"invoke_agent {SUCCESS}"]  # fmt: skip
    assert sorted(children[f"invoke_agent {RECOVER}"]) == sorted([
        ("execute_tool lookup", "recovered", 3), ("execute_tool refund", "recovered", 2),
        (CHAT, "recovered", 2), ("execute_tool draft", "success", 1),
        ("fallback answer", "recovered", 2),
    ])  # fmt: skip
    assert sorted(children[f"invoke_agent {EXHAUST}"]) == sorted([
        ("execute_tool plan", "success", 1), (CHAT, "failed", 1),
        ("execute_tool flaky", "exhausted", 2),
    ])  # fmt: skip
    assert children[f"invoke_agent {SUCCESS}"] == [("execute_tool ping", "success", 1)]
    tiers = sorted(
        (s.name, by_id[s.parent_span_id].name) for s in spans if s.name.startswith("fallback_tier")
    )
    assert tiers == [("fallback_tier cache", "fallback answer"),
                     ("fallback_tier primary", "fallback answer")]  # fmt: skip
    (ok_chat,) = [s for s in spans if s.name == CHAT and attrs(s.attributes)[OUT] == "recovered"]
    a = attrs(ok_chat.attributes)
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (100, 50)
    assert a["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    refund = next(s for s in spans if s.name == "execute_tool refund")
    assert [e.name for e in refund.events].count("agentrel.unsafe_retry") == 1


def test_resource_and_headers_by_argument(by_argument: Any) -> None:
    """service.name from the argument; protobuf, uncompressed, the exporter's user agent."""
    sink, out = by_argument
    assert out["otlp_endpoint"] == sink.endpoint
    assert {r["service.name"] for r in sink.resources()} == {"otlp-arg"}
    assert len(sink.headers) == len(sink.metrics) + len(sink.traces) >= 3
    for h in sink.headers:
        assert h["content-type"] == "application/x-protobuf"
        assert "content-encoding" not in h
        assert h["user-agent"].startswith("OTel-OTLP-Exporter-Python/")
        assert "x-tenant" not in h


def test_resource_and_headers_by_environment(by_environment: Any) -> None:
    """OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_HEADERS (URL-decoded) and
    OTEL_EXPORTER_OTLP_COMPRESSION=gzip reach every request of both signals."""
    sink, out = by_environment
    assert out["otlp_endpoint"] == sink.endpoint
    assert {r["service.name"] for r in sink.resources()} == {"otlp-env"}
    assert len(sink.traces) >= 1 and len(sink.metrics) == 2
    assert len(sink.headers) == len(sink.metrics) + len(sink.traces)
    for h in sink.headers:
        assert (h["x-tenant"], h["authorization"]) == ("acme", "Bearer s3cr3t")
        assert h["content-encoding"] == "gzip"
        assert h["content-type"] == "application/x-protobuf"


@pytest.mark.parametrize("where", ["refusing", "blackhole"])
def test_shutdown_against_a_down_endpoint(where: str) -> None:
    """The whole scenario against a refusing port or a black hole: the application sees
    exactly what it sees with a live collector; shutdown(timeout=1) returns its documented
    False (the exporters did not finish in time) under a hard 30 s watchdog (the script
    exits 3 if shutdown() has not returned by then)."""
    sink = OtlpSink(mode="blackhole") if where == "blackhole" else None
    endpoint = sink.endpoint if sink is not None else refusing_endpoint()
    try:
        out = _scenario(
            {"otlp_endpoint": endpoint, "cohorts": COHORTS, "prices": PRICES}, {}, "shutdown:1"
        )
    finally:
        if sink is not None:
            sink.close()
    assert _app_part(out) == APP_SAW
    assert out["shutdown"] is False
    assert out["telemetry_errors"] == {}


@pytest.mark.parametrize("where", ["refusing", "blackhole"])
def test_interpreter_exit_against_a_down_endpoint(where: str) -> None:
    """No shutdown(): the interpreter exits (the subprocess timeout of 120 s is the bound)
    after the application printed what it saw."""
    sink = OtlpSink(mode="blackhole") if where == "blackhole" else None
    endpoint = sink.endpoint if sink is not None else refusing_endpoint()
    try:
        out = _scenario({"otlp_endpoint": endpoint, "cohorts": COHORTS}, {}, "exit")
    finally:
        if sink is not None:
            sink.close()
    assert out["runs"] == APP_SAW["runs"]
    assert "shutdown" not in out
