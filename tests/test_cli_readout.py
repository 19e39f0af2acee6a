"""The demo's figures, pinned: a scripted scenario through the real /metrics registry, read
back by ``Readout`` to exact values."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import agentrel
from agentrel import _catalogue as cat
from agentrel._cli.readout import Readout, quantile_bound
from agentrel._prometheus import registry_for


@pytest.fixture
def registry() -> Iterator[object]:
    """The registry a demo's /metrics serves, with agentrel recording into it."""
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    agentrel.configure(cohorts=["smb", "free"], tracer_provider=TracerProvider(), meter_provider=mp)
    try:
        yield registry_for(reader)
    finally:
        mp.shutdown()  # the autouse reset drops the injected providers and the configuration


def _scenario() -> None:
    """Four runs whose true figures are known:

    run  cohort  tool results          outcome    depth  attempts  tokens useful/wasted
    1    smb     ok                    success    0      1         10 / 0
    2    smb     ok                    success    0      1         10 / 0
    3    free    fail, fail, ok        recovered  2      3         10 / 20
    4    free    fail, then run fails  exhausted  1      2          0 / 20
    """
    plan = iter(["ok", "ok", "fail", "fail", "ok", "fail", "ok"])

    @agentrel.tool(idempotent=False, system="s")
    def step() -> str:
        agentrel.record_tokens(input=10, model="m")
        if next(plan) == "fail":
            raise TimeoutError
        return "ok"

    for cohort in ("smb", "smb"):
        with agentrel.run("a", cohort=cohort):
            step()
    with agentrel.run("a", cohort="free"):
        for _ in range(3):
            try:
                step()
                break
            except TimeoutError:
                pass
    with pytest.raises(RuntimeError), agentrel.run("a", cohort="free"):
        try:
            step()
        except TimeoutError:
            pass
        step()  # succeeds, but the run gives up anyway
        raise RuntimeError("gave up")


def test_readout_figures_are_exact(registry: object) -> None:
    """Every figure the demo prints, against the scenario's known truth."""
    _scenario()
    r = Readout.collect(registry.collect(), lambda agent, cohort: 1.0)  # type: ignore[attr-defined]
    f = r.fleet
    assert f.runs == {"success": 2, "recovered": 1, "exhausted": 1, "failed": 0}
    assert f.total == 4
    assert f.success_rate == 0.75
    assert f.share(cat.SUCCESS) == 0.5
    assert f.surfaced_failures == 1
    assert f.attempts_per_run == (1 + 1 + 3 + 2) / 4
    assert f.attempt_ratio == 1.75  # designed: one attempt per run
    assert f.tokens == {"useful": 30, "wasted": 40}
    assert f.amplification == 70 / 30
    # depths 0, 0, 2, 1: p50 is in the le=0 bucket, p95 and p99 in le=2
    assert (f.depth_quantile(0.5), f.depth_quantile(0.95), f.depth_quantile(0.99)) == (0, 2, 2)
    smb, free = r.cohorts["smb"], r.cohorts["free"]
    assert (smb.total, smb.success_rate, smb.amplification) == (2, 1.0, 1.0)
    assert (free.total, free.success_rate, free.attempts_per_run) == (2, 0.5, 2.5)
    assert r.failures == {"true": 2, "false": 1}
    assert r.failures_by_tool == {"step": 3}
    assert r.unsafe_retries == {"step": 3}  # the agent loop re-called a failed, unsafe tool
    assert r.calls == {("step", "success"): 4, ("step", "failed"): 3}


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        pytest.param(0.5, {0.0: 2, 1.0: 3, 2.0: 4, math.inf: 4}, 0.0, id="p50-first-bucket"),
        pytest.param(0.75, {0.0: 2, 1.0: 3, 2.0: 4, math.inf: 4}, 1.0, id="p75-on-a-boundary"),
        pytest.param(0.99, {0.0: 0, 50.0: 9, math.inf: 10}, 50.0, id="overflow-reports-last-bound"),
        pytest.param(0.5, {0.0: 0, math.inf: 0}, None, id="no-runs"),
        pytest.param(0.5, {}, None, id="no-data"),
    ],
)
def test_quantile_bound(q: float, buckets: dict[float, float], expected: float | None) -> None:
    """The bucket bound holding a quantile, from cumulative le counts."""
    assert quantile_bound(q, buckets) == expected
