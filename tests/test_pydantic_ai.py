"""agentrel.integrations.pydantic_ai: scripted pydantic-ai runs (FunctionModel, TestModel) whose
true counts are known in advance, held to exact figures.

Unless a test says otherwise, the scripted model answers a tool call with usage 20 in / 10 out
(30 tokens) and a final text with 30 in / 5 out (35 tokens).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import runpy
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent, ModelRetry, ToolFailed
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.exceptions import UnexpectedModelBehavior
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel
from pydantic_ai.models.instrumented import InstrumentationSettings
from pydantic_ai.models.test import TestModel
from pydantic_ai.usage import RequestUsage

import agentrel
from agentrel import instrumentation as ai
from agentrel import testing
from agentrel.integrations import pydantic_ai as ap

ROOT = Path(__file__).resolve().parents[1]
CHAT = "chat scripted"  # the LLM call's name (tool label of its failures)


@pytest.fixture(autouse=True)
def _instrumented() -> Iterator[None]:
    ap.instrument()
    yield
    ap.uninstrument()


def tool_call(name: str = "lookup", args: dict[str, Any] | None = None) -> ModelResponse:
    return ModelResponse(
        parts=[ToolCallPart(name, args if args is not None else {"q": "x"})],
        usage=RequestUsage(input_tokens=20, output_tokens=10),
    )


def text(content: str = "done") -> ModelResponse:
    return ModelResponse(
        parts=[TextPart(content)], usage=RequestUsage(input_tokens=30, output_tokens=5)
    )


def scripted(*responses: ModelResponse) -> FunctionModel:
    """A model that answers with ``responses`` in order (and fails the test if asked again)."""
    queue = list(responses)

    def fn(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        assert queue, "the model was asked more often than the script says"
        return queue.pop(0)

    return FunctionModel(fn, model_name="scripted")


def flaky(failures: int, exc: type[Exception] = ModelRetry) -> Any:
    """A tool body that raises ``exc`` ``failures`` times, then answers."""
    state = {"n": 0}

    def lookup(q: str) -> str:
        """Look a thing up."""
        state["n"] += 1
        if state["n"] <= failures:
            raise exc("not yet")
        return "found"

    return lookup


def figures(run: agentrel.Run) -> tuple[Any, ...]:
    return (run.outcome, run.retry_depth, run.attempts, run.useful_tokens, run.wasted_tokens)


def the_run(cap: testing.Capture, name: str) -> dict[str, Any]:
    (span,) = cap.spans(f"invoke_agent {name}")
    return dict(span.attributes)


# --- scripted scenarios -------------------------------------------------------------------
def test_tool_fails_twice_then_succeeds(cap: testing.Capture) -> None:
    """ModelRetry twice (retries=2), then an answer: 3 tool calls, 4 model requests."""
    agent = Agent(scripted(tool_call(), tool_call(), tool_call(), text()), name="support")
    agent.tool_plain(retries=2)(flaky(2))
    assert agent.run_sync("hi").output == "done"
    attrs = the_run(cap, "support")
    assert attrs["agentrel.outcome"] == "recovered"
    assert attrs["agentrel.run.retry_depth"] == 2
    assert attrs["agentrel.run.attempts"] == 7
    assert attrs["agentrel.run.tokens"] == 125
    assert attrs["agentrel.run.wasted_tokens"] == 60  # the two responses whose tool calls failed
    assert attrs["agentrel.run.token_amplification"] == 125 / 65
    assert cap.counter("agentrel.tool.failures") == 2
    assert cap.counter(
        "agentrel.tool.failures",
        {"gen_ai.tool.name": "lookup", "error.type": "ModelRetry", "agentrel.absorbed": "true"},
    ) == 2  # fmt: skip
    assert cap.histogram("agentrel.tool.attempts", {"gen_ai.tool.name": "lookup"}).count == 3
    assert cap.histogram(
        "agentrel.tool.attempts", {"gen_ai.tool.name": "lookup", "agentrel.outcome": "failed"}
    ).count == 2  # fmt: skip
    assert cap.histogram("agentrel.tool.attempts", {"gen_ai.tool.name": CHAT}).count == 4
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "wasted"}) == 60
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "useful"}) == 65
    assert cap.histogram("agentrel.run.token_amplification").sum == 125 / 65
    (tool_span, *_) = cap.spans("execute_tool lookup")
    assert tool_span.attributes["error.type"] == "ModelRetry"
    assert tool_span.attributes["agentrel.integration"] == "pydantic_ai"
    assert tool_span.attributes["gen_ai.tool.description"] == "Look a thing up."
    assert agentrel.telemetry_errors() == {}


def test_output_validator_retry_is_a_rejection(cap: testing.Capture) -> None:
    """The framework's own retry: an output validator rejects the first answer."""
    agent = Agent(scripted(text("bad"), text("good")), name="writer")

    @agent.output_validator
    def no_bad(output: str) -> str:
        if output == "bad":
            raise ModelRetry("say it well")
        return output

    assert agent.run_sync("hi").output == "good"
    attrs = the_run(cap, "writer")
    assert attrs["agentrel.outcome"] == "recovered"
    assert (attrs["agentrel.run.retry_depth"], attrs["agentrel.run.attempts"]) == (1, 2)
    assert (attrs["agentrel.run.tokens"], attrs["agentrel.run.wasted_tokens"]) == (70, 35)
    assert attrs["agentrel.run.token_amplification"] == 2.0
    assert cap.counter(
        "agentrel.tool.failures",
        {"gen_ai.tool.name": CHAT, "error.type": "rejected", "agentrel.absorbed": "true"},
    ) == 1  # fmt: skip
    assert cap.counter("agentrel.tool.failures") == 1


