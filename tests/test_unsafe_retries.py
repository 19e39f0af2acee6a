"""Retries of tools declared idempotent=False: counted, marked on the span, warned once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import backoff
import pytest
import stamina
import tenacity
from stamina.instrumentation import set_on_retry_hooks

import agentrel
from agentrel import testing
from agentrel.integrations import stamina as agentrel_stamina
from agentrel.integrations import tenacity as agentrel_tenacity
from agentrel.integrations.backoff import handlers

UNSAFE = "agentrel.unsafe_retries"


@pytest.fixture(autouse=True)
def _instrumented() -> Iterator[None]:
    set_on_retry_hooks([])
    agentrel_tenacity.instrument()
    agentrel_stamina.instrument()
    yield
    agentrel_stamina.uninstrument()
    agentrel_tenacity.uninstrument()
    set_on_retry_hooks(None)


def failing_twice() -> Callable[[], str]:
    n = {"calls": 0}

    def charge() -> str:
        n["calls"] += 1
        if n["calls"] <= 2:
            raise TimeoutError("gateway timeout")
        return "charged"

    return charge


def _unsafe_tool(fn: Callable[..., Any]) -> Any:
    return agentrel.tool("charge_card", system="stripe", idempotent=False)(fn)


def _tenacity(fn: Callable[..., Any]) -> Any:
    return tenacity.retry(stop=tenacity.stop_after_attempt(5), sleep=lambda s: None)(fn)


def _stamina(fn: Callable[..., Any]) -> Any:
    return stamina.retry(on=TimeoutError, attempts=5, wait_initial=0.0, wait_jitter=0.0)(fn)


def _backoff(fn: Callable[..., Any]) -> Any:
    return backoff.on_exception(
        backoff.constant, TimeoutError, interval=0, jitter=None, **handlers()
    )(fn)


# (stack, attempt numbers on the unsafe-retry span events): one call with attempts 2 and 3,
# except with the tool inside backoff, where each attempt is a call of its own (attempt 1).
STACKS = [
    pytest.param(lambda f: _unsafe_tool(_tenacity(f)), [2, 3], id="tool-outside-tenacity"),
    pytest.param(lambda f: _tenacity(_unsafe_tool(f)), [2, 3], id="tool-inside-tenacity"),
    pytest.param(lambda f: _unsafe_tool(_stamina(f)), [2, 3], id="tool-outside-stamina"),
    pytest.param(lambda f: _stamina(_unsafe_tool(f)), [2, 3], id="tool-inside-stamina"),
    pytest.param(lambda f: _unsafe_tool(_backoff(f)), [2, 3], id="tool-outside-backoff"),
    pytest.param(lambda f: _backoff(_unsafe_tool(f)), [1, 1], id="tool-inside-backoff"),
]


@pytest.mark.parametrize(("stack", "numbers"), STACKS)
def test_each_retry_library_counts_unsafe_retries(
    stack: Callable[[Any], Any], numbers: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    """Two retries of a non-idempotent tool: 2 unsafe retries, one warning naming tool+system."""
    charge = stack(failing_twice())
    with caplog.at_level(logging.WARNING, logger="agentrel"), testing.capture() as cap:
        with agentrel.run("checkout") as run:
            assert charge() == "charged"
        assert run.outcome == "recovered"
        assert cap.counter(UNSAFE, {"gen_ai.tool.name": "charge_card"}) == 2
        assert cap.counter(UNSAFE) == 2
        marked = [e for s in cap.spans() for e in s.events if e.name == "agentrel.unsafe_retry"]
        assert [e.attributes["agentrel.attempt.number"] for e in marked] == numbers
    warnings = [r for r in caplog.records if "idempotent=False" in r.getMessage()]
    assert len(warnings) == 1
    assert "'charge_card'" in warnings[0].getMessage()
    assert "'stripe'" in warnings[0].getMessage()


def test_agent_loop_calling_again_after_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    """No retry library: the agent calls the failed tool again; counted, warned once."""
    charge = _unsafe_tool(failing_twice())
    with caplog.at_level(logging.WARNING, logger="agentrel"), testing.capture() as cap:
        with agentrel.run("checkout") as run:
            for _ in range(3):
                try:
                    charge()
                except TimeoutError:
                    pass
        assert (run.outcome, run.retry_depth) == ("recovered", 2)
        assert cap.counter(UNSAFE) == 2
    assert sum("idempotent=False" in r.getMessage() for r in caplog.records) == 1


def test_idempotent_tools_are_not_unsafe(cap: testing.Capture) -> None:
    """The same retries of an idempotent tool: no unsafe retry."""
    charge = agentrel.tool("lookup", system="kb")(_tenacity(failing_twice()))
    with agentrel.run("checkout"):
        assert charge() == "charged"
    assert cap.counter(UNSAFE) == 0


def test_first_call_of_a_non_idempotent_tool_is_safe(cap: testing.Capture) -> None:
    """A non-idempotent tool called once, succeeding: nothing counted."""
    charge = _unsafe_tool(lambda: "charged")
    with agentrel.run("checkout"):
        assert charge() == "charged"
    assert cap.counter(UNSAFE) == 0


def test_warned_once_per_tool_per_process(caplog: pytest.LogCaptureFixture) -> None:
    """Two runs retrying the tool: counted each time, warned once."""
    with caplog.at_level(logging.WARNING, logger="agentrel"), testing.capture() as cap:
        for _ in range(2):
            charge = _unsafe_tool(_tenacity(failing_twice()))
            with agentrel.run("checkout"):
                charge()
        assert cap.counter(UNSAFE) == 4
    assert sum("idempotent=False" in r.getMessage() for r in caplog.records) == 1
