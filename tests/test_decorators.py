"""The decorators leave the host's functions as they were: value, exception, signature,
docstring, async-ness; and they fail loudly at decoration time on bad arguments."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import agentrel
from agentrel import testing
from agentrel._catalogue import OUTCOME, TOOL
from agentrel.instrumentation import current_call

TA = "agentrel.tool.attempts"


@agentrel.tool(system="kb", owner="search-oncall")
def search(query: str, *, limit: int = 3) -> list[str]:
    """Search the knowledge base.

    More text."""
    return [query] * limit


def _undecorated_search(query: str, *, limit: int = 3) -> list[str]:
    return [query] * limit


def test_signature_docstring_name_kept() -> None:
    """inspect sees the original signature, docstring and name."""
    assert str(inspect.signature(search)) == str(inspect.signature(_undecorated_search))
    assert "(query: 'str', *, limit: 'int' = 3)" in str(inspect.signature(search))
    assert search.__doc__ is not None and search.__doc__.startswith("Search the knowledge base.")
    assert search.__name__ == "search"
    assert search.__wrapped__ is not None  # type: ignore[attr-defined]


def test_description_defaults_to_docstring_first_line() -> None:
    """The inventory's description is the docstring's first line unless given."""
    # the inventory is process-wide: other test modules declare a "search" tool of "kb" too
    [info] = [
        t
        for t in agentrel.registered_tools()
        if t.name == "search" and t.system == "kb" and t.where.startswith(f"{__file__}:")
    ]
    assert info.description == "Search the knowledge base."
    assert info.owner == "search-oncall"
    assert info.line == search.__wrapped__.__code__.co_firstlineno  # type: ignore[attr-defined]
    assert info.where == f"{__file__}:{info.line}"


def test_async_stays_async(cap: testing.Capture) -> None:
    """An async tool is still a coroutine function and awaits to its value."""

    @agentrel.tool
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    assert inspect.iscoroutinefunction(fetch)

    async def main() -> int:
        async with agentrel.run("a") as run:
            v = await fetch(21)
        assert run.outcome == "success"
        return v

    assert asyncio.run(main()) == 42
    assert cap.histogram(TA, {TOOL: "fetch", OUTCOME: "success"}).count == 1


def test_methods_static_and_class_methods(cap: testing.Capture) -> None:
    """Instance, static and class methods keep working, in either decorator order."""

    class Client:
        factor = 3

        @agentrel.tool
        def method(self, x: int) -> int:
            return x * self.factor

        @agentrel.tool
        @staticmethod
        def static(x: int) -> int:
            return x + 1

        @agentrel.tool
        @classmethod
        def klass(cls, x: int) -> int:
            return x * cls.factor

        @staticmethod
        @agentrel.tool(name="static2")
        def static2(x: int) -> int:
            return x - 1

    c = Client()
    assert (c.method(2), Client.static(2), Client.klass(2), c.static2(2)) == (6, 3, 6, 1)
    assert cap.histogram(TA).count == 4
    names = {a[TOOL] for a in cap.label_sets(TA)}
    assert names == {"method", "static", "klass", "static2"}


def test_generator_call_spans_iteration(cap: testing.Capture) -> None:
    """A generator tool is one call over the whole iteration; its context does not leak
    into the consumer between items."""

    @agentrel.tool
    def rows(n: int) -> Iterator[int]:
        for i in range(n):
            assert current_call() is not None
            yield i
        agentrel.record_tokens(output=n)

    seen = []
    with agentrel.run("g") as run:
        for r in rows(3):
            assert current_call() is None  # consumer's context is untouched
            seen.append(r)
    assert seen == [0, 1, 2]
    assert (run.attempts, run.useful_tokens) == (1, 3)
    assert cap.histogram(TA, {TOOL: "rows", OUTCOME: "success"}).count == 1
    assert inspect.isgeneratorfunction(rows)


def test_generator_failure_and_early_close(cap: testing.Capture) -> None:
    """An exception mid-iteration fails the call; stopping early is not a failure."""

    @agentrel.tool
    def broken() -> Iterator[int]:
        yield 1
        raise ValueError("mid-stream")

    @agentrel.tool
    def endless() -> Iterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    with agentrel.run("g"):
        with pytest.raises(ValueError, match="mid-stream"):
            list(broken())
        for i in endless():
            if i == 5:
                break
    assert cap.histogram(TA, {TOOL: "broken", OUTCOME: "failed"}).count == 1
    assert cap.histogram(TA, {TOOL: "endless", OUTCOME: "success"}).count == 1


def test_generator_send_and_return_value(cap: testing.Capture) -> None:
    """send() values reach the wrapped generator and its return value comes back."""

    @agentrel.tool
    def echo() -> Any:
        total = 0
        while True:
            x = yield total
            if x is None:
                return total
            total += x

    g = echo()
    assert next(g) == 0
    assert g.send(5) == 5
    assert g.send(2) == 7
    with pytest.raises(StopIteration) as stop:
        g.send(None)
    assert stop.value.value == 7


def test_async_generator(cap: testing.Capture) -> None:
    """An async generator tool is one call spanning the iteration."""

    @agentrel.tool
    async def stream(n: int) -> AsyncIterator[str]:
        for i in range(n):
            await asyncio.sleep(0)
            yield f"chunk{i}"

    assert inspect.isasyncgenfunction(stream)

    async def main() -> list[str]:
        async with agentrel.run("s"):
            return [c async for c in stream(3)]

    assert asyncio.run(main()) == ["chunk0", "chunk1", "chunk2"]
    assert cap.histogram(TA, {TOOL: "stream", OUTCOME: "success"}).count == 1


def test_agent_decorator_forms(cap: testing.Capture) -> None:
    """@agent named and bare, sync and async, make one run per call."""

    @agentrel.agent("triage", cohort=None)
    def triage(x: int) -> int:
        return x

    @agentrel.agent
    async def planner() -> str:
        return "plan"

    assert triage(4) == 4
    assert asyncio.run(planner()) == "plan"
    assert inspect.iscoroutinefunction(planner)
    agents = sorted(a["gen_ai.agent.name"] for a in cap.label_sets("agentrel.run.retry_depth"))
    assert agents == ["planner", "triage"]


def test_agent_generator(cap: testing.Capture) -> None:
    """A streaming agent is one run over its iteration; the run is not current between items."""

    @agentrel.tool
    def fetch() -> str:
        return "x"

    @agentrel.agent("streamer")
    def streamer() -> Iterator[str]:
        yield fetch()
        yield fetch()

    for _ in streamer():
        assert agentrel.current_run() is None
    h = cap.histogram("agentrel.run.attempts", {"gen_ai.agent.name": "streamer"})
    assert (h.count, h.sum) == (1, 2)


def test_llm_usage_extractor(cap: testing.Capture) -> None:
    """@llm(usage=) records the response's tokens and the GenAI semconv metrics."""

    @agentrel.llm(model="gpt-x", provider="openai", usage=lambda r: (r["in"], r["out"]))
    def complete() -> dict[str, int]:
        return {"in": 12, "out": 30}

    with agentrel.run("r") as run:
        assert complete() == {"in": 12, "out": 30}
    assert run.useful_tokens == 42
    usage = cap.histogram("gen_ai.client.token.usage", {"gen_ai.token.type": "output"})
    assert (usage.count, usage.sum) == (1, 30)
    [span] = cap.spans("chat gpt-x")
    assert span.attributes["gen_ai.usage.input_tokens"] == 12
    assert span.attributes["gen_ai.provider.name"] == "openai"
    assert cap.histogram("gen_ai.client.operation.duration").count == 1