def test_structured_output_validation_error_is_a_rejection(cap: testing.Capture) -> None:
    """Structured output (an output tool) whose arguments fail the schema, then pass."""
    from pydantic import BaseModel

    class Answer(BaseModel):
        n: int

    def answer(args: dict[str, Any]) -> ModelResponse:
        return ModelResponse(
            parts=[ToolCallPart("final_result", args)],
            usage=RequestUsage(input_tokens=20, output_tokens=10),
        )

    agent = Agent(
        scripted(answer({"n": "many"}), answer({"n": 3})), name="typed", output_type=Answer
    )
    assert agent.run_sync("hi").output == Answer(n=3)
    attrs = the_run(cap, "typed")
    assert attrs["agentrel.outcome"] == "recovered"
    assert (attrs["agentrel.run.retry_depth"], attrs["agentrel.run.attempts"]) == (1, 2)
    assert (attrs["agentrel.run.tokens"], attrs["agentrel.run.wasted_tokens"]) == (60, 30)
    assert cap.counter("agentrel.tool.failures", {"error.type": "rejected"}) == 1


def test_tool_failed_message_is_a_failed_call(cap: testing.Capture) -> None:
    """ToolFailed: pydantic-ai hands the failure to the model as a failed tool result."""
    agent = Agent(scripted(tool_call(), text()), name="support")
    agent.tool_plain(flaky(1, ToolFailed))
    assert agent.run_sync("hi").output == "done"
    attrs = the_run(cap, "support")
    assert attrs["agentrel.outcome"] == "recovered"
    assert (attrs["agentrel.run.retry_depth"], attrs["agentrel.run.attempts"]) == (1, 3)
    assert (attrs["agentrel.run.tokens"], attrs["agentrel.run.wasted_tokens"]) == (65, 30)
    assert cap.counter("agentrel.tool.failures", {"error.type": "ToolFailed"}) == 1
    (span,) = cap.spans("execute_tool lookup")
    assert span.attributes["agentrel.outcome"] == "failed"


class ErrorsToMessages(AbstractCapability[Any]):
    """A user's capability that turns a tool exception into a string for the model."""

    async def on_tool_execute_error(
        self, ctx: Any, *, call: Any, tool_def: Any, args: Any, error: Exception
    ) -> Any:
        return f"error: {type(error).__name__}"


def test_error_turned_into_a_result_is_a_failed_call(cap: testing.Capture) -> None:
    """A failure string the framework hands the model (on_tool_execute_error) still counts."""
    agent = Agent(
        scripted(tool_call(), tool_call(), text()),
        name="support",
        capabilities=[ErrorsToMessages()],
    )
    agent.tool_plain(flaky(1, ValueError))
    assert agent.run_sync("hi").output == "done"
    attrs = the_run(cap, "support")
    assert attrs["agentrel.outcome"] == "recovered"
    assert (attrs["agentrel.run.retry_depth"], attrs["agentrel.run.attempts"]) == (1, 5)
    assert (attrs["agentrel.run.tokens"], attrs["agentrel.run.wasted_tokens"]) == (95, 30)
    assert cap.counter("agentrel.tool.failures", {"error.type": "ValueError"}) == 1
    outcomes = [s.attributes["agentrel.outcome"] for s in cap.spans("execute_tool lookup")]
    assert outcomes == ["failed", "success"]


def test_tool_retries_exhausted(cap: testing.Capture) -> None:
    """retries=1 and the tool always asks to retry: UnexpectedModelBehavior, run exhausted."""
    agent = Agent(scripted(tool_call(), tool_call()), name="support")
    agent.tool_plain(retries=1)(flaky(99))
    with pytest.raises(UnexpectedModelBehavior, match="exceeded max retries"):
        agent.run_sync("hi")
    attrs = the_run(cap, "support")
    assert attrs["agentrel.outcome"] == "exhausted"
    assert (attrs["agentrel.run.retry_depth"], attrs["agentrel.run.attempts"]) == (2, 4)
    assert (attrs["agentrel.run.tokens"], attrs["agentrel.run.wasted_tokens"]) == (60, 60)
    assert attrs["error.type"] == "UnexpectedModelBehavior"
    assert "agentrel.run.token_amplification" not in attrs
    assert cap.counter(
        "agentrel.tool.failures",
        {"gen_ai.tool.name": "lookup", "error.type": "ModelRetry", "agentrel.absorbed": "false"},
    ) == 2  # fmt: skip
    assert cap.histogram("agentrel.run.retry_depth", {"agentrel.outcome": "exhausted"}).sum == 2
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "useful"}) == 0


