"""Verdicts after the run: ``Run.ref`` and ``agentrel.verdict``: exact counter points, the
``gen_ai.evaluation.result`` event, its span in the run's trace, strict ref parsing, bounded
labels, and a verdict that never raises into the host but for a bad ref."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

import agentrel
from agentrel import _catalogue as cat
from agentrel import testing
from pyproc import run_py

#: where the agentrel this test imported lives: the other interpreter imports the same one
SRC = Path(agentrel.__file__).resolve().parents[1]
VERDICTS = "agentrel.verdicts"


def _runs(outcomes: dict[str, str]) -> dict[str, agentrel.Run]:
    """One finished run per key: ``success``, ``recovered`` (a retried tool) or ``failed``."""
    calls = {"n": 0}

    @agentrel.tool
    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] % 2:
            raise TimeoutError
        return "ok"

    out = {}
    for key, outcome in outcomes.items():
        try:
            with agentrel.run("support", cohort="smb") as run:
                if outcome == "recovered":
                    for _ in range(2):
                        try:
                            flaky()
                            break
                        except TimeoutError:
                            pass
                elif outcome == "failed":
                    raise KeyError("x")
        except KeyError:
            pass
        assert run.outcome == outcome
        out[key] = run
    return out


def test_ref_round_trips_what_labels_the_verdict(cap: testing.Capture) -> None:
    """A finished run's ref is a short base64url string carrying agent, cohort, outcome at
    close and the run span's trace and span ids; ``None`` while the run is open."""
    agentrel.configure(cohorts=["smb"], tracer_provider=cap.tracer_provider,
                       meter_provider=cap.meter_provider)  # fmt: skip
    with agentrel.run("support", cohort="smb") as run:
        assert run.ref is None
    ref = run.ref
    assert ref is not None and len(ref) == 52  # 27 fixed bytes + 1 + 7 + 1 + 3 = 39 bytes
    assert set(ref) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    span = cap.spans("invoke_agent support")[0]
    parsed = agentrel.RunRef.parse(ref)
    assert parsed == agentrel.RunRef(
        "support", "smb", "success", span.context.trace_id, span.context.span_id, True
    )
    assert parsed.encode() == ref == str(parsed)


def test_verdicts_count_by_agent_cohort_outcome_verdict_source(cap: testing.Capture) -> None:
    """Five verdicts on three runs give exactly these counter points; the verdict and source
    are bounded by their allowlists (unknown: ``other``, no source: ``none``)."""
    agentrel.configure(
        cohorts=["smb"],
        verdict_sources=["thumbs", "judge"],
        verdicts=["partial"],
        tracer_provider=cap.tracer_provider,
        meter_provider=cap.meter_provider,
    )
    runs = _runs({"a": "success", "b": "recovered", "c": "success"})
    agentrel.verdict(runs["a"].ref, "wrong", source="thumbs")
    agentrel.verdict(runs["b"].ref, "wrong", source="thumbs")
    agentrel.verdict(runs["b"].ref, "partial", source="judge")
    agentrel.verdict(runs["c"].ref, "correct", source="ticket-system-7")  # not allowlisted
    agentrel.verdict(runs["c"].ref, "great!")  # not allowlisted, no source
    base = {cat.AGENT: "support", cat.COHORT: "smb"}
    got = sorted(
        (a[cat.OUTCOME], a[cat.VERDICT], a[cat.VERDICT_SOURCE], p.value)
        for a, p in cap.points(VERDICTS)
        if all(a[k] == v for k, v in base.items())
    )
    assert got == [
        ("recovered", "partial", "judge", 1),
        ("recovered", "wrong", "thumbs", 1),
        ("success", "correct", "other", 1),
        ("success", "other", "none", 1),
        ("success", "wrong", "thumbs", 1),
    ]
    assert {frozenset(a) for a in cap.label_sets(VERDICTS)} == {frozenset(cat.VERDICTS.attributes)}
    assert agentrel.telemetry_errors() == {}


