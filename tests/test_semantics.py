"""The scope model (docs/concepts.md), pinned to exact values for scripted scenarios."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import agentrel
from agentrel import testing
from agentrel._catalogue import (
    ABSORBED,
    AGENT,
    COHORT,
    DISPOSITION,
    ERROR_TYPE,
    OUTCOME,
    TOKEN_TYPE,
    TOOL,
)

RD = "agentrel.run.retry_depth"
RA = "agentrel.run.attempts"
AMP = "agentrel.run.token_amplification"
REC = "agentrel.run.recovery_time"
TA = "agentrel.tool.attempts"
TF = "agentrel.tool.failures"
TOK = "agentrel.tokens"
DUR = "gen_ai.execute_tool.duration"


def script(*steps: Any) -> Callable[[], Any]:
    """A tool body that plays ``steps`` in order: an exception instance is raised, anything
    else is returned."""
    it: Iterator[Any] = iter(steps)

    def body() -> Any:
        step = next(it)
        if isinstance(step, BaseException):
            raise step
        return step

    return body


def test_clean_run_is_success(cap: testing.Capture) -> None:
    """A run whose two tool calls succeed first time: success, depth 0, 2 attempts."""

    @agentrel.tool
    def search(q: str) -> str:
        return q.upper()

    with agentrel.run("support") as run:
        assert search("a") == "A"
        assert search("b") == "B"
    assert (run.outcome, run.retry_depth, run.attempts) == ("success", 0, 2)
    h = cap.histogram(RD, {AGENT: "support", OUTCOME: "success", COHORT: "none"})
    assert (h.count, h.sum, h.buckets) == (1, 0, {0.0: 1})
    assert cap.histogram(RA, {OUTCOME: "success"}).sum == 2
    calls = cap.histogram(TA, {TOOL: "search", OUTCOME: "success"})
    assert (calls.count, calls.sum) == (2, 2)
    assert cap.points(TF) == []
    assert cap.histogram(REC).count == 0


def test_agent_loop_recovery(cap: testing.Capture) -> None:
    """Tool raises, the agent calls it again, the run succeeds: recovered, depth 1, absorbed."""
    body = script(TimeoutError("slow"), "ok")

    @agentrel.tool
    def lookup() -> Any:
        return body()

    with agentrel.run("support") as run:
        try:
            lookup()
        except TimeoutError:
            pass
        assert lookup() == "ok"
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 2)
    assert cap.histogram(RD, {OUTCOME: "recovered"}).sum == 1
    assert cap.counter(TF, {TOOL: "lookup", ERROR_TYPE: "TimeoutError", ABSORBED: "true"}) == 1
    assert cap.counter(TF, {ABSORBED: "false"}) == 0
    assert cap.histogram(TA, {TOOL: "lookup", OUTCOME: "failed"}).count == 1
    assert cap.histogram(TA, {TOOL: "lookup", OUTCOME: "success"}).count == 1
    assert cap.histogram(DUR, {TOOL: "lookup", ERROR_TYPE: "TimeoutError"}).count == 1


def test_failing_run_marks_failures_not_absorbed(cap: testing.Capture) -> None:
    """The same failures in a run that then fails carry absorbed=false; the run tried again
    after a failure, so it is exhausted."""
    body = script(TimeoutError(), ConnectionError())

    @agentrel.tool
    def lookup() -> Any:
        return body()

    with pytest.raises(ConnectionError), agentrel.run("support") as run:
        try:
            lookup()
        except TimeoutError:
            pass
        lookup()
    assert (run.outcome, run.retry_depth, run.attempts) == ("exhausted", 2, 2)
    assert cap.counter(TF, {ABSORBED: "false"}) == 2
    assert cap.counter(TF, {ABSORBED: "true"}) == 0
    assert cap.histogram(RD, {OUTCOME: "exhausted"}).sum == 2


def test_failed_without_recovery(cap: testing.Capture) -> None:
    """One failing call and the run gives up at once: failed, not exhausted."""

    @agentrel.tool
    def charge() -> None:
        raise PermissionError("no")

    with pytest.raises(PermissionError), agentrel.run("billing") as run:
        charge()
    assert (run.outcome, run.retry_depth) == ("failed", 1)
    assert cap.histogram(RD, {OUTCOME: "failed"}).count == 1
    assert cap.histogram(TA, {OUTCOME: "failed"}).count == 1


def test_run_failing_by_itself_has_depth_zero(cap: testing.Capture) -> None:
    """A run body that raises with no call inside: failed, depth 0, no tool failures."""
    with pytest.raises(KeyError), agentrel.run("x") as run:
        raise KeyError("k")
    assert (run.outcome, run.retry_depth, run.attempts) == ("failed", 0, 0)
    assert cap.points(TF) == []
    [span] = cap.spans("invoke_agent x")
    assert span.attributes[ERROR_TYPE] == "KeyError"


def test_exception_object_is_the_same(cap: testing.Capture) -> None:
    """The very exception object the tool raised reaches the caller."""
    err = ValueError("mine")

    @agentrel.tool
    def t() -> None:
        raise err

    with agentrel.run("r"):
        with pytest.raises(ValueError) as info:
            t()
    assert info.value is err


def test_amplification_two_calls_first_rejected(cap: testing.Capture) -> None:
    """Two calls of 150 tokens each, the first rejected by a validator: amplification 2.0."""

    @agentrel.llm(model="m1", provider="sim")
    def ask() -> str:
        agentrel.record_tokens(input=100, output=50)
        return "answer"

    with agentrel.run("support") as run:
        ask()
        agentrel.reject("invalid_json")
        ask()
    assert run.outcome == "recovered"
    assert (run.tokens, run.useful_tokens, run.wasted_tokens) == (300, 150, 150)
    assert run.token_amplification == 2.0
    amp = cap.histogram(AMP, {AGENT: "support"})
    assert (amp.count, amp.sum, amp.buckets) == (1, 2.0, {2.0: 1})
    assert cap.counter(TOK, {DISPOSITION: "useful"}) == 150
    assert cap.counter(TOK, {DISPOSITION: "wasted"}) == 150
    assert cap.counter(TOK, {DISPOSITION: "wasted", TOKEN_TYPE: "input"}) == 100
    assert cap.counter(TF, {TOOL: "chat m1", ERROR_TYPE: "rejected", ABSORBED: "true"}) == 1
    assert cap.histogram(RD).sum == 1


def test_failed_run_wastes_all_tokens(cap: testing.Capture) -> None:
    """Every token of a failed run is wasted, including those of its successful calls."""

    @agentrel.llm(model="m1")
    def ask() -> str:
        agentrel.record_tokens(input=10, output=5)
        return "x"

    with pytest.raises(RuntimeError), agentrel.run("r") as run:
        ask()
        agentrel.record_tokens(input=1)  # straight into the run
        raise RuntimeError
    assert (run.useful_tokens, run.wasted_tokens) == (0, 16)
    assert cap.counter(TOK, {DISPOSITION: "wasted"}) == 16
    assert cap.counter(TOK, {DISPOSITION: "useful"}) == 0
    assert cap.histogram(AMP).count == 0


def test_reject_inside_call(cap: testing.Capture) -> None:
    """reject() inside a call fails that call; its value still reaches the caller."""

    @agentrel.tool
    def draft() -> dict[str, str]:
        agentrel.record_tokens(input=7, model="m")
        agentrel.reject("too_long")
        return {"text": "..."}

    with agentrel.run("r") as run:
        assert draft() == {"text": "..."}
    assert (run.outcome, run.retry_depth, run.wasted_tokens) == ("recovered", 1, 7)
    assert cap.histogram(TA, {TOOL: "draft", OUTCOME: "failed"}).count == 1
    assert cap.counter(TF, {ERROR_TYPE: "rejected"}) == 1


def test_reject_with_nothing_to_reject_is_ignored(
    cap: testing.Capture, caplog: pytest.LogCaptureFixture
) -> None:
    """reject() in a run with no finished call changes nothing and warns once."""
    with agentrel.run("r") as run:
        agentrel.reject()
        agentrel.reject()
    assert (run.outcome, run.retry_depth) == ("success", 0)
    assert (
        sum("nothing" in r.message or "no successful call" in r.message for r in caplog.records)
        == 1
    )


def test_failure_when_flags_result(cap: testing.Capture) -> None:
    """A result flagged by failure_when is a failure; the value is returned unchanged."""
    results = script({"error": "rate limited"}, {"rows": 3})

    @agentrel.tool(failure_when=lambda r: "error" in r)
    def query() -> Any:
        return results()

    with agentrel.run("r") as run:
        assert query() == {"error": "rate limited"}
        assert query() == {"rows": 3}
    assert (run.outcome, run.retry_depth) == ("recovered", 1)
    assert cap.counter(TF, {ERROR_TYPE: "result_flagged", ABSORBED: "true"}) == 1


def test_tool_outside_run_records_call_metrics_only(cap: testing.Capture) -> None:
    """Outside a run: call metrics only; the call's own fate decides absorption."""
    body = script(OSError(), "fine")

    @agentrel.tool
    def t() -> Any:
        agentrel.record_tokens(output=3, model="m")
        return body()

    with pytest.raises(OSError):
        t()
    assert t() == "fine"
    assert cap.points(RD) == [] and cap.points(RA) == []
    assert cap.histogram(TA).count == 2
    assert cap.counter(TF, {ABSORBED: "false"}) == 1
    assert cap.counter(TOK, {DISPOSITION: "wasted"}) == 3
    assert cap.counter(TOK, {DISPOSITION: "useful"}) == 3
    assert all(AGENT not in a for a in cap.label_sets(TOK))