def test_output_retries_exhausted(cap: testing.Capture) -> None:
    """The validator rejects every answer (output_retries=1): two rejections, exhausted."""
    agent = Agent(scripted(text("bad"), text("bad")), name="writer", retries={"output": 1})

    @agent.output_validator
    def never(output: str) -> str:
        raise ModelRetry("no")

    with pytest.raises(UnexpectedModelBehavior):
        agent.run_sync("hi")
    attrs = the_run(cap, "writer")
    assert attrs["agentrel.outcome"] == "exhausted"
    assert (attrs["agentrel.run.retry_depth"], attrs["agentrel.run.attempts"]) == (2, 2)
    assert (attrs["agentrel.run.tokens"], attrs["agentrel.run.wasted_tokens"]) == (70, 70)
    assert cap.counter("agentrel.tool.failures", {"error.type": "rejected"}) == 2


def test_async_tool(cap: testing.Capture) -> None:
    """An async tool that fails once (ModelRetry), then answers."""
    agent = Agent(scripted(tool_call(), tool_call(), text()), name="support")
    state = {"n": 0}

    @agent.tool_plain
    async def lookup(q: str) -> str:
        """Look a thing up."""
        await asyncio.sleep(0)
        state["n"] += 1
        if state["n"] == 1:
            raise ModelRetry("again")
        return "found"

    assert asyncio.run(agent.run("hi")).output == "done"
    attrs = the_run(cap, "support")
    assert (attrs["agentrel.outcome"], attrs["agentrel.run.retry_depth"]) == ("recovered", 1)
    assert (attrs["agentrel.run.attempts"], attrs["agentrel.run.tokens"]) == (5, 95)
    assert attrs["agentrel.run.wasted_tokens"] == 30


def test_concurrent_runs_keep_their_own_counts(cap: testing.Capture) -> None:
    """Two runs under asyncio.gather, interleaved at the tool: 2 failures and 0 failures."""
    both_in_tool = asyncio.Event()
    arrived: list[str] = []
    seen: dict[str, agentrel.Run] = {}

    async def lookup(q: str) -> str:
        """Look a thing up."""
        run = agentrel.current_run()
        assert run is not None
        seen[run.name] = run
        arrived.append(q)
        if len(arrived) == 2:
            both_in_tool.set()
        await asyncio.wait_for(both_in_tool.wait(), 10)
        if q.startswith("bad"):
            raise ModelRetry("again")
        return "found"

    flaky_agent = Agent(
        scripted(tool_call(args={"q": "bad1"}), tool_call(args={"q": "bad2"}), tool_call(), text()),
        name="flaky",
    )
    steady = Agent(scripted(tool_call(), text()), name="steady")
    for agent in (flaky_agent, steady):
        agent.tool_plain(retries=2)(lookup)

    async def main() -> None:
        await asyncio.gather(flaky_agent.run("a"), steady.run("b"))

    asyncio.run(main())
    assert figures(seen["flaky"]) == ("recovered", 2, 7, 65, 60)
    assert figures(seen["steady"]) == ("success", 0, 3, 65, 0)
    assert cap.histogram("agentrel.run.retry_depth", {"gen_ai.agent.name": "flaky"}).sum == 2
    assert cap.histogram("agentrel.run.retry_depth", {"gen_ai.agent.name": "steady"}).sum == 0
    assert cap.counter("agentrel.tool.failures") == 2


def test_streamed_run(cap: testing.Capture) -> None:
    """run_stream: a streamed tool call that fails once, then a streamed answer."""
    script = iter(["call", "call", "text"])

    async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[Any]:
        if next(script) == "call":
            yield {0: DeltaToolCall(name="lookup", json_args='{"q": "x"}')}
        else:
            yield "all "
            yield "done"

    agent = Agent(FunctionModel(stream_function=stream, model_name="scripted"), name="streamer")
    agent.tool_plain(retries=2)(flaky(1))

    async def main() -> tuple[str, int, int]:
        async with agent.run_stream("hi") as result:
            out = await result.get_output()
        usage = result.usage
        return out, usage.input_tokens, usage.output_tokens

    out, inp, outp = asyncio.run(main())
    assert out == "all done"
    attrs = the_run(cap, "streamer")
    assert attrs["agentrel.outcome"] == "recovered"
    assert (attrs["agentrel.run.retry_depth"], attrs["agentrel.run.attempts"]) == (1, 5)
    # every streamed response's usage, as pydantic-ai accounts it, and nothing else
    assert attrs["agentrel.run.tokens"] == inp + outp
    chat = [s.attributes for s in cap.spans(CHAT)]
    assert len(chat) == 3
    first = chat[0]["gen_ai.usage.input_tokens"] + chat[0]["gen_ai.usage.output_tokens"]
    assert attrs["agentrel.run.wasted_tokens"] == first
    assert cap.counter("agentrel.tool.failures", {"error.type": "ModelRetry"}) == 1


