"""Adversarial reliability suite, decoration and host callbacks: names that must come from code,
odd decoration targets, interrupts raised by the host's own callbacks (``failure_when``,
``usage=``, ``redact``), and recursion up to the interpreter's limit, each pinned to exact
values.

The rules pinned here are written up in the ``Decoration, host callbacks and recursion``
section of docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import SpanProcessor

import agentrel
from agentrel import testing
from agentrel._catalogue import ABSORBED, AGENT, ERROR_TYPE, OUTCOME, TOOL
from agentrel._current import CALL, RUN

pytestmark = pytest.mark.timeout(60)

SECRET = "sk-live-SECRET-9f3a"
RD = "agentrel.run.retry_depth"
RA = "agentrel.run.attempts"
TA = "agentrel.tool.attempts"
TF = "agentrel.tool.failures"


def calls(cap: testing.Capture) -> dict[tuple[str, str], tuple[int, float]]:
    """(tool, outcome) -> (logical calls, attempts summed)."""
    cap.collect()
    return {(a[TOOL], a[OUTCOME]): (p.count, p.sum) for a, p in cap.points(TA)}


def failures(cap: testing.Capture) -> dict[tuple[str, str, str], float]:
    """(tool, error.type, absorbed) -> failed attempts."""
    cap.collect()
    return {(a[TOOL], a[ERROR_TYPE], a[ABSORBED]): p.value for a, p in cap.points(TF)}


def runs(cap: testing.Capture) -> dict[tuple[str, str], tuple[int, float, float]]:
    """(agent, outcome) -> (runs, retry depth summed, attempts summed)."""
    cap.collect()
    attempts = {(a[AGENT], a[OUTCOME]): p.sum for a, p in cap.points(RA)}
    return {
        (a[AGENT], a[OUTCOME]): (p.count, p.sum, attempts[(a[AGENT], a[OUTCOME])])
        for a, p in cap.points(RD)
    }


def spans(cap: testing.Capture) -> list[tuple[str, str, Any, Any]]:
    """(name, status, agentrel.outcome, error.type) of every ended span, in order."""
    return [
        (s.name, s.status.status_code.name, s.attributes.get(OUTCOME), s.attributes.get(ERROR_TYPE))
        for s in cap.spans()
    ]


class Started(SpanProcessor):
    """Counts spans started and ended on the capture's provider."""

    def __init__(self) -> None:
        self.started = 0
        self.ended = 0

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.started += 1

    def on_end(self, span: Any) -> None:
        self.ended += 1


@pytest.fixture
def opened(cap: testing.Capture) -> Started:
    p = Started()
    cap.tracer_provider.add_span_processor(p)
    return p


def _five_failures_outside_runs(cap: testing.Capture) -> None:
    """After the interrupt: five failing calls outside any run record exactly five failures
    (the interrupted call is no longer current, so they are not its children)."""

    @agentrel.tool
    def after() -> None:
        raise ValueError("after")

    for _ in range(5):
        with pytest.raises(ValueError):
            after()
    assert failures(cap)[("after", "ValueError", "false")] == 5
    assert calls(cap)[("after", "failed")] == (5, 5)


# --- 1. names come from code ---------------------------------------------------------------------
def search(query: str, api_key: str) -> str:
    return f"results for {query}"


class Searcher:
    def __call__(self, query: str) -> str:
        return query


KEYED = functools.partial(search, api_key=SECRET)


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        pytest.param(KEYED, "partial", id="partial"),
        pytest.param(Searcher(), "Searcher", id="instance"),
    ],
)
@pytest.mark.parametrize("what", ["tool", "llm", "agent"])
def test_callables_without_a_code_name_need_name(target: Any, kind: str, what: str) -> None:
    """A partial or a callable instance has no name of its own: decorating it without
    ``name=`` is a TypeError that asks for one and quotes no repr (no bound argument, no
    memory address)."""
    deco = getattr(agentrel, what)
    with pytest.raises(TypeError) as info:
        deco(target)
    message = str(info.value)
    assert "name" in message and kind in message
    assert SECRET not in message and "0x" not in message


