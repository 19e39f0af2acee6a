"""LangGraph / LangChain integration: real graphs, LangChain's fake chat models, exact counts."""

from __future__ import annotations

import asyncio
import inspect
import json
import operator
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langgraph")

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.tools import BaseTool, InjectedToolCallId, ToolException, tool
from langgraph.errors import GraphRecursionError
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.pregel import Pregel
from langgraph.types import RetryPolicy
from typing_extensions import TypedDict

import agentrel
from agentrel import instrumentation as ai
from agentrel import testing
from agentrel.integrations import langgraph as agentrel_langgraph

ROOT = Path(__file__).resolve().parents[1]
FAILURES = "agentrel.tool.failures"
TOKENS = "agentrel.tokens"
NO_WAIT = RetryPolicy(initial_interval=0.0, jitter=False, max_attempts=3)


@pytest.fixture(autouse=True)
def _instrumented() -> Iterator[None]:
    agentrel_langgraph.instrument()
    yield
    agentrel_langgraph.uninstrument()


@pytest.fixture
def runs() -> Iterator[list[agentrel.Run]]:
    seen: list[agentrel.Run] = []
    remove = ai.on_run_finish(seen.append)
    yield seen
    remove()


# --- test doubles ----------------------------------------------------------------------------
class ScriptedModel(FakeMessagesListChatModel):
    """LangChain's fake chat model, able to sit in an agent (bind_tools is a no-op)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
        return self


class StreamingModel(ScriptedModel):
    """Streams each scripted message in two chunks, usage on the last one."""

    def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        msg = self._generate(messages, stop=stop).generations[0].message
        assert isinstance(msg, AIMessage)
        text = str(msg.content)
        yield ChatGenerationChunk(message=AIMessageChunk(content=text[:2]))
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content=text[2:],
                tool_call_chunks=[
                    {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
                    for i, c in enumerate(msg.tool_calls)
                ],
                usage_metadata=msg.usage_metadata,
            )
        )


def ask(tool_name: str, call_id: str, tokens: tuple[int, int] = (10, 5), **args: Any) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=[{"name": tool_name, "args": args or {"q": "x"}, "id": call_id}],
        usage_metadata=usage(*tokens),
    )


def answer(text: str = "done", tokens: tuple[int, int] = (20, 3)) -> AIMessage:
    return AIMessage(content=text, usage_metadata=usage(*tokens))


def usage(i: int, o: int) -> Any:
    return {"input_tokens": i, "output_tokens": o, "total_tokens": i + o}


class State(TypedDict):
    messages: Annotated[list[Any], operator.add]


def agent(model: Any, tools: list[Any], *, name: str = "support", handle: Any = True) -> Any:
    """A ReAct agent built from LangGraph's parts: a model node, a ToolNode, tools_condition."""
    from langgraph.prebuilt import tools_condition

    def call_model(state: State) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    async def acall_model(state: State) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    from langchain_core.runnables import RunnableLambda

    g = StateGraph(State)
    g.add_node("agent", RunnableLambda(call_model, afunc=acall_model))
    g.add_node("tools", ToolNode(tools, handle_tool_errors=handle))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(name=name)


def flaky(fails: int, exc: type[Exception] = ValueError) -> Any:
    state = {"n": 0}

    def lookup(q: str) -> str:
        """Look a thing up."""
        state["n"] += 1
        if state["n"] <= fails:
            raise exc("down")
        return "found " + q

    return lookup


USER = {"messages": [("user", "hi")]}


