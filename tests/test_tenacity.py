"""tenacity integration: real tenacity retries, exact attempts, outcomes, failures and waits."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import tenacity
from tenacity import (
    AsyncRetrying,
    RetryError,
    Retrying,
    retry,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
    wait_fixed,
)

import agentrel
from agentrel import testing
from agentrel.integrations import tenacity as agentrel_tenacity
from points import snapshot

TOOL_ATTEMPTS = "agentrel.tool.attempts"
FAILURES = "agentrel.tool.failures"
DELAY = "agentrel.retry.delay"
DEPTH = "agentrel.run.retry_depth"
RUN_ATTEMPTS = "agentrel.run.attempts"


@pytest.fixture(autouse=True)
def _instrumented() -> Iterator[None]:
    agentrel_tenacity.instrument()
    yield
    agentrel_tenacity.uninstrument()


class Script:
    """Raises (or returns) the scripted values in order, then returns ``final``."""

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


class Sleeps:
    """A tenacity ``sleep=`` that records the waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class AsyncSleeps(Sleeps):
    async def __call__(self, seconds: float) -> None:  # type: ignore[override]
        self.waits.append(seconds)


# --- stacking order (the cross-library contract, both orders: tests/test_retry_contract.py) ------
def _stack_sync(order: str, script: Script, sleeps: Sleeps) -> Callable[[], Any]:
    r = retry(wait=wait_fixed(0.25), stop=stop_after_attempt(5), sleep=sleeps, reraise=True)
    t = agentrel.tool("search", system="kb")
    if order == "tool_outside":
        return t(r(script))  # type: ignore[no-any-return]
    return r(t(script))  # type: ignore[no-any-return]


ORDERS = [
    pytest.param("tool_outside", id="tool-outside-retry"),
    pytest.param("tool_inside", id="tool-inside-retry"),
]


def _called_from_an_llm_turn(order: str) -> dict[str, list[tuple[Any, ...]]]:
    """The retried tool is called from inside another agentrel call (a model turn)."""
    script = Script(TimeoutError("a"), TimeoutError("b"))
    sleeps = Sleeps()
    fn = _stack_sync(order, script, sleeps)

    @agentrel.llm(model="m", provider="sim")
    def turn() -> Any:
        return fn()

    with testing.capture() as cap:
        with agentrel.run("support") as run:
            assert turn() == "ok"
        assert (run.outcome, run.attempts, run.retry_depth) == ("recovered", 4, 2)
        search = cap.histogram(
            TOOL_ATTEMPTS, {"gen_ai.tool.name": "search", "agentrel.outcome": "recovered"}
        )
        assert (search.count, search.sum) == (1, 3)
        llm = cap.histogram(TOOL_ATTEMPTS, {"gen_ai.tool.name": "chat m"})
        assert (llm.count, llm.sum) == (1, 1)  # the turn itself made one attempt
        assert cap.counter(FAILURES, {"gen_ai.tool.name": "search"}) == 2
        return snapshot(cap)


def test_retry_belongs_to_the_tool_not_to_an_enclosing_call() -> None:
    """A retried tool called inside an LLM call: its retries are its own attempts, not the LLM
    call's, and both decorator orders still give identical metrics."""
    outside = _called_from_an_llm_turn("tool_outside")
    testing.reset()
    inside = _called_from_an_llm_turn("tool_inside")
    assert outside == inside


@pytest.mark.parametrize("order", ORDERS)
def test_flagged_last_attempt_of_an_adopted_tool_fails_the_call(order: str) -> None:
    """A tool's failure_when flagging the (only) attempt: failed in both orders."""
    r = retry(stop=stop_after_attempt(3), sleep=Sleeps())
    t = agentrel.tool("search", failure_when=lambda v: v == "")
    fn = t(r(Script(final=""))) if order == "tool_outside" else r(t(Script(final="")))
    with testing.capture() as cap:
        with agentrel.run("support") as run:
            assert fn() == ""
        assert run.retry_depth == 1
        h = cap.histogram(TOOL_ATTEMPTS, {"agentrel.outcome": "failed"})
        assert (h.count, h.sum) == (1, 1)
        assert cap.counter(FAILURES, {"error.type": "result_flagged"}) == 1