def test_test_model_run(cap: testing.Capture) -> None:
    """pydantic-ai's TestModel calls every tool once, then answers: a clean run."""
    agent = Agent(TestModel(), name="plain")

    @agent.tool_plain
    def lookup(q: str) -> str:
        """Look a thing up."""
        return "found"

    agent.run_sync("hi")
    attrs = the_run(cap, "plain")
    assert (attrs["agentrel.outcome"], attrs["agentrel.run.retry_depth"]) == ("success", 0)
    assert attrs["agentrel.run.attempts"] == 3  # request, tool, request
    assert attrs["agentrel.run.wasted_tokens"] == 0
    assert len(cap.spans("chat test")) == 2


def test_cancelled_run_is_failed(cap: testing.Capture) -> None:
    """The caller cancels the run while a tool waits: the run fails with CancelledError."""
    agent = Agent(scripted(tool_call()), name="support")
    entered = asyncio.Event()

    @agent.tool_plain
    async def lookup(q: str) -> str:
        """Look a thing up."""
        entered.set()
        await asyncio.sleep(60)
        return "never"

    async def main() -> None:
        task = asyncio.create_task(agent.run("hi"))
        await asyncio.wait_for(entered.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    attrs = the_run(cap, "support")
    assert attrs["agentrel.outcome"] == "failed"
    assert attrs["error.type"] == "CancelledError"
    # pydantic-ai tears the run down before the tool task it cancels: the run's end settles
    # the cut-off tool execution first, so it is the run's failure, as in LangGraph and the
    # Agents SDK (sum of failures == sum of retry depths; attempts - depth succeeded)
    assert (attrs["agentrel.run.retry_depth"], attrs["agentrel.run.attempts"]) == (1, 2)
    (run,) = cap.points("agentrel.run.retry_depth")
    assert (run[1].count, run[1].sum) == (1, 1)
    assert cap.counter("agentrel.tool.failures") == run[1].sum
    assert agentrel.telemetry_errors() == {}
    assert attrs["agentrel.run.wasted_tokens"] == 30
    assert cap.counter("agentrel.tool.failures") == 1
    assert (
        cap.counter(
            "agentrel.tool.failures",
            {
                "gen_ai.tool.name": "lookup",
                "error.type": "CancelledError",
                "agentrel.absorbed": "false",
            },
        )
        == 1
    )
    (tool,) = cap.spans("execute_tool lookup")
    assert (tool.attributes["agentrel.outcome"], tool.attributes["error.type"]) == (
        "failed",
        "CancelledError",
    )


def test_enclosing_agentrel_run_is_joined(cap: testing.Capture) -> None:
    """The application's own agentrel.run around the agent: one run, not two."""
    agent = Agent(scripted(tool_call(), tool_call(), text()), name="support")
    agent.tool_plain(flaky(1))

    async def main() -> agentrel.Run:
        async with agentrel.run("app") as run:
            await agent.run("hi")
        return run

    run = asyncio.run(main())
    assert figures(run) == ("recovered", 1, 5, 65, 30)
    assert cap.histogram("agentrel.run.retry_depth").count == 1
    assert cap.spans("invoke_agent support") == []


def _down(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    from pydantic_ai.exceptions import ModelHTTPError

    raise ModelHTTPError(503, "primary")


def test_fallback_model_attempts(cap: testing.Capture) -> None:
    """FallbackModel: the primary answers 503, the secondary serves: one call, 2 attempts."""
    from pydantic_ai.models.fallback import FallbackModel

    primary = FunctionModel(_down, model_name="primary")
    agent = Agent(FallbackModel(primary, scripted(text())), name="fb")
    assert agent.run_sync("hi").output == "done"
    attrs = the_run(cap, "fb")
    assert (attrs["agentrel.outcome"], attrs["agentrel.run.retry_depth"]) == ("recovered", 1)
    assert (attrs["agentrel.run.attempts"], attrs["agentrel.run.tokens"]) == (2, 35)
    (chat,) = cap.spans("chat fallback:primary,scripted")
    assert (chat.attributes["agentrel.outcome"], chat.attributes["agentrel.call.attempts"]) == (
        "recovered",
        2,
    )
    assert cap.counter(
        "agentrel.tool.failures", {"error.type": "ModelHTTPError", "agentrel.absorbed": "true"}
    ) == 1  # fmt: skip


def test_model_fallback_capability_every_model_down(cap: testing.Capture) -> None:
    """ModelFallback with every model down: FallbackExceptionGroup, the call exhausted."""
    from pydantic_ai.capabilities import ModelFallback
    from pydantic_ai.exceptions import FallbackExceptionGroup

    agent = Agent(
        FunctionModel(_down, model_name="primary"),
        name="fb",
        capabilities=[ModelFallback(FunctionModel(_down, model_name="second"))],
    )
    with pytest.raises(FallbackExceptionGroup):
        agent.run_sync("hi")
    attrs = the_run(cap, "fb")
    assert (attrs["agentrel.outcome"], attrs["agentrel.run.retry_depth"]) == ("exhausted", 2)
    assert attrs["agentrel.run.attempts"] == 2
    (chat,) = cap.spans("chat primary")
    assert chat.attributes["agentrel.outcome"] == "exhausted"
    assert chat.attributes["error.type"] == "ModelHTTPError"
    assert cap.counter(
        "agentrel.tool.failures", {"error.type": "ModelHTTPError", "agentrel.absorbed": "false"}
    ) == 2  # fmt: skip
    assert cap.counter("agentrel.tool.failures") == 2


def test_leaving_iter_early_fails_the_run(cap: testing.Capture) -> None:
    """break out of agent.iter() after the first model request: pydantic-ai cancels the run."""
    agent = Agent(scripted(tool_call(), text()), name="support")
    agent.tool_plain(flaky(0))

    async def main() -> None:
        async with agent.iter("hi") as agent_run:
            async for node in agent_run:
                if Agent.is_call_tools_node(node):
                    break

    asyncio.run(main())
    attrs = the_run(cap, "support")
    assert (attrs["agentrel.outcome"], attrs["error.type"]) == ("failed", "CancelledError")
    assert (attrs["agentrel.run.retry_depth"], attrs["agentrel.run.attempts"]) == (0, 1)
    assert (attrs["agentrel.run.tokens"], attrs["agentrel.run.wasted_tokens"]) == (30, 30)


@pytest.mark.parametrize("instrument_client", [False, True])
def test_openai_model_with_an_instrumented_client(
    cap: testing.Capture, instrument_client: bool
) -> None:
    """A real OpenAIChatModel on a mock transport; with agentrel.instrument(client) as well,
    the tokens are counted once (the client's call inside agentrel's `chat` call has them)."""
    pytest.importorskip("openai")
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    from llm_mocks import Script, chat_body, openai_client

    client = openai_client(Script((200, chat_body(prompt=100, completion=50))), is_async=True)
    if instrument_client:
        client = agentrel.instrument(client)
    model = OpenAIChatModel("gpt-4o", provider=OpenAIProvider(openai_client=client))
    assert Agent(model, name="oai").run_sync("hi").output == "secret answer"
    attrs = the_run(cap, "oai")
    assert attrs["agentrel.run.tokens"] == 150
    assert attrs["agentrel.run.token_amplification"] == 1.0
    # the client's call is one more attempt, inside the request's
    assert attrs["agentrel.run.attempts"] == (2 if instrument_client else 1)
    assert len(cap.spans("chat gpt-4o")) == (2 if instrument_client else 1)


def test_sub_agent_in_a_tool_is_its_own_run(cap: testing.Capture) -> None:
    """A tool that runs another agent: two runs, each with its own figures."""
    sub = Agent(scripted(tool_call(), tool_call(), text()), name="checker")
    sub.tool_plain(flaky(1))  # the sub-agent's first lookup fails
    main = Agent(scripted(tool_call("delegate"), text()), name="main")

    @main.tool_plain
    async def delegate(q: str) -> str:
        """Ask the checker."""
        return (await sub.run(q)).output

    assert main.run_sync("hi").output == "done"
    outer, inner = the_run(cap, "main"), the_run(cap, "checker")
    assert (outer["agentrel.outcome"], outer["agentrel.run.retry_depth"]) == ("success", 0)
    assert (outer["agentrel.run.attempts"], outer["agentrel.run.tokens"]) == (3, 65)
    assert (inner["agentrel.outcome"], inner["agentrel.run.retry_depth"]) == ("recovered", 1)
    assert (inner["agentrel.run.attempts"], inner["agentrel.run.tokens"]) == (5, 95)
    assert inner["agentrel.run.wasted_tokens"] == 30


# --- @agentrel.tool as well -----------------------------------------------------------------------
def _tool_facts(agent: Agent[Any, Any]) -> tuple[Any, ...]:
    (tool,) = agent._function_toolset.tools.values()
    d = tool.tool_def
    return (d.name, d.description, json.dumps(d.parameters_json_schema, sort_keys=True))


@pytest.mark.parametrize("is_async", [False, True])
@pytest.mark.parametrize("order", ["agentrel_inside", "agentrel_outside"])
def test_decorated_tool_counted_once(cap: testing.Capture, order: str, is_async: bool) -> None:
    """@agentrel.tool on the tool too, in both orders: same counts, same tool definition."""
    plain = Agent(scripted(), name="plain")
    agent = Agent(scripted(tool_call(), tool_call(), tool_call(), text()), name="support")
    state = {"n": 0}

    if is_async:

        async def lookup(q: str) -> str:
            """Look a thing up."""
            state["n"] += 1
            if state["n"] <= 2:
                raise ModelRetry("again")
            return "found"
    else:

        def lookup(q: str) -> str:  # type: ignore[misc]
            """Look a thing up."""
            state["n"] += 1
            if state["n"] <= 2:
                raise ModelRetry("again")
            return "found"

    plain.tool_plain(lookup)
    if order == "agentrel_inside":
        registered = agent.tool_plain(retries=2)(agentrel.tool("lookup", system="kb")(lookup))
    else:
        registered = agentrel.tool("lookup", system="kb")(agent.tool_plain(retries=2)(lookup))
    assert inspect.iscoroutinefunction(registered) is is_async
    (tool,) = agent._function_toolset.tools.values()
    assert inspect.iscoroutinefunction(tool.function) is is_async
    assert _tool_facts(agent) == _tool_facts(plain)

    assert agent.run_sync("hi").output == "done"
    attrs = the_run(cap, "support")
    assert (attrs["agentrel.outcome"], attrs["agentrel.run.retry_depth"]) == ("recovered", 2)
    assert (attrs["agentrel.run.attempts"], attrs["agentrel.run.wasted_tokens"]) == (7, 60)
    assert cap.counter("agentrel.tool.failures", {"error.type": "ModelRetry"}) == 2
    assert cap.counter("agentrel.tool.failures") == 2
    spans = cap.spans("execute_tool lookup")
    assert len(spans) == 3
    if order == "agentrel_inside":  # the decorated function ran: its metadata is on the span
        assert {s.attributes.get("agentrel.tool.system") for s in spans} == {"kb"}


def test_failure_when_on_a_decorated_tool(cap: testing.Capture) -> None:
    """A tool that returns an error string, flagged by failure_when=: a failed attempt."""
    agent = Agent(scripted(tool_call(), tool_call(), text()), name="support")
    answers = iter([{"error": "down"}, {"ok": 1}])

    @agent.tool_plain
    @agentrel.tool("lookup", failure_when=lambda r: "error" in r)
    def lookup(q: str) -> dict[str, Any]:
        """Look a thing up."""
        return next(answers)

    agent.run_sync("hi")
    attrs = the_run(cap, "support")
    assert (attrs["agentrel.outcome"], attrs["agentrel.run.retry_depth"]) == ("recovered", 1)
    assert attrs["agentrel.run.attempts"] == 5
    assert cap.counter("agentrel.tool.failures", {"error.type": "result_flagged"}) == 1


# --- pydantic-ai's own tracing on ---------------------------------------------------------------
def test_with_pydantic_ai_tracing_one_span_per_operation(cap: testing.Capture) -> None:
    """pydantic-ai's tracing too: agentrel writes on pydantic-ai's spans, opens none itself."""
    agent = Agent(scripted(tool_call(), tool_call(), text()), name="support")
    agent.instrument = InstrumentationSettings(tracer_provider=cap.tracer_provider)
    agent.tool_plain(flaky(1))
    assert agent.run_sync("hi").output == "done"

    (run_span,) = cap.spans("invoke_agent support")
    assert run_span.instrumentation_scope.name == "pydantic-ai"
    assert run_span.attributes["agentrel.outcome"] == "recovered"
    assert run_span.attributes["agentrel.run.retry_depth"] == 1
    assert run_span.attributes["agentrel.run.attempts"] == 5
    assert run_span.attributes["agentrel.run.wasted_tokens"] == 30
    tools = cap.spans("execute_tool lookup")
    assert len(tools) == 2  # one per execution: pydantic-ai's, nothing nested under it
    assert all(s.instrumentation_scope.name == "pydantic-ai" for s in tools)
    assert [s.attributes["agentrel.outcome"] for s in tools] == ["failed", "success"]
    assert tools[0].attributes["error.type"] == "ModelRetry"
    assert [e.name for e in tools[0].events].count("agentrel.attempt") == 1
    chats = cap.spans(CHAT)
    assert len(chats) == 3
    assert {s.instrumentation_scope.name for s in chats} == {"pydantic-ai"}
    assert all(s.attributes["agentrel.outcome"] == "success" for s in chats)
    assert len(cap.spans()) == 6  # 1 run, 3 requests, 2 tool executions: nothing doubled
    run_id = run_span.context.span_id
    assert all(s.parent is not None and s.parent.span_id == run_id for s in tools + chats)
    assert cap.histogram("agentrel.run.retry_depth", {"agentrel.outcome": "recovered"}).sum == 1


def test_instrument_all_with_the_global_provider(cap: testing.Capture) -> None:
    """Agent.instrument_all() with an SDK provider of its own: still one run span, the figures
    on it, and agentrel's metrics unchanged."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    Agent.instrument_all(InstrumentationSettings(tracer_provider=provider))
    try:
        agent = Agent(scripted(tool_call(), text()), name="support")
        agent.tool_plain(flaky(0))
        agent.run_sync("hi")
    finally:
        Agent.instrument_all(False)
    spans = exporter.get_finished_spans()
    (run_span,) = [s for s in spans if s.name == "invoke_agent support"]
    assert run_span.attributes["agentrel.outcome"] == "success"
    assert run_span.attributes["agentrel.run.attempts"] == 3
    assert cap.spans("invoke_agent support") == []  # no second run span in agentrel's provider
    assert cap.histogram("agentrel.run.retry_depth", {"agentrel.outcome": "success"}).count == 1


# --- set-up -----------------------------------------------------------------------------------
def test_instrument_is_idempotent_and_uninstrument_restores(cap: testing.Capture) -> None:
    ap.uninstrument()
    original = Agent.__dict__["iter"]
    assert not ap.instrumented()
    ap.instrument()
    wrapped = Agent.__dict__["iter"]
    ap.instrument()
    assert Agent.__dict__["iter"] is wrapped and ap.instrumented()

    agent = Agent(scripted(tool_call(), text()), name="support")
    agent.tool_plain(flaky(0))
    agent.run_sync("hi")
    assert cap.histogram("agentrel.run.attempts").sum == 3  # one capability, not two

    ap.uninstrument()
    assert Agent.__dict__["iter"] is original and not ap.instrumented()
    agent2 = Agent(scripted(tool_call(), text()), name="after")
    agent2.tool_plain(flaky(0))
    agent2.run_sync("hi")
    assert cap.spans("invoke_agent after") == []
    assert cap.histogram("agentrel.run.retry_depth").count == 1


def test_explicit_capability_without_instrument(cap: testing.Capture) -> None:
    """capabilities=[capability()] works without patching, and with instrument() it is one."""
    ap.uninstrument()
    agent = Agent(
        scripted(tool_call(), text(), tool_call(), text()),
        name="support",
        capabilities=[ap.capability()],
    )
    agent.tool_plain(flaky(0))
    agent.run_sync("hi")
    ap.instrument()
    agent.run_sync("again")
    assert cap.histogram("agentrel.run.attempts").count == 2
    assert cap.histogram("agentrel.run.attempts").sum == 6
    assert isinstance(ap.capability(), ap.AgentrelCapability)


def test_nothing_recorded_and_nothing_changed_when_quiet() -> None:
    """No SDK, no run: the agent's answer and exceptions are the framework's own."""
    agent = Agent(scripted(tool_call(), tool_call()), name="support")
    agent.tool_plain(retries=1)(flaky(99))
    with pytest.raises(UnexpectedModelBehavior):
        agent.run_sync("hi")
    assert agentrel.telemetry_errors() == {}


def test_broken_telemetry_never_breaks_the_run(
    cap: testing.Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """agentrel's own code failing (here: building the specs) costs the counts, not the run."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("broken telemetry")

    monkeypatch.setattr(ai, "llm_spec", broken)
    monkeypatch.setattr(ap, "_tool_spec", broken)
    agent = Agent(scripted(tool_call(), tool_call(), text()), name="support")
    agent.tool_plain(flaky(1))
    assert agent.run_sync("hi").output == "done"
    assert agentrel.telemetry_errors() == {"pydantic_ai.model": 3, "pydantic_ai.tool": 2}
    attrs = the_run(cap, "support")
    assert (attrs["agentrel.outcome"], attrs["agentrel.run.attempts"]) == ("success", 0)


def test_import_without_the_framework() -> None:
    """The module imports with pydantic-ai absent (lazy import)."""
    code = (
        "import sys; sys.modules['pydantic_ai'] = None\n"
        "from agentrel.integrations import pydantic_ai as m\n"
        "assert not m.instrumented(); print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


# --- the public API added for framework spans ---------------------------------------------------
def test_call_and_run_on_a_borrowed_span(cap: testing.Capture) -> None:
    """call_on_span/run_scope_on_span write onto the given span and never end it."""
    tracer = cap.tracer_provider.get_tracer("framework")
    spec = ai.tool_spec("t", register=False)
    with tracer.start_as_current_span("invoke_agent a") as run_span:
        with ai.run_scope_on_span("a", run_span) as handle:
            with tracer.start_as_current_span("execute_tool t") as tool_span:
                with ai.call_on_span(spec, tool_span) as call:
                    call.attempt_failed(TimeoutError())
                    call.next_attempt()
                assert tool_span.is_recording()  # not ended by agentrel
    assert handle.run is not None and figures(handle.run) == ("recovered", 1, 2, 0, 0)
    assert [s.name for s in cap.spans()] == ["execute_tool t", "invoke_agent a"]
    tool, run = cap.spans()
    assert tool.attributes["agentrel.outcome"] == "recovered"
    assert tool.attributes["agentrel.call.attempts"] == 2
    assert run.attributes["agentrel.run.retry_depth"] == 1


def test_reject_finished(cap: testing.Capture) -> None:
    """A finished LLM call rejected afterwards: one failure, its tokens wasted."""
    llm = ai.llm_spec("test", "m1")
    with agentrel.run("agent") as run:
        with ai.call(llm) as first:
            first.add_tokens(input=60, output=40)
        ai.reject_finished(first, "invalid")
        with ai.call(llm) as second:
            second.add_tokens(input=60, output=40)
    assert figures(run) == ("recovered", 1, 2, 100, 100)
    assert cap.counter("agentrel.tool.failures", {"error.type": "rejected"}) == 1


# --- the example --------------------------------------------------------------------------------
def test_example_prints_its_figures() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "pydantic_ai_agent.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines == [
        "answer: Paris: 18 C, light rain",
        "outcome: recovered",
        "retry depth: 3",  # ModelRetry, ToolFailed, one rejected answer
        "attempts: 8",  # 5 model requests, 3 tool executions
        "tokens: useful 222, wasted 230",  # useful: 90 + 132; wasted: 50 + 70 + 110
        "token amplification: 2.04",  # 452 / 222
    ]


def test_example_runs_in_process() -> None:
    """runpy keeps the example importable and free of module-level side effects on import."""
    namespace = runpy.run_path(str(ROOT / "examples" / "pydantic_ai_agent.py"), run_name="example")
    assert callable(namespace["main"])


# --- pydantic-ai's own instrumentation alongside -------------------------------------------------
def _own_providers() -> tuple[Any, Any, Any, Any]:
    """An application's own providers (pydantic-ai's tracing and metrics), apart from
    agentrel's: (tracer provider, span exporter, meter provider, metric reader)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    return tp, exporter, MeterProvider(metric_readers=[reader]), reader


def _token_usage(reader: Any) -> dict[str, tuple[int, float]]:
    """pydantic-ai's ``gen_ai.client.token.usage``: (count, sum) by ``gen_ai.token.type``."""
    out: dict[str, tuple[int, float]] = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == "gen_ai.client.token.usage":
                    for p in m.data.data_points:
                        kind = str(p.attributes["gen_ai.token.type"])
                        n, total = out.get(kind, (0, 0.0))
                        out[kind] = (n + p.count, total + p.sum)
    return out


@pytest.mark.parametrize("how", ["instrument", "capability"])
def test_user_provided_instrumented_model(cap: testing.Capture, how: str) -> None:
    """``Agent(model=InstrumentedModel(...))`` with agentrel on: one ``chat`` span per
    request, and pydantic-ai's token usage counted once (30 input, 5 output), as without
    agentrel."""
    from pydantic_ai.models.instrumented import InstrumentedModel

    tp, exporter, mp, reader = _own_providers()
    model = InstrumentedModel(
        scripted(text()), InstrumentationSettings(tracer_provider=tp, meter_provider=mp)
    )
    if how == "capability":
        ap.uninstrument()
        agent = Agent(model=model, name="support", capabilities=[ap.capability()])
    else:
        agent = Agent(model=model, name="support")
    assert agent.run_sync("hi").output == "done"

    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == [CHAT, "invoke_agent support"]
    assert _token_usage(reader) == {"input": (1, 30.0), "output": (1, 5.0)}
    assert cap.spans() == []  # agentrel wrote on pydantic-ai's spans, opened none
    (run_span,) = [s for s in exporter.get_finished_spans() if s.name == "invoke_agent support"]
    assert run_span.attributes["agentrel.outcome"] == "success"
    assert (
        run_span.attributes["agentrel.run.attempts"],
        run_span.attributes["agentrel.run.retry_depth"],
    ) == (1, 0)
    h = cap.histogram("agentrel.run.retry_depth", {"agentrel.outcome": "success"})
    assert (h.count, h.sum) == (1, 0)
    assert cap.counter("agentrel.tokens") == 35


@pytest.mark.filterwarnings("ignore:Instrumentation format versions")  # deprecated upstream
def test_instrumentation_version_2_spans_are_not_reparented(cap: testing.Capture) -> None:
    """pydantic-ai's instrumentation version 2 (``agent run``, ``running tool``) in the
    application's own provider: agentrel records onto those spans and opens none, so every
    span the application's exporter receives has its parent there too."""
    tp, exporter, mp, _ = _own_providers()
    agent = Agent(scripted(tool_call(), tool_call(), text()), name="support")
    agent.instrument = InstrumentationSettings(tracer_provider=tp, meter_provider=mp, version=2)
    agent.tool_plain(flaky(1))
    assert agent.run_sync("hi").output == "done"

    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == sorted(
        ["agent run", "running tool", "running tool", CHAT, CHAT, CHAT]
    )
    ids = {s.context.span_id for s in spans}
    assert all(s.parent is None or s.parent.span_id in ids for s in spans)
    assert cap.spans() == []  # nothing of agentrel's own in between
    (run_span,) = [s for s in spans if s.name == "agent run"]
    assert run_span.attributes["agentrel.outcome"] == "recovered"
    assert run_span.attributes["agentrel.run.retry_depth"] == 1
    assert run_span.attributes["agentrel.run.attempts"] == 5
    tools = [s for s in spans if s.name == "running tool"]
    assert [s.attributes["agentrel.outcome"] for s in tools] == ["failed", "success"]
    h = cap.histogram("agentrel.run.retry_depth", {"agentrel.outcome": "recovered"})
    assert (h.count, h.sum) == (1, 1)
    calls = {
        (a["gen_ai.tool.name"], a["agentrel.outcome"]): (p.count, p.sum)
        for a, p in cap.points("agentrel.tool.attempts")
    }
    assert calls == {
        ("lookup", "failed"): (1, 1),
        ("lookup", "success"): (1, 1),
        (CHAT, "success"): (3, 3),
    }