def test_the_evaluation_event_lives_in_the_runs_trace(cap: testing.Capture) -> None:
    """The verdict's span is a child of the run's span (same trace id, parent = run span,
    and a link to it) and carries one ``gen_ai.evaluation.result`` event with the semconv
    attributes; the explanation only with capture_content, through redact."""
    agentrel.configure(
        verdict_sources=["judge"],
        capture_content=True,
        redact=lambda s: s.replace("secret", "***"),
        tracer_provider=cap.tracer_provider,
        meter_provider=cap.meter_provider,
    )
    run = _runs({"r": "recovered"})["r"]
    agentrel.verdict(run.ref, "wrong", source="judge", score=0.25, explanation="secret answer")
    run_span = cap.spans("invoke_agent support")[0]
    (span,) = cap.spans("verdict support")
    assert span.context.trace_id == run_span.context.trace_id
    assert span.parent.span_id == run_span.context.span_id
    assert [(link.context.trace_id, link.context.span_id) for link in span.links] == [
        (run_span.context.trace_id, run_span.context.span_id)
    ]
    assert dict(span.attributes) == {
        cat.AGENT: "support",
        cat.COHORT: "other",
        cat.VERDICT_RUN_OUTCOME: "recovered",
    }
    assert [(e.name, dict(e.attributes)) for e in span.events] == [
        (
            "gen_ai.evaluation.result",
            {
                "gen_ai.evaluation.name": "judge",
                "gen_ai.evaluation.score.label": "wrong",
                "gen_ai.evaluation.score.value": 0.25,
                "gen_ai.evaluation.explanation": "*** answer",
            },
        )
    ]


def test_no_explanation_without_capture_content(cap: testing.Capture) -> None:
    """Without capture_content the explanation (free text) is never recorded."""
    run = _runs({"r": "success"})["r"]
    agentrel.verdict(run.ref, "correct", explanation="the user said thanks")
    (span,) = cap.spans("verdict support")
    assert [dict(e.attributes) for e in span.events] == [
        {"gen_ai.evaluation.name": "none", "gen_ai.evaluation.score.label": "correct"}
    ]


def test_a_verdict_from_another_process_hours_later(cap: testing.Capture) -> None:
    """A ref made in another interpreter is judged here: the counter carries that run's
    labels and the verdict's span joins that run's trace."""
    out = run_py(
        """
        import agentrel
        from agentrel import testing
        agentrel.configure(cohorts=["enterprise"])
        with testing.capture() as cap:
            with agentrel.run("refunds", cohort="enterprise") as run:
                pass
            span = cap.spans()[0]
            ids = format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")
            print(run.ref, *ids)
        """,
        PYTHONPATH=str(SRC),
    )
    ref, trace_hex, span_hex = out.split()
    agentrel.configure(cohorts=["enterprise"], verdict_agents=["refunds"],
                       tracer_provider=cap.tracer_provider,
                       meter_provider=cap.meter_provider)  # fmt: skip
    agentrel.verdict(ref, "wrong", source=None)
    assert cap.counter(VERDICTS, {cat.AGENT: "refunds", cat.COHORT: "enterprise",
                                  cat.OUTCOME: "success", cat.VERDICT: "wrong",
                                  cat.VERDICT_SOURCE: "none"}) == 1  # fmt: skip
    (span,) = cap.spans("verdict refunds")
    assert format(span.context.trace_id, "032x") == trace_hex
    assert format(span.parent.span_id, "016x") == span_hex


def test_a_forged_agent_name_is_other(cap: testing.Capture) -> None:
    """A ref's agent name is a label only when a ref was made for that agent here or it is in
    ``configure(verdict_agents=...)``: 50 forged names give one series, agent ``other``."""
    with agentrel.run("support") as run:
        pass
    real = run.ref
    assert real is not None
    for i in range(50):
        agentrel.verdict(agentrel.RunRef(f"sk-live-{i:04d}", "none", "success").encode(), "wrong")
    agentrel.verdict(real, "wrong")
    assert sorted(cap.label_sets(VERDICTS), key=lambda a: a[cat.AGENT]) == [
        {cat.AGENT: "other", cat.COHORT: "none", cat.OUTCOME: "success",
         cat.VERDICT: "wrong", cat.VERDICT_SOURCE: "none"},
        {cat.AGENT: "support", cat.COHORT: "none", cat.OUTCOME: "success",
         cat.VERDICT: "wrong", cat.VERDICT_SOURCE: "none"},
    ]  # fmt: skip
    assert cap.counter(VERDICTS, {cat.AGENT: "other"}) == 50
    assert {s.name for s in cap.spans() if s.name.startswith("verdict ")} == {
        "verdict other",
        "verdict support",
    }