# --- outcomes -------------------------------------------------------------------------------------
def test_reraise_false_does_not_count_retry_error(cap: testing.Capture) -> None:
    """RetryError is what propagates, but the failures are the three TimeoutErrors."""
    script = Script(TimeoutError(), TimeoutError(), TimeoutError())
    fn = retry(stop=stop_after_attempt(3), sleep=Sleeps())(script)
    with pytest.raises(RetryError) as info, agentrel.run("support") as run:
        fn()
    assert info.value.last_attempt.exception() is script.raised[-1]
    assert (run.outcome, run.retry_depth, run.attempts) == ("exhausted", 3, 3)
    assert cap.counter(FAILURES, {"error.type": "TimeoutError"}) == 3
    assert cap.counter(FAILURES, {"error.type": "RetryError"}) == 0
    name = f"{__name__}.Script"
    h = cap.histogram(TOOL_ATTEMPTS, {"gen_ai.tool.name": name, "agentrel.outcome": "exhausted"})
    assert (h.count, h.sum) == (1, 3)
    span = cap.spans(f"execute_tool {name}")[0]
    assert span.attributes["error.type"] == "TimeoutError"


def test_retry_if_result_counts_result_flagged(cap: testing.Capture) -> None:
    """A result-based retry is a failed attempt with error.type result_flagged."""
    script = Script(None, None, final="ok")

    @agentrel.tool("lookup")
    @retry(retry=retry_if_result(lambda r: r is None), stop=stop_after_attempt(5), sleep=Sleeps())
    def lookup() -> Any:
        return script()

    with agentrel.run("support") as run:
        assert lookup() == "ok"
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 2, 3)
    assert cap.counter(FAILURES, {"error.type": "result_flagged", "agentrel.absorbed": "true"}) == 2


def test_result_retry_exhausted_raises_retry_error(cap: testing.Capture) -> None:
    """retry_if_result until stop: RetryError, 2 result_flagged failures, exhausted."""
    fn = retry(
        retry=retry_if_result(lambda r: r is None), stop=stop_after_attempt(2), sleep=Sleeps()
    )(Script(final=None))
    with pytest.raises(RetryError), agentrel.run("support") as run:
        fn()
    assert (run.outcome, run.retry_depth) == ("exhausted", 2)
    assert cap.counter(FAILURES, {"error.type": "result_flagged"}) == 2
    assert cap.histogram(TOOL_ATTEMPTS, {"agentrel.outcome": "exhausted"}).sum == 2


def test_non_retryable_error_first_attempt_is_failed(cap: testing.Capture) -> None:
    """An error the strategy does not retry, on attempt 1: failed, one attempt."""
    script = Script(ValueError("bad input"))
    fn = retry(retry=retry_if_exception_type(TimeoutError), sleep=Sleeps())(script)
    with pytest.raises(ValueError) as info, agentrel.run("support") as run:
        fn()
    assert info.value is script.raised[0]
    assert (run.outcome, run.retry_depth, run.attempts) == ("failed", 1, 1)
    assert cap.histogram(TOOL_ATTEMPTS, {"agentrel.outcome": "failed"}).count == 1
    assert cap.histogram(DELAY).count == 0


def test_non_retryable_error_after_a_retry_is_exhausted(cap: testing.Capture) -> None:
    """A retry, then an error the strategy does not retry: exhausted after 2 attempts."""
    fn = retry(retry=retry_if_exception_type(TimeoutError), sleep=Sleeps())(
        Script(TimeoutError(), ValueError())
    )
    with pytest.raises(ValueError), agentrel.run("support") as run:
        fn()
    assert (run.outcome, run.retry_depth, run.attempts) == ("exhausted", 2, 2)
    assert cap.counter(FAILURES, {"error.type": "TimeoutError", "agentrel.absorbed": "false"}) == 1
    assert cap.counter(FAILURES, {"error.type": "ValueError", "agentrel.absorbed": "false"}) == 1