# --- the scenarios ---------------------------------------------------------------------------
def test_tool_fails_twice_then_succeeds(cap: testing.Capture, runs: list[agentrel.Run]) -> None:
    """handle_tool_errors hands two ValueErrors to the model, which asks again each time."""
    model = ScriptedModel(
        responses=[ask("lookup", "c1"), ask("lookup", "c2"), ask("lookup", "c3"), answer()]
    )
    out = agent(model, [tool(flaky(2))]).invoke(USER)
    assert out["messages"][-1].content == "done"
    (run,) = runs
    assert (run.name, run.outcome, run.retry_depth, run.attempts) == ("support", "recovered", 2, 7)
    # Two responses whose tool calls failed are wasted: 2 x 15; useful 15 + 23.
    assert (run.useful_tokens, run.wasted_tokens) == (38, 30)
    assert run.token_amplification == pytest.approx(68 / 38)
    want = {"gen_ai.tool.name": "lookup", "error.type": "ValueError", "agentrel.absorbed": "true"}
    assert cap.counter(FAILURES, want) == 2
    assert cap.histogram("agentrel.tool.attempts", {"gen_ai.tool.name": "lookup"}).count == 3
    # The fake model names no model: its calls are "chat" (a real one: "chat gpt-4o", ...).
    assert cap.histogram("agentrel.tool.attempts", {"gen_ai.tool.name": "chat"}).count == 4
    assert len(cap.spans("execute_tool lookup")) == 3
    assert len([s for s in cap.spans() if s.name.startswith("chat")]) == 4
    assert cap.counter(TOKENS, {"agentrel.token.disposition": "wasted"}) == 30
    assert cap.counter(TOKENS, {"agentrel.token.disposition": "useful"}) == 38
    (span,) = cap.spans("invoke_agent support")
    assert span.attributes["agentrel.outcome"] == "recovered"
    tool_span = cap.spans("execute_tool lookup")[0]
    assert tool_span.parent.span_id == span.context.span_id
    assert tool_span.attributes["agentrel.integration"] == "langgraph"
    assert tool_span.attributes["gen_ai.tool.description"] == "Look a thing up."
    assert agentrel.telemetry_errors() == {}


def test_tool_error_unhandled_fails_the_run(cap: testing.Capture, runs: list[agentrel.Run]) -> None:
    """ToolNode's default lets a tool's exception through: the same object leaves invoke."""
    err = KeyError("k")

    @tool
    def lookup(q: str) -> str:
        """Look a thing up."""
        raise err

    model = ScriptedModel(responses=[ask("lookup", "c1"), answer()])
    graph = agent(model, [lookup], handle=False)
    with pytest.raises(KeyError) as info:
        graph.invoke(USER)
    assert info.value is err
    (run,) = runs
    assert (run.outcome, run.retry_depth, run.attempts, run.wasted_tokens, run.useful_tokens) == (
        "failed",
        1,
        2,
        15,
        0,
    )
    assert cap.counter(FAILURES, {"error.type": "KeyError", "agentrel.absorbed": "false"}) == 1


def test_tools_own_handler_turns_the_error_into_a_message(
    cap: testing.Capture, runs: list[agentrel.Run]
) -> None:
    """A ToolException the tool's handle_tool_error turns into status="error": a failed call
    whose error.type is the handled exception's class."""

    def lookup(q: str) -> str:
        """Look a thing up."""
        raise ToolException("no such thing")

    from langchain_core.tools import StructuredTool

    t = StructuredTool.from_function(lookup, handle_tool_error=True)
    model = ScriptedModel(responses=[ask("lookup", "c1"), answer()])
    out = agent(model, [t], handle=False).invoke(USER)
    assert out["messages"][2].status == "error"
    (run,) = runs
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 3)
    assert (run.useful_tokens, run.wasted_tokens) == (23, 15)
    assert cap.counter(FAILURES, {"error.type": "ToolException", "agentrel.absorbed": "true"}) == 1
    assert cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "failed"}).count == 1


def test_retry_policy_attempts_are_one_call(cap: testing.Capture, runs: list[agentrel.Run]) -> None:
    """A node under RetryPolicy that fails twice: one call with three attempts."""
    fetch_fn = flaky(2, ConnectionError)

    def fetch(state: State) -> dict[str, Any]:
        return {"messages": [fetch_fn("x")]}

    g = StateGraph(State)
    g.add_node("fetch", fetch, retry_policy=NO_WAIT)
    g.add_edge(START, "fetch")
    g.add_edge("fetch", END)
    out = g.compile(name="fetcher").invoke({"messages": []})
    assert out["messages"] == ["found x"]
    (run,) = runs
    assert (run.name, run.outcome, run.retry_depth, run.attempts) == ("fetcher", "recovered", 2, 3)
    assert cap.histogram("agentrel.tool.attempts", {"gen_ai.tool.name": "fetch"}).sum == 3
    assert cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "recovered"}).count == 1
    assert cap.counter(FAILURES, {"error.type": "ConnectionError"}) == 2
    assert cap.histogram("agentrel.retry.delay", {"gen_ai.tool.name": "fetch"}).count == 2
    (span,) = cap.spans("execute_tool fetch")
    assert span.attributes["agentrel.call.attempts"] == 3
    assert len([e for e in span.events if e.name == "agentrel.attempt"]) == 3


