"""The retry-integration contract: tenacity, stamina and backoff give the same numbers.

One scripted tool (``search``), retried on ``TimeoutError`` and ``ConnectionError`` up to 3
attempts with a fixed 0.01 s wait, by each library in each supported decorator order, sync and
async, inside a run.
Whatever does the retrying, agentrel must report the same call (outcome, attempts), the same
failures (by ``error.type`` and ``agentrel.absorbed``), the same waits (one per retry, the
wait the library computed) and the same run (outcome, retry depth, attempts), and hand the
caller the very exception the last attempt raised.

Orders: ``tool_outside`` (``@agentrel.tool`` around the library's decorator: the retries are
the tool call's attempts) for all; ``tool_inside`` (the library's decorator around
``@agentrel.tool``: the tool takes over the call the integration opened) for tenacity, stamina
and instrumented backoff (``backoff_instrumented``: ``agentrel.integrations.backoff.instrument()``
wraps backoff's loops). backoff with only ``handlers()`` (``backoff``) has no hook that could
open a call around its loop, so inside its decorator each attempt is a call of its own
(docs/integrations.md): its run figures still agree (``test_backoff_inside_agrees_on_the_run``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import backoff
import pytest
import stamina
import tenacity

import agentrel
from agentrel import testing
from agentrel.integrations import backoff as agentrel_backoff
from agentrel.integrations import stamina as agentrel_stamina
from agentrel.integrations import tenacity as agentrel_tenacity
from agentrel.integrations.backoff import handlers
from points import snapshot

WAIT = 0.01
MAX_ATTEMPTS = 3
RETRIED = (TimeoutError, ConnectionError)


def _tenacity(fn: Any) -> Any:
    return tenacity.retry(
        retry=tenacity.retry_if_exception_type(RETRIED),
        stop=tenacity.stop_after_attempt(MAX_ATTEMPTS),
        wait=tenacity.wait_fixed(WAIT),
        reraise=True,
    )(fn)


def _stamina(fn: Any) -> Any:
    return stamina.retry(
        on=RETRIED,
        attempts=MAX_ATTEMPTS,
        wait_initial=WAIT,
        wait_max=WAIT,
        wait_jitter=0.0,
        timeout=None,
    )(fn)


def _backoff(fn: Any) -> Any:
    """backoff with agentrel's handlers passed by hand, not instrumented."""
    agentrel_backoff.uninstrument()
    try:
        return backoff.on_exception(
            backoff.constant,
            RETRIED,
            interval=WAIT,
            jitter=None,
            max_tries=MAX_ATTEMPTS,
            **handlers(),
        )(fn)
    finally:
        agentrel_backoff.instrument()


def _backoff_instrumented(fn: Any) -> Any:
    """backoff after ``instrument()``: no handlers passed."""
    assert agentrel_backoff.is_instrumented()
    return backoff.on_exception(
        backoff.constant, RETRIED, interval=WAIT, jitter=None, max_tries=MAX_ATTEMPTS
    )(fn)


RETRY: dict[str, Callable[[Any], Any]] = {
    "tenacity": _tenacity,
    "stamina": _stamina,
    "backoff": _backoff,
    "backoff_instrumented": _backoff_instrumented,
}
CASES = [
    ("tenacity", "tool_outside"),
    ("tenacity", "tool_inside"),
    ("stamina", "tool_outside"),
    ("stamina", "tool_inside"),
    ("backoff", "tool_outside"),
    ("backoff_instrumented", "tool_outside"),
    ("backoff_instrumented", "tool_inside"),
]


@pytest.fixture(autouse=True)
def _instrumented() -> Iterator[None]:
    agentrel_tenacity.instrument()
    agentrel_stamina.instrument()
    agentrel_backoff.instrument()
    yield
    agentrel_backoff.uninstrument()
    agentrel_stamina.uninstrument()
    agentrel_tenacity.uninstrument()


@dataclass(frozen=True)
class Scenario:
    """What the tool raises, attempt by attempt, and the figures that must follow."""

    raises: tuple[type[BaseException], ...]
    call_outcome: str
    attempts: int
    failures: dict[tuple[str, str], float]  # (error.type, absorbed) -> failed attempts
    waits: int
    run_outcome: str
    depth: int


SCENARIOS = {
    "clean": Scenario((), "success", 1, {}, 0, "success", 0),
    "recovers": Scenario(
        (TimeoutError, ConnectionError), "recovered", 3,
        {("TimeoutError", "true"): 1, ("ConnectionError", "true"): 1}, 2, "recovered", 2,
    ),
    "exhausted": Scenario(
        (TimeoutError,) * 5, "exhausted", 3, {("TimeoutError", "false"): 3}, 2, "exhausted", 3
    ),
    "not_retried": Scenario((ValueError,), "failed", 1, {("ValueError", "false"): 1}, 0,
                            "failed", 1),
}  # fmt: skip


class Script:
    """The tool's body: raises the scenario's exceptions in turn, then returns ``"ok"``."""

    def __init__(self, raises: tuple[type[BaseException], ...]) -> None:
        self.raises = list(raises)
        self.raised: list[BaseException] = []

    def step(self) -> str:
        if self.raises:
            exc = self.raises.pop(0)("scripted")
            self.raised.append(exc)
            raise exc
        return "ok"


def build(library: str, order: str, script: Script, is_async: bool) -> Callable[[], Any]:
    if is_async:

        async def search() -> str:
            await asyncio.sleep(0)
            return script.step()

    else:

        def search() -> str:  # type: ignore[misc]
            return script.step()

    tool = agentrel.tool("search", system="kb")
    retry = RETRY[library]
    return tool(retry(search)) if order == "tool_outside" else retry(tool(search))  # type: ignore[no-any-return]