def test_a_named_partial_records_its_name_only(cap: testing.Capture) -> None:
    """With ``name=``, a partial holding a secret is a tool named ``search``: the name is the
    label and the span name, and the secret is in neither, nor in the inventory."""
    tool = agentrel.tool(name="search")(KEYED)
    llm = agentrel.llm(name="chat keyed")(KEYED)
    agent = agentrel.agent("keyed")(KEYED)
    assert tool("q") == llm("q") == agent("q") == "results for q"
    assert calls(cap) == {("search", "success"): (1, 1), ("chat keyed", "success"): (1, 1)}
    assert runs(cap) == {("keyed", "success"): (1, 0, 0)}
    assert [s[0] for s in spans(cap)] == [
        "execute_tool search",
        "execute_tool chat keyed",
        "invoke_agent keyed",
    ]
    assert all(SECRET not in str(s.attributes) for s in cap.spans())
    assert all(SECRET not in str(t.as_dict()) for t in agentrel.registered_tools())


def test_functions_methods_and_builtins_keep_their_names(cap: testing.Capture) -> None:
    """Functions, methods, builtins, a callable instance's bound ``__call__`` and a lambda
    (``<lambda>``, as Python names it) are named after ``__name__`` as before."""

    class Box:
        @agentrel.tool
        def fetch(self) -> int:
            return 1

    length = agentrel.tool(len)
    called = agentrel.tool(Searcher().__call__)
    anonymous = agentrel.tool(lambda: 1)
    assert Box().fetch() == 1 and length("abc") == 3 and called("x") == "x" and anonymous() == 1
    assert calls(cap) == {
        ("fetch", "success"): (1, 1),
        ("len", "success"): (1, 1),
        ("__call__", "success"): (1, 1),
        ("<lambda>", "success"): (1, 1),
    }


def test_instrument_tools_are_named_after_the_attribute(cap: testing.Capture) -> None:
    """``agentrel.instrument(obj, tools=...)`` names each tool after the method's attribute
    name (or its ``name`` metadata), never after the object's repr."""

    class Client:
        def __repr__(self) -> str:
            return f"Client(key={SECRET!r}) at 0xdeadbeef"

        def lookup(self, q: str) -> str:
            return q

    proxy = agentrel.instrument(Client(), tools={"lookup": {}})
    assert proxy.lookup("x") == "x"
    assert calls(cap) == {("lookup", "success"): (1, 1)}
    assert spans(cap) == [("execute_tool lookup", "UNSET", "success", None)]


# --- 2. odd decoration targets -------------------------------------------------------------------
class Plain:
    def __init__(self, x: int = 0) -> None:
        self.x = x


@pytest.mark.parametrize(
    "decorate",
    [
        pytest.param(lambda c: agentrel.tool(c), id="tool"),
        pytest.param(lambda c: agentrel.tool("t")(c), id="tool-named"),
        pytest.param(lambda c: agentrel.llm(c), id="llm"),
        pytest.param(lambda c: agentrel.llm(model="m")(c), id="llm-model"),
        pytest.param(lambda c: agentrel.agent(c), id="agent"),
        pytest.param(lambda c: agentrel.agent("a")(c), id="agent-named"),
    ],
)
def test_a_class_is_a_type_error(decorate: Callable[[type], Any]) -> None:
    """Decorating a class is a TypeError at decoration; the class is left as it was
    (``isinstance`` still works)."""
    with pytest.raises(TypeError, match="not a class"):
        decorate(Plain)
    assert isinstance(Plain(1), Plain)