def test_retry_policy_exhausted(cap: testing.Capture, runs: list[agentrel.Run]) -> None:
    """Every attempt fails: the run is exhausted, the last exception propagates unchanged."""
    raised: list[BaseException] = []

    def fetch(state: State) -> dict[str, Any]:
        raised.append(ConnectionError("down"))
        raise raised[-1]

    g = StateGraph(State)
    g.add_node("fetch", fetch, retry_policy=NO_WAIT)
    g.add_edge(START, "fetch")
    with pytest.raises(ConnectionError) as info:
        g.compile(name="fetcher").invoke({"messages": []})
    assert info.value is raised[-1] and len(raised) == 3
    (run,) = runs
    assert (run.outcome, run.retry_depth, run.attempts) == ("exhausted", 3, 3)
    assert cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "exhausted"}).sum == 3
    assert (
        cap.counter(FAILURES, {"error.type": "ConnectionError", "agentrel.absorbed": "false"}) == 3
    )


def test_retry_policy_around_a_model_node_counts_each_request_once(
    cap: testing.Capture, runs: list[agentrel.Run]
) -> None:
    """The model node fails once after its request (a parse error, say): the node call's two
    attempts hold the two requests, which are the run's attempts (not four)."""
    model = ScriptedModel(responses=[answer("bad"), answer("good")])

    def call_model(state: State) -> dict[str, Any]:
        reply = model.invoke(state["messages"])
        if reply.content == "bad":
            raise ValueError("unparseable")
        return {"messages": [reply]}

    g = StateGraph(State)
    g.add_node("agent", call_model, retry_policy=NO_WAIT._replace(retry_on=ValueError))
    g.add_edge(START, "agent")
    out = g.compile(name="parser").invoke(USER)
    assert out["messages"][-1].content == "good"
    (run,) = runs
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 2)
    assert (run.useful_tokens, run.wasted_tokens) == (23, 23)
    assert cap.counter(FAILURES, {"gen_ai.tool.name": "agent", "error.type": "ValueError"}) == 1
    (node,) = cap.spans("execute_tool agent")
    chats = cap.spans("chat")
    assert len(chats) == 2 and {c.parent.span_id for c in chats} == {node.context.span_id}


def test_recursion_limit_after_failures_is_exhausted(
    cap: testing.Capture, runs: list[agentrel.Run]
) -> None:
    """The model keeps calling a tool that keeps failing until GraphRecursionError."""
    model = ScriptedModel(responses=[ask("lookup", f"c{i}") for i in range(10)])
    with pytest.raises(GraphRecursionError):
        agent(model, [tool(flaky(99))]).invoke(USER, {"recursion_limit": 6})
    (run,) = runs
    # Six steps: agent, tools, agent, tools, agent, tools: three requests, three failures.
    assert (run.outcome, run.retry_depth, run.attempts) == ("exhausted", 3, 6)
    assert (run.useful_tokens, run.wasted_tokens) == (0, 45)
    assert cap.counter(FAILURES, {"error.type": "ValueError", "agentrel.absorbed": "false"}) == 3


def test_async_tool(cap: testing.Capture, runs: list[agentrel.Run]) -> None:
    """An async tool through ainvoke: the same counts as a sync one."""
    state = {"n": 0}

    @tool
    async def lookup(q: str) -> str:
        """Look a thing up."""
        state["n"] += 1
        if state["n"] == 1:
            raise TimeoutError("slow")
        return "found"

    model = ScriptedModel(responses=[ask("lookup", "c1"), ask("lookup", "c2"), answer()])
    out = asyncio.run(agent(model, [lookup]).ainvoke(USER))
    assert out["messages"][-1].content == "done"
    (run,) = runs
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 5)
    assert (run.useful_tokens, run.wasted_tokens) == (38, 15)
    assert cap.counter(FAILURES, {"error.type": "TimeoutError", "agentrel.absorbed": "true"}) == 1


def test_two_concurrent_runs(cap: testing.Capture, runs: list[agentrel.Run]) -> None:
    """Two agents under asyncio.gather, with the same tool call ids, keep their own counts."""
    slow = ScriptedModel(
        responses=[ask("search", "c1"), ask("search", "c2"), ask("search", "c3"), answer()],
        sleep=0.01,
    )
    fast = ScriptedModel(responses=[ask("fetch", "c1"), answer()])
    search = tool("search")(flaky(2))
    fetch = tool("fetch")(flaky(0))

    async def main() -> list[Any]:
        return await asyncio.gather(
            agent(slow, [search], name="a").ainvoke(USER),
            agent(fast, [fetch], name="b").ainvoke(USER),
        )

    asyncio.run(main())
    by_name = {r.name: r for r in runs}
    a, b = by_name["a"], by_name["b"]
    assert (a.outcome, a.retry_depth, a.attempts, a.useful_tokens, a.wasted_tokens) == (
        "recovered",
        2,
        7,
        38,
        30,
    )
    assert (b.outcome, b.retry_depth, b.attempts, b.useful_tokens, b.wasted_tokens) == (
        "success",
        0,
        3,
        38,
        0,
    )
    assert cap.histogram("agentrel.run.retry_depth", {"gen_ai.agent.name": "a"}).sum == 2
    assert cap.histogram("agentrel.run.retry_depth", {"gen_ai.agent.name": "b"}).sum == 0