def test_nested_failure_counted_once(cap: testing.Capture) -> None:
    """An exception propagating out of an inner tool through an outer one is one failure."""

    @agentrel.tool
    def inner() -> None:
        raise TimeoutError

    @agentrel.tool
    def outer() -> None:
        inner()

    with pytest.raises(TimeoutError), agentrel.run("r") as run:
        outer()
    assert run.retry_depth == 1
    assert cap.counter(TF) == 1
    assert cap.counter(TF, {TOOL: "inner"}) == 1
    assert cap.histogram(TA, {TOOL: "outer", OUTCOME: "failed"}).count == 1


def test_nested_recovery_makes_outer_recovered(cap: testing.Capture) -> None:
    """An outer tool that absorbs an inner failure is recovered, not success."""

    @agentrel.tool
    def flaky() -> None:
        raise TimeoutError

    @agentrel.tool
    def robust() -> str:
        try:
            flaky()
        except TimeoutError:
            return "cached"
        return "fresh"

    with agentrel.run("r") as run:
        assert robust() == "cached"
    assert (run.outcome, run.retry_depth) == ("recovered", 1)
    assert cap.histogram(TA, {TOOL: "robust", OUTCOME: "recovered"}).count == 1


def test_recovery_time_and_delay_exact(cap: testing.Capture, clock: Any) -> None:
    """Recovery time = failed attempts' durations + backoff waits, to the second."""
    from agentrel.instrumentation import current_call

    @agentrel.tool
    def slow() -> str:
        call = current_call()
        assert call is not None
        clock.advance(2.0)
        call.attempt_failed(TimeoutError())
        call.retry_wait(0.5)
        call.next_attempt()
        clock.advance(1.0)
        return "ok"

    with agentrel.run("r") as run:
        slow()
    assert run.recovery_time == 2.5
    rec = cap.histogram(REC, {OUTCOME: "recovered"})
    assert (rec.count, rec.sum) == (1, 2.5)
    assert cap.histogram("agentrel.retry.delay", {TOOL: "slow"}).sum == 0.5
    assert cap.histogram(TA, {TOOL: "slow", OUTCOME: "recovered"}).sum == 2
    assert cap.histogram(DUR, {TOOL: "slow"}).sum == 3.0


