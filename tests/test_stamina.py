"""stamina integration: real stamina retries through its public on-retry hooks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stamina
from stamina.instrumentation import get_on_retry_hooks, set_on_retry_hooks

import agentrel
from agentrel import testing
from agentrel.integrations import stamina as agentrel_stamina
from agentrel.integrations import tenacity as agentrel_tenacity

TOOL_ATTEMPTS = "agentrel.tool.attempts"
FAILURES = "agentrel.tool.failures"
DELAY = "agentrel.retry.delay"
FAST = {"wait_initial": 0.01, "wait_max": 0.01, "wait_jitter": 0.0, "timeout": None}


@pytest.fixture(autouse=True)
def _instrumented() -> Iterator[list[Any]]:
    seen: list[Any] = []
    set_on_retry_hooks([seen.append])  # the application's own hook
    agentrel_stamina.instrument()
    yield seen
    agentrel_stamina.uninstrument()
    agentrel_tenacity.uninstrument()
    set_on_retry_hooks(None)


class Script:
    def __init__(self, *errors: BaseException, final: Any = "ok") -> None:
        self.errors = list(errors)
        self.final = final
        self.calls = 0
        self.raised: list[BaseException] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.errors:
            exc = self.errors.pop(0)
            self.raised.append(exc)
            raise exc
        return self.final


def _build(order: str, script: Script, is_async: bool) -> Callable[[], Any]:
    r = stamina.retry(on=(TimeoutError, ConnectionError), attempts=5, **FAST)
    t = agentrel.tool("search", system="kb")
    fn: Any = script
    if is_async:

        async def search() -> Any:
            return script()

        fn = search
    return t(r(fn)) if order == "tool_outside" else r(t(fn))  # type: ignore[no-any-return]


def _call(fn: Callable[[], Any], is_async: bool) -> tuple[Any, agentrel.Run]:
    if is_async:

        async def main() -> Any:
            async with agentrel.run("support") as run:
                value = await fn()
            return value, run

        return asyncio.run(main())  # type: ignore[no-any-return]
    with agentrel.run("support") as run:
        value = fn()
    return value, run


def _metrics(cap: testing.Capture) -> dict[str, Any]:
    return {
        "attempts": [(a, p.count, p.sum) for a, p in cap.points(TOOL_ATTEMPTS)],
        "failures": sorted((tuple(sorted(a.items())), p.value) for a, p in cap.points(FAILURES)),
        "delay": [(a, p.count, p.sum) for a, p in cap.points(DELAY)],
        "depth": [(a, p.count, p.sum) for a, p in cap.points("agentrel.run.retry_depth")],
        "run_attempts": [(a, p.count, p.sum) for a, p in cap.points("agentrel.run.attempts")],
    }


def test_the_applications_hook_still_runs(cap: testing.Capture, _instrumented: list[Any]) -> None:
    """Recovered after two retries (the contract's figures: tests/test_retry_contract.py):
    the application's own hook saw both retries, before agentrel's."""
    script = Script(TimeoutError("a"), ConnectionError("b"))
    value, run = _call(_build("tool_outside", script, False), False)
    assert value == "ok"
    assert (run.outcome, run.attempts, run.retry_depth) == ("recovered", 3, 2)
    assert [d.retry_num for d in _instrumented] == [1, 2]


def test_without_a_tool_the_call_is_named_after_the_function(cap: testing.Capture) -> None:
    """@stamina.retry alone: one call named by stamina's name for the function."""
    script = Script(TimeoutError())

    @stamina.retry(on=TimeoutError, attempts=3, **FAST)
    def fetch() -> Any:
        return script()

    with agentrel.run("support") as run:
        assert fetch() == "ok"
    assert run.outcome == "recovered"
    name = f"{__name__}.test_without_a_tool_the_call_is_named_after_the_function.<locals>.fetch"
    assert cap.label_sets(TOOL_ATTEMPTS) == [
        {"gen_ai.tool.name": name, "agentrel.outcome": "recovered"}
    ]


def _ctx_loop(script: Script) -> Any:
    for attempt in stamina.retry_context(on=TimeoutError, attempts=3, **FAST):
        with attempt:
            return script()
    return None


def test_retry_context_is_named_after_the_loop_owner(cap: testing.Capture) -> None:
    """stamina.retry_context: named after the function running the loop."""
    with agentrel.run("support") as run:
        assert _ctx_loop(Script(TimeoutError(), TimeoutError())) == "ok"
    assert (run.outcome, run.retry_depth) == ("recovered", 2)
    h = cap.histogram(TOOL_ATTEMPTS, {"gen_ai.tool.name": f"{__name__}._ctx_loop"})
    assert (h.count, h.sum) == (1, 3)


def test_testing_mode_still_counts(cap: testing.Capture) -> None:
    """stamina.set_testing(attempts=2): hooks still fire; zero waits are recorded as 0."""
    with stamina.set_testing(True, attempts=2):
        fn = agentrel.tool("search")(stamina.retry(on=TimeoutError)(Script(TimeoutError())))
        with agentrel.run("support") as run:
            assert fn() == "ok"
    assert (run.outcome, run.retry_depth) == ("recovered", 1)
    d = cap.histogram(DELAY)
    assert (d.count, d.sum) == (1, 0.0)


def test_tenacity_instrumented_too_does_not_double_count(cap: testing.Capture) -> None:
    """Both integrations on: stamina's retries are counted once."""
    agentrel_tenacity.instrument()
    fn = stamina.retry(on=TimeoutError, attempts=3, **FAST)(
        agentrel.tool("search")(Script(TimeoutError()))
    )
    with agentrel.run("support") as run:
        assert fn() == "ok"
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 2)
    assert cap.counter(FAILURES) == 1
    assert cap.histogram(DELAY).count == 1