def test_retry_error_callback_value_is_recovered(cap: testing.Capture) -> None:
    """retry_error_callback answering after the last failure: a substitute served, recovered."""
    fn = retry(
        stop=stop_after_attempt(2), sleep=Sleeps(), retry_error_callback=lambda rs: "default"
    )(Script(TimeoutError(), TimeoutError()))
    with agentrel.run("support") as run:
        assert fn() == "default"
    assert (run.outcome, run.retry_depth) == ("recovered", 2)
    assert cap.histogram(TOOL_ATTEMPTS, {"agentrel.outcome": "recovered"}).sum == 2


def test_first_try_success_is_one_attempt(cap: testing.Capture) -> None:
    """No failure: success, one attempt, no delay, no failure."""
    fn = retry(sleep=Sleeps())(Script())
    with agentrel.run("support") as run:
        assert fn() == "ok"
    assert (run.outcome, run.retry_depth, run.attempts) == ("success", 0, 1)
    h = cap.histogram(TOOL_ATTEMPTS, {"agentrel.outcome": "success"})
    assert (h.count, h.sum) == (1, 1)
    assert cap.counter(FAILURES) == 0
    assert cap.histogram(DELAY).count == 0


def test_outside_a_run_the_call_decides_absorption(cap: testing.Capture) -> None:
    """No run: the call's own success marks its failures absorbed."""
    fn = retry(sleep=Sleeps())(Script(TimeoutError()))
    assert fn() == "ok"
    assert cap.counter(FAILURES, {"agentrel.absorbed": "true"}) == 1
    assert cap.histogram(DEPTH).count == 0


# --- waits ----------------------------------------------------------------------------------------
def test_delays_are_the_values_tenacity_computed(cap: testing.Capture) -> None:
    """wait_exponential: every recorded delay equals what tenacity slept, exactly."""
    sleeps = Sleeps()
    fn = retry(
        wait=wait_exponential(multiplier=0.1, exp_base=3), stop=stop_after_attempt(5), sleep=sleeps
    )(Script(*[TimeoutError() for _ in range(4)]))
    with agentrel.run("support"):
        fn()
    assert len(sleeps.waits) == 4
    points = cap.points(DELAY)
    assert len(points) == 1
    _, p = points[0]
    assert p.count == 4
    assert p.sum == sum(sleeps.waits)
    assert p.min == min(sleeps.waits)
    assert p.max == max(sleeps.waits)


# --- Retrying and AsyncRetrying, called and iterated ----------------------------------------------
def test_retrying_called_directly(cap: testing.Capture) -> None:
    """Retrying(...)(fn): named after fn, recovered after one retry."""
    script = Script(TimeoutError())
    with agentrel.run("support") as run:
        assert Retrying(sleep=Sleeps(), wait=wait_fixed(0.5))(script) == "ok"
    assert (run.outcome, run.retry_depth) == ("recovered", 1)
    name = f"{__name__}.Script"
    assert cap.histogram(DELAY, {"gen_ai.tool.name": name}).sum == 0.5


def _iterate(script: Script, sleeps: Sleeps) -> Any:
    for attempt in Retrying(wait=wait_fixed(0.125), stop=stop_after_attempt(4), sleep=sleeps):
        with attempt:
            value = script()
    return value


def test_retrying_iterated_names_the_loop_owner(cap: testing.Capture) -> None:
    """for attempt in Retrying(): the call is named after the function running the loop."""
    with agentrel.run("support") as run:
        assert _iterate(Script(TimeoutError(), TimeoutError()), Sleeps()) == "ok"
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 2, 3)
    name = f"{__name__}._iterate"
    h = cap.histogram(TOOL_ATTEMPTS, {"gen_ai.tool.name": name, "agentrel.outcome": "recovered"})
    assert (h.count, h.sum) == (1, 3)
    assert cap.histogram(DELAY, {"gen_ai.tool.name": name}).sum == 0.25


