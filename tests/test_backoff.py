"""backoff integration: real backoff decorators with agentrel's ready-made handlers."""

from __future__ import annotations

from typing import Any

import backoff
import pytest

import agentrel
from agentrel import testing
from agentrel.integrations.backoff import handlers, on_backoff, on_giveup, on_success

TOOL_ATTEMPTS = "agentrel.tool.attempts"
FAILURES = "agentrel.tool.failures"
DELAY = "agentrel.retry.delay"


class Script:
    def __init__(self, *steps: Any, final: Any = "ok") -> None:
        self.steps = list(steps)
        self.final = final
        self.calls = 0
        self.raised: list[BaseException] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.steps:
            step = self.steps.pop(0)
            if isinstance(step, BaseException):
                self.raised.append(step)
                raise step
            return step
        return self.final


def as_function(script: Any) -> Any:
    """A plain function calling ``script`` (backoff's functools.wraps wants a function)."""

    def call_script(*args: Any, **kwargs: Any) -> Any:
        return script(*args, **kwargs)

    return call_script


def _on_exc(target: Any, **kw: Any) -> Any:
    kw.setdefault("max_tries", 5)
    return backoff.on_exception(
        backoff.constant,
        (TimeoutError, ConnectionError),
        interval=0.01,
        jitter=None,
        **handlers(),
        **kw,
    )(as_function(target))


# Recovered and exhausted retries, sync and async: tests/test_retry_contract.py.


def test_giveup_on_first_attempt_is_failed(cap: testing.Capture) -> None:
    """giveup= says no retry: failed, one attempt, no wait."""
    script = Script(TimeoutError())
    search = agentrel.tool("search")(_on_exc(script, giveup=lambda e: True))
    with pytest.raises(TimeoutError), agentrel.run("support") as run:
        search()
    assert (run.outcome, run.retry_depth, run.attempts) == ("failed", 1, 1)
    assert cap.histogram(DELAY).count == 0


def test_on_predicate_counts_result_flagged(cap: testing.Capture) -> None:
    """on_predicate retries flagged values: result_flagged failures, then recovered."""
    script = Script(None, None, final="ok")
    lookup = agentrel.tool("lookup")(
        backoff.on_predicate(
            backoff.constant, interval=0.01, jitter=None, max_tries=5, **handlers()
        )(as_function(script))
    )
    with agentrel.run("support") as run:
        assert lookup() == "ok"
    assert (run.outcome, run.retry_depth) == ("recovered", 2)
    assert cap.counter(FAILURES, {"error.type": "result_flagged"}) == 2


def test_on_predicate_giveup_with_failure_when_is_exhausted(cap: testing.Capture) -> None:
    """Giving up returns the flagged value; the tool's failure_when makes the call exhausted."""
    script = Script(final=None)
    lookup = agentrel.tool("lookup", failure_when=lambda v: v is None)(
        backoff.on_predicate(
            backoff.constant, interval=0.01, jitter=None, max_tries=3, **handlers()
        )(as_function(script))
    )
    with agentrel.run("support") as run:
        assert lookup() is None
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 3, 3)
    h = cap.histogram(TOOL_ATTEMPTS, {"agentrel.outcome": "exhausted"})
    assert (h.count, h.sum) == (1, 3)
    assert cap.counter(FAILURES, {"error.type": "result_flagged"}) == 3


def test_handlers_combine_with_the_applications_own(cap: testing.Capture) -> None:
    """Lists of handlers: the application's run too, agentrel's count."""
    mine: list[int] = []
    script = Script(TimeoutError())
    search = agentrel.tool("search")(
        backoff.on_exception(
            backoff.constant,
            TimeoutError,
            interval=0.01,
            jitter=None,
            on_backoff=[lambda d: mine.append(d["tries"]), on_backoff],
            on_giveup=[on_giveup],
            on_success=[on_success],
        )(as_function(script))
    )
    with agentrel.run("support") as run:
        assert search() == "ok"
    assert mine == [1]
    assert (run.outcome, run.retry_depth) == ("recovered", 1)


def test_tool_inside_backoff_each_attempt_is_a_call(cap: testing.Capture) -> None:
    """@agentrel.tool inside @backoff: same retry depth, but one call per attempt (documented)."""
    script = Script(TimeoutError())
    search = _on_exc(agentrel.tool("search")(script))
    with agentrel.run("support") as run:
        assert search() == "ok"
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 2)
    assert cap.histogram(TOOL_ATTEMPTS, {"agentrel.outcome": "failed"}).count == 1
    assert cap.histogram(TOOL_ATTEMPTS, {"agentrel.outcome": "success"}).count == 1
    d = cap.histogram(DELAY, {"gen_ai.tool.name": f"{__name__}.as_function.<locals>.call_script"})
    assert (d.count, d.sum) == (1, 0.01)
    assert run.recovery_time >= 0.01


def test_handlers_never_break_the_host(cap: testing.Capture) -> None:
    """Malformed details: the handler counts a telemetry error, backoff carries on."""
    with agentrel.run("support"):
        on_backoff({"target": None})
    assert agentrel.telemetry_errors() == {"backoff.on_backoff": 1}
