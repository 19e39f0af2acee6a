"""Series per replica: what a scripted fleet serves on ``/metrics``, family by family, equals
label combinations x (buckets + 3) for a histogram (every bucket bound, +Inf, _sum, _count)
and label combinations for a counter, with the buckets read from the catalogue."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

import agentrel
from agentrel import _catalogue as cat
from agentrel.instrumentation import current_call
from pyproc import run_py


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


#: The demo's loop (src/agentrel/_cli/demo.py) without its clock: the degraded scenario, seed 1,
#: 300 runs (the default 20 runs/s for 15 s), a replica restart every RESTART_EVERY runs; then
#: one scrape of /metrics.
_DEMO = """
import json, sys, urllib.request
sys.path.insert(0, {tests!r})
import agentrel
from agentrel._cli import fleet as fleet_mod
from agentrel._cli.demo import restart_replica
from test_series import _served
cfg = agentrel.configure(prometheus_port=0, cohorts=fleet_mod.COHORTS, prices=fleet_mod.PRICES)
fleet = fleet_mod.Fleet(fleet_mod.SCENARIOS["degraded"], 1)
for i in range({runs}):
    if i and i % fleet_mod.RESTART_EVERY == 0:
        restart_replica()
    fleet.run(i)
with urllib.request.urlopen(cfg.prometheus_url, timeout=10) as resp:
    body = resp.read().decode()
cfg.shutdown()
print(json.dumps(_served(body)))
"""

#: Series the demo serves after 300 runs of seed 1, pinned: the demo is the budget's yardstick.
DEMO_SERIES = 924


def test_the_demo_serves_at_most_1000_series() -> None:
    tests = Path(__file__).resolve().parent
    root = Path(agentrel.__file__).resolve().parent.parent
    out = run_py(_DEMO.format(tests=str(tests), runs=300), PYTHONPATH=str(root))
    served: dict[str, int] = json.loads(out.splitlines()[-1])
    for spec in cat.METRICS:  # whole label combinations only
        assert served.get(spec.name, 0) % series_per_combination(spec) == 0, spec.name
    assert sum(served.values()) == DEMO_SERIES, served
    assert DEMO_SERIES <= 1000