def test_streamed_run(cap: testing.Capture, runs: list[agentrel.Run]) -> None:
    """graph.stream(), with the model streaming its tokens: counted like invoke."""
    model = StreamingModel(responses=[ask("lookup", "c1"), ask("lookup", "c2"), answer()])
    chunks = list(agent(model, [tool(flaky(1))]).stream(USER, stream_mode=["updates", "messages"]))
    assert len(chunks) > 3
    assert agentrel.current_run() is None  # the run is not left current in the consumer
    (run,) = runs
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 5)
    assert (run.useful_tokens, run.wasted_tokens) == (38, 15)
    assert cap.counter(FAILURES, {"error.type": "ValueError", "agentrel.absorbed": "true"}) == 1


def test_async_stream_and_the_consumer_between_chunks(
    cap: testing.Capture, runs: list[agentrel.Run]
) -> None:
    """astream(): the run is current while the graph works, not in the consumer's loop."""
    model = ScriptedModel(responses=[ask("lookup", "c1"), answer()])
    seen: list[Any] = []

    async def main() -> None:
        async for _ in agent(model, [tool(flaky(0))]).astream(USER):
            seen.append(agentrel.current_run())

    asyncio.run(main())
    assert seen and all(r is None for r in seen)
    (run,) = runs
    assert (run.outcome, run.retry_depth, run.attempts, run.tokens) == ("success", 0, 3, 38)


def test_stream_abandoned_fails_the_run(cap: testing.Capture, runs: list[agentrel.Run]) -> None:
    """A consumer that stops reading closes the stream: the run fails with GeneratorExit."""
    model = ScriptedModel(responses=[ask("lookup", "c1"), answer()])
    stream = agent(model, [tool(flaky(0))]).stream(USER)
    next(stream)
    stream.close()
    (run,) = runs
    assert (run.outcome, run.attempts, run.wasted_tokens) == ("failed", 1, 15)
    (span,) = cap.spans("invoke_agent support")
    assert span.attributes["error.type"] == "GeneratorExit"


def test_cancelled_run_is_failed(cap: testing.Capture, runs: list[agentrel.Run]) -> None:
    """Cancellation by the caller fails the run (error.type CancelledError)."""
    started = asyncio.Event()

    @tool
    async def lookup(q: str) -> str:
        """Look a thing up."""
        started.set()
        await asyncio.sleep(10)
        return "never"

    model = ScriptedModel(responses=[ask("lookup", "c1"), answer()])

    async def main() -> None:
        task = asyncio.ensure_future(agent(model, [lookup]).ainvoke(USER))
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    (run,) = runs
    assert (run.outcome, run.retry_depth, run.attempts) == ("failed", 1, 2)
    (span,) = cap.spans("invoke_agent support")
    assert span.attributes["error.type"] == "CancelledError"
    assert cap.counter(FAILURES, {"error.type": "CancelledError"}) == 1
    # the rule the three frameworks share: the cut-off tool is the run's one failure
    ((_, depth),) = cap.points("agentrel.run.retry_depth")
    assert (depth.count, depth.sum) == (1, 1)
    assert cap.counter(FAILURES) == depth.sum
    assert cap.counter(FAILURES, {"agentrel.absorbed": "false"}) == 1


def test_enclosing_run_is_joined(runs: list[agentrel.Run]) -> None:
    """The application's own agentrel.run around the graph is the one run."""
    model = ScriptedModel(responses=[ask("lookup", "c1"), answer()])
    with agentrel.run("app") as outer:
        agent(model, [tool(flaky(0))]).invoke(USER)
    assert runs == [outer]
    assert (outer.attempts, outer.tokens) == (3, 38)


def test_subgraph_in_a_node_joins_the_run(runs: list[agentrel.Run]) -> None:
    """A graph run from another graph's node is part of that run."""
    model = ScriptedModel(responses=[ask("lookup", "c1"), answer()])
    inner = agent(model, [tool(flaky(1))], name="inner")

    def delegate(state: State) -> dict[str, Any]:
        return {"messages": inner.invoke(state)["messages"][-1:]}

    g = StateGraph(State)
    g.add_node("delegate", delegate)
    g.add_edge(START, "delegate")
    g.compile(name="outer").invoke(USER)
    (run,) = runs
    assert (run.name, run.outcome, run.retry_depth, run.attempts) == ("outer", "recovered", 1, 3)