@pytest.mark.parametrize("first", ["tool", "llm"])
@pytest.mark.parametrize("second", ["tool", "llm"])
def test_a_second_call_decoration_is_a_type_error(
    cap: testing.Capture, first: str, second: str
) -> None:
    """A function already wrapped by ``@agentrel.tool`` or ``@agentrel.llm`` cannot be
    wrapped by either again (each call would count twice); the first wrapper keeps working and
    counts each call once."""

    @getattr(agentrel, first)
    def once() -> int:
        return 1

    with pytest.raises(TypeError, match="already decorated by agentrel"):
        getattr(agentrel, second)(once)
    with pytest.raises(TypeError, match="already decorated by agentrel"):
        getattr(agentrel, second)(name="other")(staticmethod(once))
    with agentrel.run("r") as run:
        assert once() == 1
    assert run.attempts == 1
    name = "once" if first == "tool" else "chat once"
    assert calls(cap) == {(name, "success"): (1, 1)}


def test_own_wrappers_around_a_tool_and_agents_around_tools_are_allowed(
    cap: testing.Capture,
) -> None:
    """A wrapper of the application's own (``functools.wraps``) around a tool is a new
    function and may be decorated; ``@agentrel.agent`` around a tool is a run around a call."""

    @agentrel.tool
    def inner() -> int:
        return 1

    @functools.wraps(inner)
    def mine() -> int:
        return inner() + 1

    outer = agentrel.tool(name="outer")(mine)
    as_agent = agentrel.agent("a")(inner)
    assert outer() == 2 and as_agent() == 1
    assert calls(cap) == {("inner", "success"): (2, 2), ("outer", "success"): (1, 1)}
    assert runs(cap) == {("a", "success"): (1, 0, 1)}


def test_failure_when_or_usage_on_a_generator_is_a_type_error() -> None:
    """``failure_when=`` and ``usage=`` read a returned value; on a generator or async
    generator function (which yields its items) they would never be called, so decorating one
    with them is a TypeError at decoration, and so is ``instrument(tools=)`` with
    ``failure_when`` on a generator method."""

    def gen() -> Iterator[int]:
        yield 1

    async def agen() -> AsyncIterator[int]:
        yield 1

    for fn in (gen, agen):
        with pytest.raises(TypeError, match="failure_when= reads the value"):
            agentrel.tool(failure_when=bool)(fn)
        with pytest.raises(TypeError, match="usage= reads the value"):
            agentrel.llm(model="m", usage=lambda r: (1, 1))(fn)

    assert list(agentrel.tool(gen)()) == [1]  # without them, a generator tool as before

    class Streams:
        def items(self) -> Iterator[int]:
            yield 1

    with pytest.raises(TypeError, match="failure_when= reads the value"):
        agentrel.instrument(Streams(), tools={"items": {"failure_when": bool}})


# --- 3. interrupts from host callbacks -----------------------------------------------------------
class Interrupt:
    """A host callback that raises one ``KeyboardInterrupt`` object when it sees ``"boom"``."""

    def __init__(self) -> None:
        self.err = KeyboardInterrupt()

    def __call__(self, value: Any) -> Any:
        if "boom" in str(value):
            raise self.err
        return value


def _configure(cap: testing.Capture, redact: Any = None) -> None:
    agentrel.configure(
        tracer_provider=cap.tracer_provider,
        meter_provider=cap.meter_provider,
        capture_content=redact is not None,
        redact=redact,
    )


CALLBACKS = ["failure_when", "usage", "redact-arguments", "redact-result", "redact-message"]


