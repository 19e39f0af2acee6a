"""docs/api.md's example integration, run as written against a tiny made-up retry library.

The example is extracted from the docs (the ``python`` block after ``<!-- example:
integration -->``) and executed with a module ``mylib`` whose sleeps move the fake clock, so
every figure is exact: two 0.2 s waits are 0.400 s of recovery time (counted once each), and
``@agentrel.tool`` outside ``@mylib.retry`` or inside it gives the very same numbers.
"""

from __future__ import annotations

import functools
import re
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import agentrel
from agentrel import testing
from conftest import FakeClock

ROOT = Path(__file__).resolve().parent.parent
MARK = "<!-- example: integration -->"


def example_code() -> str:
    text = (ROOT / "docs" / "api.md").read_text()
    after = text[text.index(MARK) + len(MARK) :]
    match = re.match(r"\s*```python\n(.*?)\n```", after, re.S)
    assert match is not None, "no python block after the example marker"
    return match.group(1)


def make_mylib(clock: FakeClock) -> types.ModuleType:
    """The made-up retry library: ``@retry(tries, wait)``; its loop calls the hooks with the
    exception and the wait just before it sleeps (the sleep moves the fake clock)."""
    mylib = types.ModuleType("mylib")
    hooks: list[Callable[[BaseException, float], None]] = []

    def add_hook(hook: Callable[[BaseException, float], None]) -> None:
        hooks.append(hook)

    def remove_hook(hook: Callable[[BaseException, float], None]) -> None:
        hooks.remove(hook)

    def run_with_retries(fn: Any, tries: int, wait: float, args: Any, kwargs: Any) -> Any:
        for n in range(1, tries + 1):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if n == tries:
                    raise
                for hook in hooks:
                    hook(exc, wait)
                clock.advance(wait)  # time.sleep(wait)
        raise AssertionError("unreachable")

    def retry(tries: int, wait: float) -> Callable[[Any], Any]:
        def decorate(fn: Any) -> Any:
            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                # looked up at call time, as a library's own module-level function is
                return mylib.run_with_retries(fn, tries, wait, args, kwargs)

            return wrapper

        return decorate

    mylib.add_hook = add_hook  # type: ignore[attr-defined]
    mylib.remove_hook = remove_hook  # type: ignore[attr-defined]
    mylib.run_with_retries = run_with_retries  # type: ignore[attr-defined]
    mylib.retry = retry  # type: ignore[attr-defined]
    mylib.hooks = hooks  # type: ignore[attr-defined]
    return mylib