def test_hook_alone_counts_retries_of_the_enclosing_call(cap: testing.Capture) -> None:
    """With only the hook (no tenacity machinery), a tool around stamina still gets it all."""
    agentrel_tenacity.release("stamina")
    script = Script(TimeoutError(), TimeoutError())
    fn = agentrel.tool("search")(stamina.retry(on=TimeoutError, attempts=3, **FAST)(script))
    with agentrel.run("support") as run:
        assert fn() == "ok"
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 2, 3)
    h = cap.histogram(TOOL_ATTEMPTS, {"agentrel.outcome": "recovered"})
    assert (h.count, h.sum) == (1, 3)
    d = cap.histogram(DELAY, {"gen_ai.tool.name": "search"})
    assert d.count == 2
    assert d.sum == pytest.approx(0.02)
    agentrel_tenacity.acquire("stamina")


def test_existing_hooks_are_kept_and_uninstrument_restores_them(_instrumented: list[Any]) -> None:
    """The app's hook stays before ours; uninstrument removes only ours; idempotent."""
    hooks = get_on_retry_hooks()
    assert len(hooks) == 2
    assert hooks[1] is agentrel_stamina.on_retry
    agentrel_stamina.instrument()
    assert len(get_on_retry_hooks()) == 2
    agentrel_stamina.uninstrument()
    agentrel_stamina.uninstrument()
    assert agentrel_stamina.on_retry not in get_on_retry_hooks()
    assert len(get_on_retry_hooks()) == 1
    assert not agentrel_stamina.instrumented()
    agentrel_stamina.instrument()


def test_a_raising_hook_call_is_guarded(
    cap: testing.Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A telemetry failure inside the hook never reaches stamina or the application."""

    def broken(*a: Any, **k: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(agentrel._call.Call, "attempt_failed", broken)
    fn = stamina.retry(on=TimeoutError, attempts=3, **FAST)(Script(TimeoutError()))
    with agentrel.run("support"):
        assert fn() == "ok"
    errors = agentrel.telemetry_errors()
    assert errors["stamina.hook"] == 1


def test_stamina_retry_inside_an_llm_turn_stays_the_tools() -> None:
    """@agentrel.tool outside @stamina.retry, called inside an LLM call: the tool's attempts,
    not the LLM call's."""
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise TimeoutError
        return "ok"

    fn = agentrel.tool("search")(stamina.retry(on=TimeoutError, attempts=5, **FAST)(flaky))

    @agentrel.llm(model="m")
    def turn() -> str:
        return fn()  # type: ignore[no-any-return]

    with testing.capture() as cap:
        with agentrel.run("r") as run:
            assert turn() == "ok"
        assert (run.outcome, run.attempts, run.retry_depth) == ("recovered", 4, 2)
        tool = cap.histogram("agentrel.tool.attempts", {"gen_ai.tool.name": "search"})
        assert (tool.count, tool.sum) == (1, 3)
        llm = cap.histogram("agentrel.tool.attempts", {"gen_ai.tool.name": "chat m"})
        assert (llm.count, llm.sum) == (1, 1)


def test_hook_factories_stay_deferred_until_the_first_retry(cap: testing.Capture) -> None:
    """A RetryHookFactory set before instrument() is not called by instrument(): stamina
    calls it on the first scheduled retry, and then both its hook and agentrel's fire."""
    from stamina._config import CONFIG
    from stamina.instrumentation import RetryHookFactory

    agentrel_stamina.uninstrument()
    made: list[str] = []
    fired: list[int] = []

    def factory() -> Any:
        made.append("made")
        return lambda details: fired.append(details.retry_num)

    set_on_retry_hooks([RetryHookFactory(factory)])
    agentrel_stamina.instrument()
    assert made == []  # instrument() ran no factory
    assert CONFIG._get_on_retry == CONFIG._init_on_first_retry  # still deferred

    fn = _build("tool_outside", Script(TimeoutError(), ConnectionError()), False)
    value, run = _call(fn, False)
    assert value == "ok"
    assert made == ["made"]  # once, at the first retry
    assert fired == [1, 2]  # the application's hook, at each retry
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 2, 3)  # agentrel's
    h = cap.histogram(TOOL_ATTEMPTS, {"gen_ai.tool.name": "search"})
    assert (h.count, h.sum) == (1, 3)
    assert cap.histogram(DELAY, {"gen_ai.tool.name": "search"}).count == 2


def test_default_hooks_stay_deferred_and_uninstrument_restores_them() -> None:
    """With stamina's defaults (no hooks set), instrument() keeps them as factories, and
    uninstrument() hands stamina back its own "defaults" setting (None)."""
    from stamina._config import CONFIG

    agentrel_stamina.uninstrument()
    set_on_retry_hooks(None)
    assert CONFIG._on_retry is None
    agentrel_stamina.instrument()
    hooks = CONFIG._on_retry
    assert hooks[-1] is agentrel_stamina.on_retry
    assert CONFIG._get_on_retry == CONFIG._init_on_first_retry  # nothing initialised
    agentrel_stamina.uninstrument()
    assert CONFIG._on_retry is None
    agentrel_stamina.instrument()  # the fixture's teardown uninstruments