def test_cohort_allowlist(cap: testing.Capture) -> None:
    """Allowed cohorts pass, others become 'other', none given becomes 'none'."""
    agentrel.configure(
        cohorts=["enterprise", "smb"],
        tracer_provider=cap.tracer_provider,
        meter_provider=cap.meter_provider,
    )
    try:
        for c in ("enterprise", "user-42", None):
            with agentrel.run("r", cohort=c):
                pass
        cohorts = sorted(a[COHORT] for a in cap.label_sets(RD))
        assert cohorts == ["enterprise", "none", "other"]
    finally:
        agentrel.current_configuration().shutdown()  # type: ignore[union-attr]


def test_token_budget_ratio(cap: testing.Capture) -> None:
    """spend / budget on the handle and the run span."""
    with agentrel.run("r", token_budget=400) as run:
        agentrel.record_tokens(input=300, output=200)
    assert run.budget_ratio == 1.25
    [span] = cap.spans("invoke_agent r")
    assert span.attributes["agentrel.run.token_budget_ratio"] == 1.25


def test_live_figures_during_run(cap: testing.Capture) -> None:
    """The handle shows attempts and depth as they happen; outcome only at the end."""

    @agentrel.tool
    def bad() -> None:
        raise ValueError

    with agentrel.run("r") as run:
        assert agentrel.current_run() is run
        with pytest.raises(ValueError):
            bad()
        assert (run.attempts, run.retry_depth, run.outcome) == (1, 1, None)
    assert agentrel.current_run() is None
    assert run.outcome == "recovered"