# --- @agentrel.tool on the tool as well ------------------------------------------------------
def _lookup_pair() -> tuple[Any, Any]:
    def plain(q: str, limit: int = 3) -> str:
        """Look a thing up."""
        return q

    async def aplain(q: str, limit: int = 3) -> str:
        """Look a thing up."""
        return q

    return plain, aplain


def test_decorated_tool_keeps_name_description_schema_asyncness() -> None:
    plain, aplain = _lookup_pair()
    bare, decorated = tool(plain), tool(agentrel.tool(plain))
    abare, adecorated = tool(aplain), tool(agentrel.tool(aplain))
    for x, y in ((bare, decorated), (abare, adecorated)):
        assert (
            (x.name, x.description)
            == (y.name, y.description)
            == ("plain" if x is bare else "aplain", "Look a thing up.")
        )
        assert x.args_schema.model_json_schema() == y.args_schema.model_json_schema()
        assert x.tool_call_schema.model_json_schema() == y.tool_call_schema.model_json_schema()
    assert inspect.iscoroutinefunction(adecorated.coroutine) and adecorated.func is None
    # instrument() patches classes, not tools: a tool made before or after is the same object.
    assert isinstance(bare, BaseTool) and not hasattr(bare, "__wrapped__")


@pytest.mark.parametrize(
    "order", ["agentrel.tool inside @tool", "agentrel.tool on the tool's func"]
)
def test_decorated_tool_counted_once(
    order: str, cap: testing.Capture, runs: list[agentrel.Run]
) -> None:
    """@agentrel.tool inside @tool (or on the function a StructuredTool holds): one call per
    execution, named by the tool, failures counted once."""
    fn = flaky(1)
    if order == "agentrel.tool inside @tool":
        t = tool("lookup")(agentrel.tool(system="kb")(fn))
    else:
        from langchain_core.tools import StructuredTool

        t = StructuredTool.from_function(fn, name="lookup")
        t.func = agentrel.tool("lookup", system="kb")(t.func)
    model = ScriptedModel(responses=[ask("lookup", "c1"), ask("lookup", "c2"), answer()])
    agent(model, [t]).invoke(USER)
    (run,) = runs
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 5)
    assert cap.counter(FAILURES, {"error.type": "ValueError"}) == 1
    spans = cap.spans("execute_tool lookup")
    assert len(spans) == 2
    assert spans[0].attributes["agentrel.tool.system"] == "kb"


def test_agentrel_tool_around_a_langchain_tool_is_a_clear_error() -> None:
    """The other order: @agentrel.tool over a LangChain tool object (not a function)."""
    with pytest.raises(TypeError):
        agentrel.tool(tool(flaky(0)))


def test_decorated_tool_outside_a_graph_still_counts(cap: testing.Capture) -> None:
    """tool.invoke() directly, no graph: one call, no run."""
    t = tool("lookup")(agentrel.tool(flaky(0)))
    assert t.invoke({"q": "x"}) == "found x"
    assert cap.histogram("agentrel.tool.attempts", {"gen_ai.tool.name": "lookup"}).count == 1


# --- set-up ----------------------------------------------------------------------------------
def test_instrument_is_idempotent_and_uninstrument_restores(
    cap: testing.Capture, runs: list[agentrel.Run]
) -> None:
    from langchain_core.callbacks import CallbackManager
    from langgraph.pregel import _runner

    patched = (Pregel.invoke, BaseTool.run, _runner.run_with_retry)
    agentrel_langgraph.instrument()
    assert (Pregel.invoke, BaseTool.run, _runner.run_with_retry) == patched
    assert agentrel_langgraph.instrumented()
    handler = agentrel_langgraph.callback_handler()
    assert handler in CallbackManager.configure(None, None).handlers
    agentrel_langgraph.uninstrument()
    assert not agentrel_langgraph.instrumented()
    assert not hasattr(Pregel.invoke, "__wrapped__")
    assert not hasattr(BaseTool.run, "__wrapped__")
    assert not hasattr(_runner.run_with_retry, "__wrapped__")
    assert handler not in CallbackManager.configure(None, None).handlers
    model = ScriptedModel(responses=[ask("lookup", "c1"), answer()])
    agent(model, [tool(flaky(0))]).invoke(USER)
    assert runs == [] and cap.spans() == []
    agentrel_langgraph.instrument()
    agentrel_langgraph.instrument()
    model.i = 0
    agent(model, [tool(flaky(0))]).invoke(USER)
    (run,) = runs
    assert (run.attempts, run.tokens) == (3, 38)  # the handler is added once, not twice