@pytest.fixture
def mylib(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    lib = make_mylib(clock)
    monkeypatch.setitem(sys.modules, "mylib", lib)
    namespace: dict[str, Any] = {"__name__": "mylib_integration"}
    exec(compile(example_code(), "docs/api.md", "exec"), namespace)  # instruments mylib
    instrumentor = namespace["MylibInstrumentor"]()
    assert instrumentor.is_instrumented()
    lib.instrumentor = instrumentor  # type: ignore[attr-defined]
    yield lib
    instrumentor.uninstrument()


def scripted(clock: FakeClock) -> Callable[[], str]:
    """Fails twice (TimeoutError, ConnectionError), then answers; each attempt takes 0.05 s."""
    raises: list[BaseException] = [TimeoutError("t"), ConnectionError("c")]

    def search() -> str:
        clock.advance(0.05)
        if raises:
            raise raises.pop(0)
        return "ok"

    return search


def build(mylib: Any, clock: FakeClock, order: str) -> Callable[[], str]:
    tool = agentrel.tool("search", system="kb")
    retry = mylib.retry(tries=4, wait=0.2)
    body = scripted(clock)
    return tool(retry(body)) if order == "tool_outside" else retry(tool(body))  # type: ignore[no-any-return]


def figures(cap: testing.Capture, run: agentrel.Run) -> dict[str, Any]:
    recovery = cap.histogram("agentrel.run.recovery_time")
    delay = cap.histogram("agentrel.retry.delay")
    return {
        "run": (run.outcome, run.retry_depth, run.attempts),
        "calls": {
            (a["gen_ai.tool.name"], a["agentrel.outcome"]): (p.count, p.sum)
            for a, p in cap.points("agentrel.tool.attempts")
        },
        "failures": {
            (a["gen_ai.tool.name"], a["error.type"], a["agentrel.absorbed"]): p.value
            for a, p in cap.points("agentrel.tool.failures")
        },
        "delay": (delay.count, round(delay.sum, 9)),
        "recovery_time": (recovery.count, round(recovery.sum, 9)),
        "spans": sorted(s.name for s in cap.spans()),
    }


EXPECTED = {
    "run": ("recovered", 2, 3),
    "calls": {("search", "recovered"): (1, 3)},
    "failures": {
        ("search", "TimeoutError", "true"): 1,
        ("search", "ConnectionError", "true"): 1,
    },
    "delay": (2, 0.4),
    # two failed attempts of 0.05 s and two waits of 0.2 s, each counted once
    "recovery_time": (1, 0.5),
    "spans": ["execute_tool search", "invoke_agent support"],
}


@pytest.mark.parametrize("order", ["tool_outside", "tool_inside"])
def test_docs_example_counts_each_wait_once(mylib: Any, clock: FakeClock, order: str) -> None:
    """Two 0.2 s waits and two failed 0.05 s attempts: recovery time 0.5 s, whichever
    decorator is outside."""
    fn = build(mylib, clock, order)
    with testing.capture() as cap:
        with agentrel.run("support") as run:
            assert fn() == "ok"
        assert figures(cap, run) == EXPECTED


def test_docs_example_waits_alone_are_the_recovery_time(mylib: Any, clock: FakeClock) -> None:
    """Attempts that take no time: the recovery time is the two waits, 0.400 s exactly."""
    raises: list[BaseException] = [TimeoutError("t"), TimeoutError("t")]

    @agentrel.tool("search")
    @mylib.retry(tries=3, wait=0.2)
    def search() -> str:
        if raises:
            raise raises.pop(0)
        return "ok"

    with testing.capture() as cap:
        with agentrel.run("support") as run:
            assert search() == "ok"
        recovery = cap.histogram("agentrel.run.recovery_time")
        assert (recovery.count, round(recovery.sum, 9)) == (1, 0.4)
        assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 2, 3)


def test_docs_example_both_orders_record_the_same_points(mylib: Any, clock: FakeClock) -> None:
    """Every metric point is the same whichever decorator is outside."""
    from points import snapshot

    seen = []
    for order in ("tool_outside", "tool_inside"):
        testing.reset()
        fn = build(mylib, clock, order)
        with testing.capture() as cap:
            with agentrel.run("support"):
                fn()
            seen.append(snapshot(cap))
    assert seen[0] == seen[1]


def test_docs_example_instrument_is_idempotent_and_undone(
    mylib: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A second instrument() warns once and adds no second hook; uninstrument() restores
    mylib exactly."""
    inst = mylib.instrumentor
    patched = mylib.run_with_retries
    with caplog.at_level("WARNING", logger="agentrel"):
        inst.instrument()
        inst.instrument()
    assert [r.getMessage() for r in caplog.records].count(
        "agentrel: mylib is already instrumented; call uninstrument() first to instrument it "
        "again with other options"
    ) == 1
    assert len(mylib.hooks) == 1 and mylib.run_with_retries is patched
    original = patched.__wrapped__
    inst.uninstrument()
    inst.uninstrument()
    assert mylib.hooks == [] and mylib.run_with_retries is original
    inst.instrument()  # the fixture's teardown uninstruments again


def test_docs_example_names_what_to_install(mylib: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """With mylib gone, the example's instrument() is an ImportError naming it, and nothing
    is patched."""
    inst = mylib.instrumentor
    inst.uninstrument()
    original = mylib.run_with_retries
    monkeypatch.setitem(sys.modules, "mylib", None)
    with pytest.raises(ImportError) as info:
        inst.instrument()
    assert str(info.value) == "agentrel's mylib integration needs mylib: pip install mylib"
    assert not inst.is_instrumented()
    assert mylib.run_with_retries is original and mylib.hooks == []
    monkeypatch.setitem(sys.modules, "mylib", mylib)
    inst.instrument()  # the fixture's teardown uninstruments