def _tool_for(callback: str, hook: Interrupt, is_async: bool) -> tuple[Any, str, str]:
    """(decorated function, its call name, the error.type the call is recorded with)."""

    def body(x: str) -> str:
        if callback == "redact-message":
            raise ValueError("boom message")
        return "boom result" if callback in ("redact-result", "failure_when", "usage") else x

    fn: Any
    if is_async:

        async def fn(x: str) -> str:
            await asyncio.sleep(0)
            return body(x)

    else:

        def fn(x: str) -> str:
            return body(x)

    fn.__name__ = fn.__qualname__ = "t"
    if callback == "failure_when":
        return agentrel.tool(failure_when=hook)(fn), "t", "KeyboardInterrupt"
    if callback == "usage":
        return agentrel.llm(model="m", usage=hook)(fn), "chat m", "KeyboardInterrupt"
    etype = "ValueError" if callback == "redact-message" else "KeyboardInterrupt"
    return agentrel.tool(fn), "t", etype


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("callback", CALLBACKS)
def test_interrupt_from_a_host_callback_ends_the_call(
    cap: testing.Capture, opened: Started, callback: str, is_async: bool
) -> None:
    """A KeyboardInterrupt raised by ``failure_when``, ``usage=`` or ``redact`` (on the
    arguments, the result or the exception message) propagates as the very object, after the
    call was finished and left and its span ended: the call is a failed attempt with the
    interrupt's class name (or, for the message, the tool's own exception). Later failures
    outside any run are counted exactly (5, not 0)."""
    hook = Interrupt()
    _configure(cap, redact=hook if callback.startswith("redact") else None)
    fn, name, etype = _tool_for(callback, hook, is_async)
    arg = "boom arg" if callback == "redact-arguments" else "x"
    with pytest.raises(KeyboardInterrupt) as info:
        if is_async:
            asyncio.run(fn(arg))
        else:
            fn(arg)
    assert info.value is hook.err
    if callback == "redact-message":
        assert isinstance(info.value.__context__, ValueError)
    assert CALL.get() is None and RUN.get() is None
    assert calls(cap) == {(name, "failed"): (1, 1)}
    assert failures(cap) == {(name, etype, "false"): 1}
    span_name = "chat m" if callback == "usage" else "execute_tool t"
    assert spans(cap) == [(span_name, "ERROR", "failed", etype)]
    assert opened.started == opened.ended == 1
    _five_failures_outside_runs(cap)
    assert opened.started == opened.ended == 6
    assert agentrel.telemetry_errors() == {}