def test_retrying_iterated_with_return_inside_the_attempt(cap: testing.Capture) -> None:
    """return inside ``with attempt``: the call still ends, recovered, before the run does."""
    script = Script(TimeoutError())

    def fetch() -> Any:
        for attempt in Retrying(stop=stop_after_attempt(3), sleep=Sleeps(), name="fetch"):
            with attempt:
                return script()
        return None

    with agentrel.run("support"):
        assert fetch() == "ok"
        h = cap.histogram(TOOL_ATTEMPTS, {"gen_ai.tool.name": "fetch"})
        assert (h.count, h.sum) == (1, 2)  # recorded before the run ended
    assert cap.histogram(TOOL_ATTEMPTS, {"agentrel.outcome": "recovered"}).count == 1
    assert agentrel.current_run() is None
    assert agentrel_tenacity._PENDING.get() is None


def test_tool_inside_an_iterated_retry_adopts_the_call(cap: testing.Capture) -> None:
    """An @agentrel.tool inside ``with attempt`` becomes the call: one call, named by the tool."""
    script = Script(TimeoutError(), TimeoutError())
    search = agentrel.tool("search")(script)
    with agentrel.run("support") as run:
        for attempt in Retrying(stop=stop_after_attempt(5), sleep=Sleeps()):
            with attempt:
                search()
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 2, 3)
    assert cap.label_sets(TOOL_ATTEMPTS) == [
        {"gen_ai.tool.name": "search", "agentrel.outcome": "recovered"}
    ]
    assert cap.histogram(TOOL_ATTEMPTS).sum == 3


def test_async_retrying_called_and_iterated(cap: testing.Capture) -> None:
    """AsyncRetrying called with a coroutine function, and iterated with return inside."""
    s1, s2 = Script(TimeoutError()), Script(TimeoutError(), TimeoutError())

    async def one() -> Any:
        return s1()

    async def two() -> Any:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(5), sleep=AsyncSleeps(), name="two"
        ):
            with attempt:
                return s2()
        return None

    async def main() -> Any:
        async with agentrel.run("support") as run:
            a = await AsyncRetrying(sleep=AsyncSleeps(), wait=wait_fixed(0.5))(one)
            b = await two()
        return a, b, run

    a, b, run = asyncio.run(main())
    assert (a, b) == ("ok", "ok")
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 3, 5)
    h1 = cap.histogram(
        TOOL_ATTEMPTS,
        {"gen_ai.tool.name": f"{__name__}.test_async_retrying_called_and_iterated.<locals>.one"},
    )
    assert (h1.count, h1.sum) == (1, 2)
    h2 = cap.histogram(TOOL_ATTEMPTS, {"gen_ai.tool.name": "two", "agentrel.outcome": "recovered"})
    assert (h2.count, h2.sum) == (1, 3)


def test_async_iterated_exhausted(cap: testing.Capture) -> None:
    """async for ... exhausted with reraise: the last error propagates, 2 failures."""
    script = Script(TimeoutError(), TimeoutError())

    async def main() -> None:
        async with agentrel.run("support"):
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(2), sleep=AsyncSleeps(), reraise=True, name="x"
            ):
                with attempt:
                    script()

    with pytest.raises(TimeoutError) as info:
        asyncio.run(main())
    assert info.value is script.raised[-1]
    assert cap.counter(FAILURES, {"gen_ai.tool.name": "x", "agentrel.absorbed": "false"}) == 2
    h = cap.histogram(TOOL_ATTEMPTS, {"agentrel.outcome": "exhausted"})
    assert (h.count, h.sum) == (1, 2)


def test_nested_retries_count_each_failure_once(cap: testing.Capture) -> None:
    """An inner retried function inside an outer retry: failures counted where they happen."""
    inner_script = Script(TimeoutError(), final="ok")
    inner = retry(sleep=Sleeps(), stop=stop_after_attempt(3))(inner_script)
    outer_calls = Script(ConnectionError())

    @retry(sleep=Sleeps(), stop=stop_after_attempt(3))
    def outer() -> Any:
        outer_calls()
        return inner()

    with agentrel.run("support") as run:
        assert outer() == "ok"
    assert (run.outcome, run.retry_depth) == ("recovered", 2)
    assert cap.counter(FAILURES, {"error.type": "ConnectionError"}) == 1
    assert cap.counter(FAILURES, {"error.type": "TimeoutError"}) == 1