def test_failed_attempts_stay_in_trace(cap: testing.Capture, clock: Any) -> None:
    """A recovered call's span keeps its failed attempt as an event with error.type."""
    from agentrel.instrumentation import current_call

    @agentrel.tool
    def t() -> str:
        call = current_call()
        assert call is not None
        call.attempt_failed(ConnectionError())
        call.retry_wait(0.25)
        call.next_attempt()
        return "ok"

    with agentrel.run("r"):
        t()
    [span] = cap.spans("execute_tool t")
    events = [(e.name, dict(e.attributes)) for e in span.events]
    assert [e[0] for e in events] == ["agentrel.attempt", "agentrel.attempt"]
    assert events[0][1][ERROR_TYPE] == "ConnectionError"
    assert events[0][1]["agentrel.attempt.number"] == 1
    assert events[1][1]["agentrel.attempt.number"] == 2
    assert events[1][1]["agentrel.retry.delay"] == 0.25
    assert span.attributes[OUTCOME] == "recovered"
    assert span.attributes["agentrel.call.attempts"] == 2
    [run_span] = cap.spans("invoke_agent r")
    assert span.parent.span_id == run_span.context.span_id
    assert run_span.attributes["agentrel.run.retry_depth"] == 1


# --- property: the model's counts for arbitrary scripted agent loops ---------------------------
steps = st.lists(st.sampled_from(["ok", "raise", "flag"]), min_size=0, max_size=12)


@settings(max_examples=60, deadline=None)
@given(plan=steps, run_fails=st.booleans())
def test_scripted_loops_property(plan: list[str], run_fails: bool) -> None:
    """For any sequence of tool outcomes: depth = failures, attempts = calls, failures are
    absorbed exactly when the run succeeds, and the outcome follows docs/concepts.md."""
    it = iter(plan)

    @agentrel.tool(failure_when=lambda r: r == "flag")
    def step() -> str:
        s = next(it)
        if s == "raise":
            raise RuntimeError
        return s

    with testing.capture() as cap:
        try:
            with agentrel.run("p") as run:
                for _ in plan:
                    try:
                        step()
                    except RuntimeError:
                        pass
                if run_fails:
                    raise LookupError
        except LookupError:
            pass
        failures = sum(s != "ok" for s in plan)
        assert run.retry_depth == failures
        assert run.attempts == len(plan)
        assert cap.counter(TF) == failures
        absorbed = "false" if run_fails else "true"
        assert cap.counter(TF, {ABSORBED: absorbed}) == failures
        first_failure = next((i for i, s in enumerate(plan) if s != "ok"), None)
        retried = first_failure is not None and first_failure < len(plan) - 1
        if run_fails:
            expected = "exhausted" if retried else "failed"
        else:
            expected = "recovered" if failures else "success"
        assert run.outcome == expected
        assert cap.histogram(RD, {OUTCOME: expected}).sum == failures