def test_a_held_interrupt_survives_a_failure_later_in_the_finish(
    cap: testing.Capture, opened: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``redact`` raises KeyboardInterrupt on a failed call's message, and then finishing the
    call fails (a broken hand-over, injected): the interrupt still reaches the caller, the
    failure is one telemetry error (``call.finish``), the span is ended and the call left."""
    import agentrel._call

    def broken(*args: Any) -> None:
        raise RuntimeError("hand-over")

    hook = Interrupt()
    _configure(cap, redact=hook)
    monkeypatch.setattr(agentrel._call, "_hand_over", broken)

    @agentrel.tool
    def t() -> None:
        raise ValueError("boom message")

    with pytest.raises(KeyboardInterrupt) as info:
        t()
    assert info.value is hook.err
    assert CALL.get() is None
    assert agentrel.telemetry_errors() == {"call.finish": 1}
    assert opened.started == opened.ended == 1


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("callback", ["failure_when", "usage", "redact-arguments"])
def test_an_exception_from_a_host_callback_is_a_telemetry_error(
    cap: testing.Capture, callback: str, is_async: bool
) -> None:
    """The control: an ``Exception`` from the same callbacks is counted as a telemetry error
    under its site, and the call records as if the callback were absent."""

    def hook(value: Any) -> Any:
        if "boom" in str(value):
            raise RuntimeError("hook")
        return value

    _configure(cap, redact=hook if callback.startswith("redact") else None)
    fn, name, _ = _tool_for(callback, Interrupt(), is_async)
    if callback == "failure_when":
        fn = agentrel.tool(name="t2", failure_when=hook)(fn.__wrapped__)
        name = "t2"
    elif callback == "usage":
        fn = agentrel.llm(model="m2", usage=hook)(fn.__wrapped__)
        name = "chat m2"
    arg = "boom arg" if callback == "redact-arguments" else "x"
    result = asyncio.run(fn(arg)) if is_async else fn(arg)
    assert result == ("boom result" if callback != "redact-arguments" else arg)
    assert calls(cap) == {(name, "success"): (1, 1)}
    site = {"failure_when": "failure_when", "usage": "llm.usage"}.get(callback, "redact")
    # redact sees "boom" twice: in the arguments and in the result (the argument returned)
    assert agentrel.telemetry_errors() == {site: 2 if site == "redact" else 1}


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_interrupt_from_redact_in_a_generator_tool(
    cap: testing.Capture, opened: Started, is_async: bool
) -> None:
    """A generator tool whose body raises while ``redact`` raises KeyboardInterrupt on the
    message: the call is a failed attempt ``ValueError``, its span ended, the context restored
    for the consumer, and the interrupt reaches the consumer."""
    hook = Interrupt()
    _configure(cap, redact=hook)

    @agentrel.tool
    def gen() -> Iterator[int]:
        yield 1
        raise ValueError("boom in gen")

    @agentrel.tool
    async def agen() -> AsyncIterator[int]:
        yield 1
        raise ValueError("boom in gen")

    async def drain() -> list[int]:
        return [i async for i in agen()]

    with pytest.raises(KeyboardInterrupt) as info:
        if is_async:
            asyncio.run(drain())
        else:
            list(gen())
    assert info.value is hook.err
    assert CALL.get() is None
    name = "agen" if is_async else "gen"
    assert calls(cap) == {(name, "failed"): (1, 1)}
    assert failures(cap) == {(name, "ValueError", "false"): 1}
    assert opened.started == opened.ended == 1
    _five_failures_outside_runs(cap)
    assert agentrel.telemetry_errors() == {}


@pytest.mark.parametrize("form", ["function", "async", "generator"])
def test_interrupt_from_redact_in_an_agent_run(
    cap: testing.Capture, opened: Started, form: str
) -> None:
    """An ``@agentrel.agent`` function (sync, async or generator) whose body raises while
    ``redact`` raises KeyboardInterrupt on the run's message: the run is ``failed``
    ``ValueError`` with its span ended, no run stays current, and the interrupt propagates."""
    hook = Interrupt()
    _configure(cap, redact=hook)

    @agentrel.agent("a")
    def sync() -> None:
        raise ValueError("boom run")

    @agentrel.agent("a")
    async def coro() -> None:
        raise ValueError("boom run")

    @agentrel.agent("a")
    def gen() -> Iterator[int]:
        yield 1
        raise ValueError("boom run")

    with pytest.raises(KeyboardInterrupt) as info:
        if form == "function":
            sync()
        elif form == "async":
            asyncio.run(coro())
        else:
            list(gen())
    assert info.value is hook.err
    assert RUN.get() is None and CALL.get() is None
    assert runs(cap) == {("a", "failed"): (1, 0, 0)}
    assert spans(cap) == [("invoke_agent a", "ERROR", "failed", "ValueError")]
    assert opened.started == opened.ended == 1
    assert agentrel.telemetry_errors() == {}


@pytest.mark.parametrize("form", ["with", "async with"])
def test_interrupt_from_redact_in_a_run_block(
    cap: testing.Capture, opened: Started, form: str
) -> None:
    """``with agentrel.run(...)`` (or ``async with``) whose body raises while ``redact``
    raises KeyboardInterrupt on the run's message: the run is ``failed`` ``ValueError`` with
    its span ended, it is no longer current, and the interrupt propagates."""
    hook = Interrupt()
    _configure(cap, redact=hook)
    scope = agentrel.run("a")

    async def body() -> None:
        async with scope:
            raise ValueError("boom run")

    with pytest.raises(KeyboardInterrupt) as info:
        if form == "with":
            with scope:
                raise ValueError("boom run")
        else:
            asyncio.run(body())
    assert info.value is hook.err
    assert RUN.get() is None and CALL.get() is None
    assert runs(cap) == {("a", "failed"): (1, 0, 0)}
    assert spans(cap) == [("invoke_agent a", "ERROR", "failed", "ValueError")]
    assert opened.started == opened.ended == 1


def test_interrupt_from_failure_when_in_a_run(cap: testing.Capture, opened: Started) -> None:
    """Inside a run: the interrupted call is one failed attempt of the run, the run is
    ``failed`` ``KeyboardInterrupt`` with depth 1, and the next run records alone."""
    hook = Interrupt()

    @agentrel.tool(failure_when=lambda r: hook(r) == "flag")
    def t(x: str) -> str:
        return x

    with pytest.raises(KeyboardInterrupt):
        with agentrel.run("r"):
            t("boom")
    with agentrel.run("r2") as run2:
        t("fine")
    assert (run2.outcome, run2.attempts, run2.retry_depth) == ("success", 1, 0)
    assert runs(cap) == {("r", "failed"): (1, 1, 1), ("r2", "success"): (1, 0, 1)}
    assert failures(cap) == {("t", "KeyboardInterrupt", "false"): 1}
    assert opened.started == opened.ended == 4


# --- 4. recursion up to the interpreter's limit --------------------------------------------------
@pytest.mark.parametrize("in_run", [False, True], ids=["outside-run", "in-run"])
def test_recursion_to_the_limit_ends_every_span(
    cap: testing.Capture, opened: Started, in_run: bool
) -> None:
    """A decorated tool that recurses until RecursionError: every span started is ended, the
    RecursionError is one failure (innermost call), every call agentrel recorded is counted,
    and the calls too close to the limit to record ran unrecorded, each counted in
    ``telemetry_errors()["call.depth"]``: recorded + unrecorded = calls made."""
    made = [0]

    @agentrel.tool
    def rec(d: int) -> int:
        made[0] += 1
        return rec(d + 1)

    def go() -> None:
        with pytest.raises(RecursionError):
            rec(0)

    if in_run:
        with agentrel.run("r") as run:
            go()
    else:
        go()
    assert CALL.get() is None
    skipped = agentrel.telemetry_errors()["call.depth"]
    recorded = made[0] - skipped
    assert agentrel.telemetry_errors() == {"call.depth": skipped}
    assert 400 < recorded < made[0] < sys.getrecursionlimit()
    assert opened.started == opened.ended == recorded + (1 if in_run else 0)
    # the innermost recorded call failed RecursionError and every enclosing one with it
    assert calls(cap) == {("rec", "failed"): (recorded, recorded)}
    absorbed = "false"
    if in_run:
        assert (run.attempts, run.retry_depth, run.outcome) == (recorded, 1, "recovered")
        absorbed = "true"  # the run caught it and went on
    assert failures(cap) == {("rec", "RecursionError", absorbed): 1}


def test_a_tool_called_at_the_limit_by_undecorated_recursion(
    cap: testing.Capture, opened: Started
) -> None:
    """An undecorated recursive function that calls a tool at every level until
    RecursionError: every span started is ended, and each tool call is either recorded
    (a success) or, too close to the limit, unrecorded and counted in ``call.depth``."""
    made = [0]

    @agentrel.tool
    def leaf() -> int:
        made[0] += 1
        return 1

    def down(d: int) -> int:
        leaf()
        return down(d + 1)

    with pytest.raises(RecursionError):
        down(0)
    skipped = agentrel.telemetry_errors().get("call.depth", 0)
    recorded = made[0] - skipped
    assert 0 < skipped < 100 and 800 < recorded < made[0]
    assert agentrel.telemetry_errors() == {"call.depth": skipped}
    assert opened.started == opened.ended == recorded
    assert calls(cap) == {("leaf", "success"): (recorded, recorded)}
    assert failures(cap) == {}