# --- lifecycle and guards -------------------------------------------------------------------------
def test_instrument_is_idempotent_and_reversible(cap: testing.Capture) -> None:
    """instrument twice, uninstrument: tenacity's own methods are back, nothing recorded."""
    originals = (tenacity.BaseRetrying.__dict__["iter"], tenacity.Retrying.__dict__["__call__"])
    agentrel_tenacity.instrument()
    assert tenacity.BaseRetrying.__dict__["iter"] is originals[0]  # still the first patch
    agentrel_tenacity.uninstrument()
    assert not agentrel_tenacity.instrumented()
    assert tenacity.BaseRetrying.__dict__["iter"] is not originals[0]
    assert type(tenacity.BaseRetrying.__dict__["iter"]).__name__ == "function"
    fn = retry(sleep=Sleeps())(Script(TimeoutError()))
    with agentrel.run("support") as run:
        assert fn() == "ok"
    assert (run.outcome, run.attempts) == ("success", 0)
    assert cap.histogram(TOOL_ATTEMPTS).count == 0
    agentrel_tenacity.instrument()
    assert agentrel_tenacity.instrumented()


def test_a_telemetry_failure_never_breaks_the_retry(
    cap: testing.Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """record_delay raising: the retry and its value are unaffected, the error is counted."""

    def broken(*a: Any, **k: Any) -> None:
        raise RuntimeError("exporter bug")

    monkeypatch.setattr(agentrel._call.Call, "record_delay", broken)
    fn = retry(sleep=Sleeps(), stop=stop_after_attempt(3))(Script(TimeoutError()))
    with agentrel.run("support") as run:
        assert fn() == "ok"
    assert run.retry_depth == 1
    assert agentrel.telemetry_errors() == {"tenacity.iter": 1}


def test_signature_docstring_and_statistics_unchanged() -> None:
    """The decorated function keeps what tenacity gives it; tenacity's statistics still work."""

    @retry(sleep=Sleeps(), stop=stop_after_attempt(3))
    def fetch(query: str, *, limit: int = 3) -> str:
        """Fetch things."""
        return query

    with testing.capture(), agentrel.run("support"):
        assert fetch("q") == "q"
    assert fetch.__doc__ == "Fetch things."
    assert fetch.__name__ == "fetch"
    assert fetch.statistics["attempt_number"] == 1


def test_quiet_without_telemetry_or_run() -> None:
    """Unconfigured and outside a run: tenacity runs untouched (no call opened)."""
    script = Script(TimeoutError())
    assert retry(sleep=Sleeps())(script)() == "ok"
    assert script.calls == 2
    assert agentrel.telemetry_errors() == {}


def test_importing_agentrel_imports_no_retry_library() -> None:
    """import agentrel (and its integrations' modules) never imports tenacity/stamina/backoff."""
    code = (
        "import sys, agentrel, agentrel.integrations, agentrel.integrations.backoff;"
        "agentrel.fallback;"
        "print(sorted(m for m in ('tenacity', 'stamina', 'backoff') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_iterated_result_retry_with_set_result(cap: testing.Capture) -> None:
    """tenacity's documented set_result pattern with retry_if_result: flagged, then served."""
    script = Script(None, final="ok")
    with agentrel.run("support") as run:
        for attempt in Retrying(
            retry=retry_if_result(lambda r: r is None), sleep=Sleeps(), name="poll"
        ):
            with attempt:
                value = script()
            if not attempt.retry_state.outcome.failed:
                attempt.retry_state.set_result(value)
    assert value == "ok"
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 2)
    assert cap.counter(FAILURES, {"gen_ai.tool.name": "poll", "error.type": "result_flagged"}) == 1
    h = cap.histogram(TOOL_ATTEMPTS, {"gen_ai.tool.name": "poll", "agentrel.outcome": "recovered"})
    assert (h.count, h.sum) == (1, 2)


def test_iterated_retry_inside_a_tool_counts_as_its_attempts(cap: testing.Capture) -> None:
    """A for-attempt loop inside an @agentrel.tool: the tool's call gets the attempts."""
    script = Script(TimeoutError())

    @agentrel.tool("search")
    def search() -> Any:
        for attempt in Retrying(sleep=Sleeps(), wait=wait_fixed(0.5)):
            with attempt:
                return script()
        return None

    with agentrel.run("support") as run:
        assert search() == "ok"
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 2)
    assert cap.label_sets(TOOL_ATTEMPTS) == [
        {"gen_ai.tool.name": "search", "agentrel.outcome": "recovered"}
    ]
    assert cap.histogram(DELAY, {"gen_ai.tool.name": "search"}).sum == 0.5


