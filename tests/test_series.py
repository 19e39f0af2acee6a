"""Series per replica: what a scripted fleet serves on ``/metrics``, family by family, equals
label combinations x (buckets + 3) for a histogram (every bucket bound, +Inf, _sum, _count)
and label combinations for a counter, with the buckets read from the catalogue."""

from __future__ import annotations

import urllib.request
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

import agentrel
from agentrel import _catalogue as cat
from agentrel.instrumentation import current_call


def series_per_combination(spec: cat.MetricSpec) -> int:
    """Series one label combination of ``spec`` costs."""
    if spec.kind == "counter":
        return 1
    assert spec.buckets is not None
    return len(spec.buckets) + 1 + 2  # the bounds, +Inf, _sum, _count


def _served(body: str) -> Counter[str]:
    """Series served per catalogue family (keyed by OpenTelemetry metric name)."""
    by_sample: dict[str, str] = {}
    for spec in cat.METRICS:
        p = spec.prometheus_name
        names = [p] if spec.kind == "counter" else [f"{p}_bucket", f"{p}_sum", f"{p}_count"]
        for n in names:
            by_sample[n] = spec.name
    out: Counter[str] = Counter()
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            if s.name in by_sample:
                out[by_sample[s.name]] += 1
    return out


def _fleet() -> None:
    """Two agents, two allowed cohorts, two tools; one tool fails once and recovers."""

    @agentrel.tool
    def lookup() -> int:
        return 1

    @agentrel.tool
    def flaky() -> int:
        call = current_call()
        assert call is not None
        call.attempt_failed(OSError())
        call.next_attempt()
        return 2

    with agentrel.run("triage", cohort="smb"):
        lookup()
    with agentrel.run("triage", cohort="ent"):
        flaky()
    with agentrel.run("billing", cohort="smb"):
        lookup()
        flaky()
    with agentrel.run("billing", cohort="smb"):
        lookup()


#: The label combinations the fleet above produces, known from the script.
_RUNS = {("triage", "success", "smb"), ("triage", "recovered", "ent")}
_RUNS |= {("billing", "recovered", "smb"), ("billing", "success", "smb")}
COMBINATIONS = {
    cat.RUN_RETRY_DEPTH.name: len(_RUNS),
    cat.RUN_ATTEMPTS.name: len(_RUNS),
    cat.RUN_RECOVERY_TIME.name: 2,  # the two recovered runs
    cat.TOOL_ATTEMPTS.name: 2,  # lookup/success, flaky/recovered
    cat.TOOL_FAILURES.name: 1,  # flaky/OSError/absorbed
    cat.EXECUTE_TOOL_DURATION.name: 2,  # one per tool (no error.type: both calls succeeded)
    cat.FIRST_CALL_DURATION.name: 2,  # one per tool
    cat.INVOKE_AGENT_TOOL_CALLS.name: 2,  # one per agent
    cat.INVOKE_AGENT_INFERENCE_CALLS.name: 2,
}


def test_series_per_family_equal_the_formula() -> None:
    cfg = agentrel.configure(prometheus_port=0, cohorts=["smb", "ent"])
    try:
        _fleet()
        assert cfg.prometheus_url is not None
        with urllib.request.urlopen(cfg.prometheus_url, timeout=10) as resp:
            body = resp.read().decode()
    finally:
        cfg.shutdown()
    served = _served(body)
    expected = {
        name: n * series_per_combination(next(s for s in cat.METRICS if s.name == name))
        for name, n in COMBINATIONS.items()
    }
    assert dict(served) == expected