# --- the same scenarios, async ------------------------------------------------------------------
def test_async_agent_loop_recovery_exact(cap: testing.Capture) -> None:
    """Async tools in an async run: recovered, depth 2, 3 attempts, amplification 3.0."""
    import asyncio

    body = script(TimeoutError(), ConnectionError(), "ok")

    @agentrel.tool
    async def fetch() -> Any:
        await asyncio.sleep(0)
        agentrel.record_tokens(input=10, output=10, model="m")
        return body()

    async def main() -> agentrel.Run:
        async with agentrel.run("async-agent", cohort=None) as run:
            for _ in range(3):
                try:
                    await fetch()
                    break
                except (TimeoutError, ConnectionError):
                    continue
        return run

    run = asyncio.run(main())
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 2, 3)
    assert (run.useful_tokens, run.wasted_tokens, run.token_amplification) == (20, 40, 3.0)
    assert cap.counter(TF, {ABSORBED: "true"}) == 2
    assert cap.counter(TF, {ERROR_TYPE: "ConnectionError"}) == 1
    h = cap.histogram(RD, {AGENT: "async-agent", OUTCOME: "recovered"})
    assert (h.count, h.sum, h.buckets) == (1, 2, {2.0: 1})
    amp = cap.histogram(AMP)
    assert (amp.count, amp.sum, amp.buckets) == (1, 3.0, {4.0: 1})
    a = cap.histogram(RA)
    assert (a.count, a.sum, a.buckets) == (1, 3, {4.0: 1})


def test_failed_attempt_tokens_are_wasted_even_when_the_call_recovers(
    cap: testing.Capture,
) -> None:
    """Tokens spent in a failed attempt are wasted; the recovering attempt's are useful."""
    from agentrel.instrumentation import current_call

    @agentrel.llm(model="m")
    def ask() -> str:
        call = current_call()
        assert call is not None
        agentrel.record_tokens(input=80, output=20)  # attempt 1: thrown away
        call.attempt_failed(TimeoutError())
        call.next_attempt()
        agentrel.record_tokens(input=80, output=20)  # attempt 2: the answer
        return "ok"

    with agentrel.run("r") as run:
        ask()
    assert (run.useful_tokens, run.wasted_tokens, run.token_amplification) == (100, 100, 2.0)
    assert cap.counter(TOK, {DISPOSITION: "wasted", TOKEN_TYPE: "input"}) == 80
    assert cap.histogram(AMP).sum == 2.0


def test_child_tokens_follow_the_parent_attempt(cap: testing.Capture) -> None:
    """A nested call's useful tokens belong to the parent's attempt in progress: wasted if
    that attempt fails."""
    from agentrel.instrumentation import current_call

    @agentrel.llm(model="m")
    def think() -> str:
        agentrel.record_tokens(output=10)
        return "plan"

    @agentrel.tool
    def plan_and_act() -> str:
        call = current_call()
        assert call is not None
        think()
        call.attempt_failed(ConnectionError())  # the act failed: the plan is thrown away
        call.next_attempt()
        think()
        return "done"

    with agentrel.run("r") as run:
        plan_and_act()
    assert (run.useful_tokens, run.wasted_tokens) == (10, 10)


def test_a_run_inside_a_tool_is_an_independent_run(cap: testing.Capture) -> None:
    """A sub-agent (a run opened inside a tool of another run) keeps its own figures: its
    absorbed failure and tokens are not the outer run's; its span is the tool span's child."""

    @agentrel.tool
    def lookup() -> str:
        agentrel.record_tokens(input=30, output=10, model="m")
        return body()

    body = script(TimeoutError(), "found")

    @agentrel.tool
    def delegate() -> str:
        with agentrel.run("researcher"):
            try:
                lookup()
            except TimeoutError:
                pass
            return str(lookup())

    with agentrel.run("support"):
        assert delegate() == "found"

    inner = cap.histogram(RD, {AGENT: "researcher", OUTCOME: "recovered"})
    assert (inner.count, inner.sum) == (1, 1)
    outer = cap.histogram(RD, {AGENT: "support", OUTCOME: "success"})
    assert (outer.count, outer.sum) == (1, 0)
    assert cap.histogram(RA, {AGENT: "researcher"}).sum == 2
    assert cap.histogram(RA, {AGENT: "support"}).sum == 1
    assert cap.counter(TOK, {AGENT: "researcher", DISPOSITION: "wasted"}) == 40
    assert cap.counter(TOK, {AGENT: "researcher", DISPOSITION: "useful"}) == 40
    assert cap.counter(TOK, {AGENT: "support"}) == 0
    assert cap.counter(TF, {TOOL: "lookup", ABSORBED: "true"}) == 1
    [delegate_span] = cap.spans("execute_tool delegate")
    [researcher] = cap.spans("invoke_agent researcher")
    assert researcher.parent is not None
    assert researcher.parent.span_id == delegate_span.context.span_id