def test_a_ref_cohort_outside_this_allowlist_is_other(cap: testing.Capture) -> None:
    """A ref's cohort is bounded again by this process's allowlist (a stored ref can be
    edited): a cohort this process does not allow is recorded as ``other``."""
    agentrel.configure(verdict_agents=["support"], tracer_provider=cap.tracer_provider,
                       meter_provider=cap.meter_provider)  # fmt: skip
    forged = agentrel.RunRef("support", "user-12345", "success").encode()
    agentrel.verdict(forged, "wrong")
    assert cap.label_sets(VERDICTS) == [
        {cat.AGENT: "support", cat.COHORT: "other", cat.OUTCOME: "success",
         cat.VERDICT: "wrong", cat.VERDICT_SOURCE: "none"}
    ]  # fmt: skip
    (span,) = cap.spans("verdict support")
    assert span.parent is None and list(span.links) == []  # no trace in the ref: a root


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


GOOD = agentrel.RunRef("support", "smb", "recovered", 1, 2, True).encode()
GOOD_RAW = base64.urlsafe_b64decode(GOOD + "=" * (-len(GOOD) % 4))


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param(None, id="not-a-str"),
        pytest.param(b"AQAB", id="bytes"),
        pytest.param("", id="empty"),
        pytest.param(GOOD + "=", id="padding"),
        pytest.param(GOOD[:-1] + "+", id="not-url-alphabet"),
        pytest.param("A" * 2000, id="too-long"),
        pytest.param(GOOD[:-1], id="truncated"),
        pytest.param(_b64(b"\x02" + GOOD_RAW[1:]), id="future-version"),
        pytest.param(_b64(GOOD_RAW[:1] + b"\x09" + GOOD_RAW[2:]), id="unknown-outcome"),
        pytest.param(_b64(GOOD_RAW[:2] + b"\x80" + GOOD_RAW[3:]), id="unknown-flags"),
        pytest.param(_b64(GOOD_RAW + b"\x00"), id="trailing-bytes"),
        pytest.param(_b64(GOOD_RAW[:27] + b"\x00" + GOOD_RAW[28:]), id="empty-agent"),
        pytest.param(_b64(GOOD_RAW[:28] + b"\xff" + GOOD_RAW[29:]), id="agent-not-utf8"),
    ],
)
def test_a_bad_ref_is_a_value_error(cap: testing.Capture, ref: object) -> None:
    """Strict parsing: every malformed ref is a ValueError, and nothing is recorded."""
    with pytest.raises(ValueError):
        agentrel.verdict(ref, "wrong")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        agentrel.RunRef.parse(ref)
    assert cap.points(VERDICTS) == [] and cap.spans() == []


def test_non_canonical_base64_is_refused() -> None:
    """Two strings decoding to the same bytes are not both refs: the last character's
    unused bits must be zero."""
    ref = agentrel.RunRef("support", "smbx", "success").encode()  # 40 bytes: 4 spare bits
    raw = base64.urlsafe_b64decode(ref + "==")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    other = ref[:-1] + alphabet[alphabet.index(ref[-1]) + 1]
    assert len(ref) == 54 and base64.urlsafe_b64decode(other + "==") == raw
    with pytest.raises(ValueError, match="canonical"):
        agentrel.RunRef.parse(other)


def test_a_verdict_never_raises_into_the_host_otherwise(cap: testing.Capture) -> None:
    """A verdict that is not a str, a bad score, a failing exporter: counted, not raised."""
    run = _runs({"r": "success"})["r"]
    assert agentrel.verdict(run.ref, 3) is None  # type: ignore[arg-type]
    assert agentrel.telemetry_errors() == {"verdict": 1}
    agentrel.verdict(run.ref, "wrong", score="high")  # type: ignore[arg-type]
    assert agentrel.telemetry_errors() == {"verdict": 1, "verdict.score": 1}
    assert cap.counter(VERDICTS) == 1  # the verdict counted, the bad score dropped
    (span,) = cap.spans("verdict support")
    assert cat.EVALUATION_SCORE_VALUE not in span.events[0].attributes


def test_unconfigured_verdict_is_a_no_op() -> None:
    """With no provider anywhere, a good ref is accepted and nothing happens."""
    ref = agentrel.RunRef("support", "none", "success").encode()
    assert agentrel.verdict(ref, "wrong", source="thumbs") is None
    assert agentrel.telemetry_errors() == {}


def test_configure_validates_the_allowlists() -> None:
    """Bad allowlists are a TypeError at configure(), as for cohorts."""
    with pytest.raises(TypeError):
        agentrel.configure(verdicts="wrong")
    with pytest.raises(TypeError):
        agentrel.configure(verdict_sources=["thumbs", ""])