@pytest.mark.parametrize(
    ("make", "error"),
    [
        pytest.param(lambda: agentrel.tool(42), TypeError, id="tool-not-callable"),
        pytest.param(lambda: agentrel.tool(idempotent="no")(len), TypeError, id="idempotent"),
        pytest.param(lambda: agentrel.tool(failure_when=3), TypeError, id="failure_when"),
        pytest.param(lambda: agentrel.tool(name="")(len), TypeError, id="empty-name"),
        pytest.param(lambda: agentrel.tool("a", name="b"), TypeError, id="name-twice"),
        pytest.param(lambda: agentrel.agent(3), TypeError, id="agent-name"),
        pytest.param(lambda: agentrel.run("r", token_budget=0), ValueError, id="budget"),
        pytest.param(lambda: agentrel.run("r", cohort=5), TypeError, id="cohort"),
        pytest.param(lambda: agentrel.llm(usage="x"), TypeError, id="usage"),
        pytest.param(lambda: agentrel.llm(model=3), TypeError, id="model"),
    ],
)
def test_bad_arguments_fail_at_decoration(make: Any, error: type[Exception]) -> None:
    """Mistakes surface when the code is decorated, not at the first call."""
    with pytest.raises(error):
        make()


def test_span_kinds(cap: testing.Capture) -> None:
    """GenAI semconv: chat spans are CLIENT, tool and agent spans INTERNAL."""
    from opentelemetry.trace import SpanKind

    @agentrel.llm(model="m")
    def ask() -> str:
        return "a"

    @agentrel.tool
    def t() -> int:
        return 1

    with agentrel.run("k"):
        ask()
        t()
    kinds = {s.name: s.kind for s in cap.spans()}
    assert kinds == {
        "chat m": SpanKind.CLIENT,
        "execute_tool t": SpanKind.INTERNAL,
        "invoke_agent k": SpanKind.INTERNAL,
    }