def test_handler_passed_explicitly_is_not_doubled(runs: list[agentrel.Run]) -> None:
    model = ScriptedModel(responses=[ask("lookup", "c1"), answer()])
    config = {"callbacks": [agentrel_langgraph.callback_handler()]}
    agent(model, [tool(flaky(0))]).invoke(USER, config)
    (run,) = runs
    assert (run.attempts, run.tokens) == (3, 38)


def test_llm_false_leaves_model_requests_alone(runs: list[agentrel.Run]) -> None:
    agentrel_langgraph.uninstrument()
    agentrel_langgraph.instrument(llm=False)
    model = ScriptedModel(responses=[ask("lookup", "c1"), answer()])
    agent(model, [tool(flaky(1))]).invoke(USER)
    (run,) = runs
    assert (run.outcome, run.retry_depth, run.attempts, run.tokens) == ("recovered", 1, 1, 0)


def test_model_error_is_a_failed_llm_call(cap: testing.Capture, runs: list[agentrel.Run]) -> None:
    """A model that raises, retried with LangChain's .with_retry(): each request is a call."""

    class Flaky(ScriptedModel):
        fails: int = 1

        def _generate(self, *a: Any, **k: Any) -> Any:
            if self.fails:
                self.fails -= 1
                raise ConnectionError("429")
            return super()._generate(*a, **k)

    model = Flaky(responses=[answer()]).with_retry(
        stop_after_attempt=2, wait_exponential_jitter=False
    )
    g = StateGraph(State)
    g.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
    g.add_edge(START, "agent")
    g.compile(name="retrying").invoke(USER)
    (run,) = runs
    assert (run.outcome, run.retry_depth, run.attempts, run.tokens) == ("recovered", 1, 2, 23)
    assert (
        cap.counter(FAILURES, {"error.type": "ConnectionError", "agentrel.absorbed": "true"}) == 1
    )


def test_import_without_instrument_touches_nothing() -> None:
    code = (
        "import sys, agentrel.integrations.langgraph as m; "
        "assert 'langgraph' not in sys.modules and 'langchain_core' not in sys.modules; "
        "assert not m.instrumented()"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_example_prints_its_figures() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "langgraph_agent.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=300,
    ).stdout
    assert out.splitlines() == [
        "answer: Paris: 18 C, light rain",
        "outcome: recovered",
        "retry depth: 3",
        "attempts: 9",
        "tokens: useful 202, wasted 120",
        "token amplification: 1.59",
    ]


def test_warnings_free() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = ScriptedModel(responses=[answer()])
        agent(model, []).invoke(USER)


def test_langsmith_otel_tracing_on_at_the_same_time(
    cap: testing.Capture, runs: list[agentrel.Run]
) -> None:
    """LangChain's own tracing (LangSmith) exporting OpenTelemetry spans: the counts do not
    change; its span tree hangs under agentrel's invoke_agent span in the same trace, beside
    agentrel's chat / execute_tool spans (it writes its spans later, from its exporter)."""
    from langchain_core.tracers.context import tracing_v2_enabled
    from langsmith import Client

    client = Client(
        api_key="test",
        api_url="http://127.0.0.1:9",
        tracing_mode="otel",
        otel_tracer_provider=cap.tracer_provider,
    )
    model = ScriptedModel(responses=[ask("lookup", "c1"), ask("lookup", "c2"), answer()])
    with tracing_v2_enabled(client=client):
        agent(model, [tool(flaky(1))]).invoke(USER)
    client.flush()
    (run,) = runs
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 5)
    assert (run.useful_tokens, run.wasted_tokens) == (38, 15)
    ours = [s for s in cap.spans() if s.instrumentation_scope.name == "agentrel"]
    theirs = [s for s in cap.spans() if s.instrumentation_scope.name == "langsmith"]
    assert sorted(s.name for s in ours) == [
        "chat",
        "chat",
        "chat",
        "execute_tool lookup",
        "execute_tool lookup",
        "invoke_agent support",
    ]
    (root,) = [s for s in ours if s.name == "invoke_agent support"]
    assert {s.context.trace_id for s in theirs} == {root.context.trace_id}
    (their_root,) = [s for s in theirs if s.name == "support"]
    assert their_root.parent.span_id == root.context.span_id
    assert len([s for s in theirs if s.name == "lookup"]) == 2