def call_in_run(fn: Callable[[], Any], is_async: bool) -> tuple[Any, agentrel.Run]:
    """(the tool's value or the exception it raised, the run's handle)."""
    if is_async:

        async def main() -> tuple[Any, agentrel.Run]:
            try:
                async with agentrel.run("support") as run:
                    return await fn(), run
            except Exception as exc:
                return exc, run

        return asyncio.run(main())
    try:
        with agentrel.run("support") as run:
            return fn(), run
    except Exception as exc:
        return exc, run


def recorded(cap: testing.Capture) -> dict[str, Any]:
    """Everything the contract covers, as recorded."""
    delay = cap.histogram("agentrel.retry.delay", {"gen_ai.tool.name": "search"})
    return {
        "calls": {
            (a["gen_ai.tool.name"], a["agentrel.outcome"]): (p.count, p.sum)
            for a, p in cap.points("agentrel.tool.attempts")
        },
        "failures": {
            (a["error.type"], a["agentrel.absorbed"]): p.value
            for a, p in cap.points("agentrel.tool.failures")
            if a["gen_ai.tool.name"] == "search"
        },
        "waits": delay.count,
        "runs": {
            (a["gen_ai.agent.name"], a["agentrel.outcome"]): (p.count, p.sum)
            for a, p in cap.points("agentrel.run.retry_depth")
        },
        "run_attempts": sum(p.sum for _, p in cap.points("agentrel.run.attempts")),
    }


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize(("library", "order"), CASES, ids=[f"{lib}-{o}" for lib, o in CASES])
def test_same_numbers_whatever_retries(
    cap: testing.Capture, library: str, order: str, scenario: str, is_async: bool
) -> None:
    s = SCENARIOS[scenario]
    script = Script(s.raises)
    value, run = call_in_run(build(library, order, script, is_async), is_async)

    if s.call_outcome in ("success", "recovered"):
        assert value == "ok"
    else:  # the very object the last attempt raised
        assert value is script.raised[-1]
    assert len(script.raised) == s.attempts - (s.call_outcome in ("success", "recovered"))
    assert recorded(cap) == {
        "calls": {("search", s.call_outcome): (1, s.attempts)},
        "failures": s.failures,
        "waits": s.waits,
        "runs": {("support", s.run_outcome): (1, s.depth)},
        "run_attempts": s.attempts,
    }
    delay = cap.histogram("agentrel.retry.delay", {"gen_ai.tool.name": "search"})
    assert delay.sum == pytest.approx(WAIT * s.waits, rel=1e-9, abs=1e-12)
    assert (run.outcome, run.retry_depth, run.attempts) == (s.run_outcome, s.depth, s.attempts)
    assert [sp.name for sp in cap.spans()] == ["execute_tool search", "invoke_agent support"]
    (span,) = cap.spans("execute_tool search")
    assert (span.attributes["agentrel.outcome"], span.attributes["agentrel.call.attempts"]) == (
        s.call_outcome,
        s.attempts,
    )
    # one event per attempt once there was more than one: number, error.type, the wait before
    events = [
        (e.attributes["agentrel.attempt.number"], e.attributes.get("error.type"),
         e.attributes.get("agentrel.retry.delay"))
        for e in span.events
        if e.name == "agentrel.attempt"
    ]  # fmt: skip
    errors = [type(exc).__name__ for exc in script.raised]
    if s.attempts == 1:
        assert events == [(1, errors[0] if errors else None, None)][: len(errors)]
    else:
        served = [None] if s.call_outcome == "recovered" else []
        assert events == [
            (n, etype, None if n == 1 else WAIT) for n, etype in enumerate(errors + served, start=1)
        ]


@pytest.mark.parametrize("scenario", ["recovers", "exhausted"])
def test_backoff_inside_agrees_on_the_run(cap: testing.Capture, scenario: str) -> None:
    """``@backoff`` around ``@agentrel.tool``: each attempt is a call of its own, but the run's
    outcome, retry depth and attempts, and the failures by ``error.type``, are the contract's."""
    s = SCENARIOS[scenario]
    script = Script(s.raises)
    value, run = call_in_run(build("backoff", "tool_inside", script, False), False)
    assert value == "ok" if s.call_outcome == "recovered" else value is script.raised[-1]
    assert (run.outcome, run.retry_depth, run.attempts) == (s.run_outcome, s.depth, s.attempts)
    got = recorded(cap)
    assert got["runs"] == {("support", s.run_outcome): (1, s.depth)}
    assert got["failures"] == s.failures
    assert got["run_attempts"] == s.attempts
    n_calls = sum(n for n, _ in got["calls"].values())
    assert n_calls == s.attempts  # one call per attempt: not merged


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("library", ["tenacity", "stamina", "backoff_instrumented"])
def test_both_orders_record_the_same_points(library: str, scenario: str, is_async: bool) -> None:
    """Not only the figures above: every point of every metric is the same whichever
    decorator is outside."""
    seen = []
    for order in ("tool_outside", "tool_inside"):
        testing.reset()
        with testing.capture() as cap:
            call_in_run(
                build(library, order, Script(SCENARIOS[scenario].raises), is_async), is_async
            )
            seen.append(snapshot(cap))
    assert seen[0] == seen[1]
    assert "agentrel.run.retry_depth" in seen[0]