def test_iterated_retry_in_a_helper_is_its_own_call(cap: testing.Capture) -> None:
    """A Retrying loop in a helper the tool calls is a call of its own (named after the
    helper), nested in the tool's call; the tool made one attempt and recovered."""
    script = Script(TimeoutError("a"))
    sleeps = Sleeps()

    def fetch_page() -> Any:
        for attempt in Retrying(stop=stop_after_attempt(3), sleep=sleeps, reraise=True):
            with attempt:
                return script()
        return None

    @agentrel.tool
    def crawl() -> Any:
        return fetch_page()

    with agentrel.run("r") as run:
        assert crawl() == "ok"
    assert (run.outcome, run.retry_depth) == ("recovered", 1)
    outer = cap.histogram(TOOL_ATTEMPTS, {"gen_ai.tool.name": "crawl"})
    assert (outer.count, outer.sum) == (1, 1)
    crawl_recovered = {"gen_ai.tool.name": "crawl", "agentrel.outcome": "recovered"}
    assert cap.histogram(TOOL_ATTEMPTS, crawl_recovered).count == 1
    inner = [a for a in cap.label_sets(TOOL_ATTEMPTS) if a["gen_ai.tool.name"] != "crawl"]
    # The loop's owner is named from its code object: its qualified name on Python 3.11+,
    # its plain name on 3.10 (code objects gained co_qualname in 3.11).
    code = fetch_page.__code__
    owner = getattr(code, "co_qualname", code.co_name)
    assert [a["gen_ai.tool.name"] for a in inner] == [f"{__name__}.{owner}"]
    assert cap.histogram(TOOL_ATTEMPTS, inner[0]).sum == 2


def test_abandoned_result_retry_ends_at_a_safe_point(cap: testing.Capture) -> None:
    """A result-based iterated retry left with ``return`` inside ``with attempt:`` (tenacity
    never decides): the call is ended when the run is classified, not from the garbage
    collector (which could run under a lock the call's end needs)."""
    import gc

    script = Script(TimeoutError("a"), final="ok")
    sleeps = Sleeps()

    def fetch() -> Any:
        for attempt in Retrying(
            retry=retry_if_result(lambda r: r is None) | retry_if_exception_type(TimeoutError),
            stop=stop_after_attempt(3),
            sleep=sleeps,
            reraise=True,
        ):
            with attempt:
                return script()
        return None

    from agentrel.integrations import tenacity as integration

    with agentrel.run("r") as run:
        assert fetch() == "ok"
        script.raised.clear()  # its traceback would keep the loop's frame alive
        gc.collect()  # the retry state is collected: the call is only queued
        assert len(integration._abandoned) == 1
        assert cap.histogram(TOOL_ATTEMPTS).count == 0
    assert len(integration._abandoned) == 0
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 2)
    h = cap.histogram(TOOL_ATTEMPTS, {"agentrel.outcome": "recovered"})
    assert (h.count, h.sum) == (1, 2)
    assert cap.counter(FAILURES, {"agentrel.absorbed": "true"}) == 1