def test_validation_error_handled_by_the_tool(
    cap: testing.Capture, runs: list[agentrel.Run]
) -> None:
    """handle_validation_error turns bad arguments into status="error": ValidationError."""
    from langchain_core.tools import StructuredTool

    def lookup(limit: int) -> str:
        """Look a thing up."""
        return str(limit)

    t = StructuredTool.from_function(lookup, handle_validation_error=True)
    model = ScriptedModel(responses=[ask("lookup", "c1", limit="many"), answer()])
    agent(model, [t], handle=False).invoke(USER)
    (run,) = runs
    assert (run.outcome, run.retry_depth, run.attempts, run.wasted_tokens) == (
        "recovered",
        1,
        3,
        15,
    )
    assert cap.counter(FAILURES, {"error.type": "ValidationError"}) == 1


def test_error_message_returned_by_the_tool_is_flagged(
    cap: testing.Capture, runs: list[agentrel.Run]
) -> None:
    """A tool that returns its own ToolMessage(status="error"): a result_flagged failure."""
    from langchain_core.messages import ToolMessage

    @tool
    def lookup(q: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> Any:
        """Look a thing up."""
        return ToolMessage("nothing found", tool_call_id=tool_call_id, status="error")

    model = ScriptedModel(responses=[ask("lookup", "c1"), answer()])
    agent(model, [lookup]).invoke(USER)
    (run,) = runs
    assert (run.outcome, run.retry_depth, run.attempts, run.wasted_tokens) == (
        "recovered",
        1,
        3,
        15,
    )
    assert cap.counter(FAILURES, {"error.type": "result_flagged"}) == 1


def test_graph_inside_a_tool_is_its_own_run(runs: list[agentrel.Run]) -> None:
    """A sub-agent run from a tool keeps its own figures."""
    inner_model = ScriptedModel(responses=[answer("inner")])
    inner = agent(inner_model, [], name="researcher")

    @tool
    def research(q: str) -> str:
        """Ask the researcher."""
        return str(inner.invoke(USER)["messages"][-1].content)

    model = ScriptedModel(responses=[ask("research", "c1"), answer()])
    agent(model, [research]).invoke(USER)
    by_name = {r.name: r for r in runs}
    assert set(by_name) == {"researcher", "support"}
    assert (by_name["researcher"].attempts, by_name["researcher"].tokens) == (1, 23)
    assert (by_name["support"].attempts, by_name["support"].tokens) == (3, 38)


def test_broken_telemetry_never_breaks_the_graph(
    monkeypatch: pytest.MonkeyPatch, cap: testing.Capture, runs: list[agentrel.Run]
) -> None:
    """Specs that cannot be made cost the counts of those calls, never the graph's answer."""

    def broken(*a: Any, **k: Any) -> Any:
        raise RuntimeError("broken telemetry")

    monkeypatch.setattr(ai, "tool_spec", broken)
    monkeypatch.setattr(ai, "llm_spec", broken)
    monkeypatch.setattr(agentrel_langgraph, "_tool_specs", {})
    monkeypatch.setattr(agentrel_langgraph, "_node_specs", {})
    fetch_fn = flaky(1, ConnectionError)
    model = ScriptedModel(responses=[ask("lookup", "c1"), answer()])

    def fetch(state: State) -> dict[str, Any]:
        return {"messages": [("system", fetch_fn("x"))]}

    def call_model(state: State) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    from langgraph.prebuilt import tools_condition

    g = StateGraph(State)
    g.add_node("fetch", fetch, retry_policy=NO_WAIT)
    g.add_node("agent", call_model)
    g.add_node("tools", ToolNode([tool(flaky(0))]))
    g.add_edge(START, "fetch")
    g.add_edge("fetch", "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    out = g.compile(name="support").invoke(USER)
    assert out["messages"][-1].content == "done"
    assert out["messages"][-2].content == "found x"
    (run,) = runs
    assert (run.outcome, run.attempts, run.tokens) == ("success", 0, 0)
    errors = agentrel.telemetry_errors()
    assert errors == {"langgraph.retry": 1, "langgraph.tool": 1, "langgraph.llm": 2}


def test_activate_makes_an_open_run_current_for_a_block() -> None:
    """instrumentation.activate(): the run is current inside the block only, no call current."""
    import contextvars

    ctx = contextvars.copy_context()
    scope = ai.run_scope("streamed")
    handle = ctx.run(scope.__enter__)
    assert agentrel.current_run() is None
    with ai.activate(handle.run):
        assert agentrel.current_run() is handle.run
        with ai.call(ai.tool_spec("t", register=False)):
            pass
    assert agentrel.current_run() is None
    with ai.activate(None):
        assert agentrel.current_run() is None
    ctx.run(scope.__exit__, None, None, None)
    assert handle.run is not None
    assert (handle.run.outcome, handle.run.attempts) == ("success", 1)


def test_prebuilt_react_agent(cap: testing.Capture, runs: list[agentrel.Run]) -> None:
    """langgraph.prebuilt.create_react_agent (deprecated for langchain's create_agent, which
    is not installed here; the same Pregel, ToolNode and model calls): the same counts."""
    from langgraph.prebuilt import create_react_agent

    model = ScriptedModel(
        responses=[ask("lookup", "c1"), ask("lookup", "c2"), ask("lookup", "c3"), answer()]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = create_react_agent(
            model, ToolNode([tool(flaky(2))], handle_tool_errors=True), name="support"
        )
    out = graph.invoke(USER)
    assert out["messages"][-1].content == "done"
    (run,) = runs
    assert (run.name, run.outcome, run.retry_depth, run.attempts) == ("support", "recovered", 2, 7)
    assert (run.useful_tokens, run.wasted_tokens) == (38, 30)
    assert cap.counter(FAILURES, {"error.type": "ValueError", "agentrel.absorbed": "true"}) == 2


def test_parallel_tool_calls_one_fails(cap: testing.Capture, runs: list[agentrel.Run]) -> None:
    """One response asks for two tools (ToolNode runs them in threads); one fails: the
    response is wasted once, each tool is its own call."""
    both = AIMessage(
        content="",
        tool_calls=[
            {"name": "lookup", "args": {"q": "x"}, "id": "c1"},
            {"name": "fetch", "args": {"q": "y"}, "id": "c2"},
        ],
        usage_metadata=usage(10, 5),
    )
    model = ScriptedModel(responses=[both, answer()])
    agent(model, [tool("lookup")(flaky(1)), tool("fetch")(flaky(0))]).invoke(USER)
    (run,) = runs
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 4)
    assert (run.useful_tokens, run.wasted_tokens) == (23, 15)
    assert cap.counter(FAILURES, {"gen_ai.tool.name": "lookup"}) == 1
    assert cap.counter(FAILURES, {"gen_ai.tool.name": "fetch"}) == 0
    assert cap.histogram("agentrel.tool.attempts", {"gen_ai.tool.name": "fetch"}).count == 1


# --- an unknown newer version ------------------------------------------------------------------
def test_unknown_version_degrades_with_one_warning(
    cap: testing.Capture,
    runs: list[agentrel.Run],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A LangGraph without the private node-retry loop agentrel hooks: instrument() warns
    once, naming it, raises nothing, and the rest is counted (the run, without node retries:
    the node's failures are the run's)."""
    import types

    from langgraph.pregel import _runner

    agentrel_langgraph.uninstrument()
    # a newer _runner module without run_with_retry (LangGraph itself keeps the real one)
    newer = types.ModuleType(_runner.__name__)
    newer.__dict__.update({k: v for k, v in vars(_runner).items() if k != "run_with_retry"})
    monkeypatch.setitem(sys.modules, _runner.__name__, newer)
    with caplog.at_level("WARNING", logger="agentrel"):
        agentrel_langgraph.instrument()
        agentrel_langgraph.uninstrument()
        agentrel_langgraph.instrument()
    warnings_ = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings_) == 1
    assert "langgraph.pregel._runner.run_with_retry not found" in warnings_[0]
    assert "arun_with_retry" not in warnings_[0]
    assert agentrel_langgraph.is_instrumented()
    assert isinstance(Pregel.__dict__["invoke"], __import__("wrapt").FunctionWrapper)

    fetch_fn = flaky(0, ConnectionError)

    def fetch(state: State) -> dict[str, Any]:
        return {"messages": [fetch_fn("x")]}

    g = StateGraph(State)
    g.add_node("fetch", fetch)
    g.add_edge(START, "fetch")
    g.add_edge("fetch", END)
    assert g.compile(name="fetcher").invoke({"messages": []})["messages"] == ["found x"]
    (run,) = runs
    assert (run.name, run.outcome, run.retry_depth, run.attempts) == ("fetcher", "success", 0, 0)
    assert cap.histogram("agentrel.run.retry_depth", {"agentrel.outcome": "success"}).count == 1
    assert agentrel.telemetry_errors() == {}
