"""The demo's later verdicts (``agentrel._cli.verdicts``): which runs are judged, when each
verdict arrives, and what it says, against scripted runs whose outcomes are known."""

from __future__ import annotations

import pytest

import agentrel
from agentrel import _catalogue as cat
from agentrel import testing
from agentrel._cli import verdicts


def _run(outcome: str) -> agentrel.Run:
    """A finished run with this outcome (``success``, ``recovered`` or ``failed``)."""

    @agentrel.tool
    def draft() -> str:
        return "draft"

    try:
        with agentrel.run("support", cohort="smb") as run:
            if outcome == "recovered":
                draft()
                agentrel.reject("re-prompted")
            elif outcome == "failed":
                raise KeyError("x")
    except KeyError:
        pass
    assert run.outcome == outcome
    return run


def test_verdicts_arrive_delay_runs_later_with_the_scenarios_odds(
    cap: testing.Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every passed run judged (share 1), clean ones always correct, recovered ones always
    wrong, failed ones never judged: each verdict is sent exactly DELAY runs after its run."""
    monkeypatch.setattr(verdicts, "JUDGED_SHARE", 1.0)
    monkeypatch.setitem(verdicts.WRONG, "degraded", (0.0, 1.0))
    agentrel.configure(
        cohorts=["smb"],
        verdict_sources=verdicts.SOURCES,
        tracer_provider=cap.tracer_provider,
        meter_provider=cap.meter_provider,
    )
    judges = verdicts.Judges("degraded", seed=7)
    outcomes = ["success"] * 6 + ["recovered"] * 3 + ["failed"]  # runs 0..9
    sent = []
    for index in range(10 + verdicts.DELAY):
        run = _run(outcomes[index] if index < 10 else "failed")
        judges.after(index, run)
        sent.append(int(cap.counter("agentrel.verdicts")))
    # run i's verdict arrives at index i + DELAY: none before, one more per passed run after
    assert sent[: verdicts.DELAY] == [0] * verdicts.DELAY
    assert sent[verdicts.DELAY :] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 9]
    by_outcome = {(a[cat.OUTCOME], a[cat.VERDICT]): 0 for a in cap.label_sets("agentrel.verdicts")}
    for a, p in cap.points("agentrel.verdicts"):
        by_outcome[(a[cat.OUTCOME], a[cat.VERDICT])] += p.value
        assert a[cat.VERDICT_SOURCE] in verdicts.SOURCES
    assert by_outcome == {("success", "correct"): 6, ("recovered", "wrong"): 3}
    assert len(cap.spans("verdict support")) == 9
    assert agentrel.telemetry_errors() == {}
