"""The OpenAI Agents SDK integration, driven by the SDK's own ScriptedModel: exact counts."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("agents")

from agents import (
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    MaxTurnsExceeded,
    ModelRetrySettings,
    ModelSettings,
    OutputGuardrailTripwireTriggered,
    RetryDecision,
    Runner,
    function_tool,
    handoff,
    input_guardrail,
    output_guardrail,
)
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from agents.tracing import TracingProcessor, add_trace_processor
from agents.usage import Usage

import agentrel
from agentrel import testing
from agentrel.integrations import openai_agents


@pytest.fixture(autouse=True)
def _instrumented() -> Iterator[None]:
    openai_agents.instrument()
    yield
    openai_agents.uninstrument()


def U(i: int, o: int) -> Usage:
    return Usage(requests=1, input_tokens=i, output_tokens=o, total_tokens=i + o)


def call(cid: str, name: str = "lookup", **args: Any) -> ModelStep:
    return ModelStep(
        output=[function_call(name, args or {"city": "x"}, call_id=cid)], usage=U(10, 5)
    )


def answer(text: str = "done") -> ModelStep:
    return ModelStep(output=[assistant_message(text)], usage=U(40, 10))


def flaky(fails: int, exc: type[Exception] = TimeoutError) -> Any:
    n = {"k": 0}

    @function_tool
    def lookup(city: str) -> str:
        """Look up the weather of a city."""
        n["k"] += 1
        if n["k"] <= fails:
            raise exc("down")
        return "sunny"

    return lookup


def test_tool_fails_twice_then_succeeds(cap: testing.Capture) -> None:
    """Two failures handed to the model, a success: recovered, depth 2, the two model turns
    whose tool calls failed wasted."""
    model = ScriptedModel([call("c1"), call("c2"), call("c3"), answer()])
    agent = Agent(name="weather", model=model, tools=[flaky(2)])
    result = Runner.run_sync(agent, "weather?")
    assert result.final_output == "done"
    ((attrs, point),) = cap.points("agentrel.run.retry_depth")
    assert attrs["gen_ai.agent.name"] == "weather"
    assert attrs["agentrel.outcome"] == "recovered" and point.sum == 2
    assert cap.histogram("agentrel.run.attempts").sum == 7  # 4 model turns + 3 tool calls
    assert (
        cap.counter(
            "agentrel.tool.failures",
            {
                "gen_ai.tool.name": "lookup",
                "error.type": "TimeoutError",
                "agentrel.absorbed": "true",
            },
        )
        == 2
    )
    assert cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "failed"}).count == 2
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "wasted"}) == 30
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "useful"}) == 65
    assert cap.histogram("agentrel.run.token_amplification").sum == pytest.approx(95 / 65)
    tool_span = cap.spans("execute_tool lookup")[0]
    assert tool_span.attributes["agentrel.integration"] == "openai_agents"
    assert tool_span.attributes["gen_ai.tool.description"] == "Look up the weather of a city."


def test_framework_model_retry_is_one_call_with_attempts(cap: testing.Capture) -> None:
    """ModelSettings(retry=...): two failed requests and the answer are three attempts of one
    LLM call, with the runner's backoff waits."""
    retry = ModelRetrySettings(
        max_retries=2, policy=lambda ctx: RetryDecision(retry=True, delay=0.01)
    )
    model = ScriptedModel([ConnectionError("503"), ConnectionError("503"), answer()])
    agent = Agent(name="a", model=model, model_settings=ModelSettings(retry=retry))
    with agentrel.run("app") as run:  # the app's own run is joined, not doubled
        assert Runner.run_sync(agent, "hi").final_output == "done"
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 2, 3)
    assert (run.useful_tokens, run.wasted_tokens) == (50, 0)
    assert cap.histogram("agentrel.run.retry_depth").count == 1
    assert cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "recovered"}).sum == 3
    assert cap.counter("agentrel.tool.failures", {"error.type": "ConnectionError"}) == 2
    assert cap.histogram("agentrel.retry.delay").sum == pytest.approx(0.02)


def test_failure_error_function_string_is_a_failed_call(cap: testing.Capture) -> None:
    """A custom failure_error_function turns the exception into text for the model: the
    call failed (error.type the exception's class), absorbed when the run succeeds."""

    @function_tool(failure_error_function=lambda ctx, err: "please retry")
    def lookup(city: str) -> str:
        """Look up."""
        raise KeyError(city)

    model = ScriptedModel([call("c1"), answer()])
    with agentrel.run("app") as run:
        Runner.run_sync(Agent(name="a", model=model, tools=[lookup]), "hi")
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 3)
    assert (run.useful_tokens, run.wasted_tokens) == (50, 15)
    assert cap.counter("agentrel.tool.failures", {"error.type": "KeyError"}) == 1
    assert cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "failed"}).count == 1
    (span,) = cap.spans("execute_tool lookup")
    assert span.attributes["error.type"] == "KeyError"


def test_model_retries_exhausted_run_is_exhausted(cap: testing.Capture) -> None:
    """max_retries=1 and two failed requests: the error reaches the caller, the run is
    exhausted with depth 2."""
    err = ConnectionError("503")
    retry = ModelRetrySettings(max_retries=1, policy=lambda ctx: RetryDecision(retry=True, delay=0))
    model = ScriptedModel([ConnectionError("503"), err])
    agent = Agent(name="a", model=model, model_settings=ModelSettings(retry=retry))
    with pytest.raises(ConnectionError) as info:
        Runner.run_sync(agent, "hi")
    assert info.value is err
    ((attrs, point),) = cap.points("agentrel.run.retry_depth")
    assert attrs["agentrel.outcome"] == "exhausted" and point.sum == 2
    assert cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "exhausted"}).sum == 2
    assert cap.counter("agentrel.tool.failures", {"agentrel.absorbed": "false"}) == 2


def test_max_turns_after_failing_tool_is_exhausted(cap: testing.Capture) -> None:
    """The model keeps calling a failing tool until MaxTurnsExceeded: exhausted, depth 2."""
    model = ScriptedModel([call("c1"), call("c2")])
    agent = Agent(name="a", model=model, tools=[flaky(99)])
    with pytest.raises(MaxTurnsExceeded), agentrel.run("app") as run:
        Runner.run_sync(agent, "hi", max_turns=2)
    assert (run.outcome, run.retry_depth, run.attempts, run.wasted_tokens) == (
        "exhausted",
        2,
        4,
        30,
    )


def test_max_turns_without_failures_is_failed(cap: testing.Capture) -> None:
    model = ScriptedModel([call("c1")])
    with pytest.raises(MaxTurnsExceeded), agentrel.run("app") as run:
        Runner.run_sync(Agent(name="a", model=model, tools=[flaky(0)]), "hi", max_turns=1)
    assert (run.outcome, run.retry_depth, run.attempts) == ("failed", 0, 2)


def test_async_tool(cap: testing.Capture) -> None:
    """An async tool failing once (default failure message) then succeeding."""
    n = {"k": 0}

    @function_tool
    async def fetch(url: str) -> str:
        """Fetch a page."""
        n["k"] += 1
        if n["k"] == 1:
            raise OSError("reset")
        return "page"

    model = ScriptedModel([call("c1", "fetch", url="u"), call("c2", "fetch", url="u"), answer()])

    async def main() -> agentrel.Run:
        async with agentrel.run("app") as run:
            await Runner.run(Agent(name="a", model=model, tools=[fetch]), "hi")
        return run

    run = asyncio.run(main())
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 5)
    assert (
        cap.counter(
            "agentrel.tool.failures", {"gen_ai.tool.name": "fetch", "error.type": "OSError"}
        )
        == 1
    )


def test_two_concurrent_runs_keep_their_own_counts(cap: testing.Capture) -> None:
    """Two runs in asyncio.gather: depth 1 and depth 0, each exactly."""
    a = Agent(
        name="flaky", model=ScriptedModel([call("c1"), call("c2"), answer()]), tools=[flaky(1)]
    )
    b = Agent(name="steady", model=ScriptedModel([call("c1"), answer()]), tools=[flaky(0)])

    async def main() -> None:
        await asyncio.gather(Runner.run(a, "x"), Runner.run(b, "y"))

    asyncio.run(main())
    fl = cap.histogram("agentrel.run.retry_depth", {"gen_ai.agent.name": "flaky"})
    st = cap.histogram("agentrel.run.retry_depth", {"gen_ai.agent.name": "steady"})
    assert (fl.count, fl.sum, st.count, st.sum) == (1, 1, 1, 0)
    assert cap.histogram("agentrel.run.attempts", {"gen_ai.agent.name": "flaky"}).sum == 5
    assert cap.histogram("agentrel.run.attempts", {"gen_ai.agent.name": "steady"}).sum == 3
    assert (
        cap.counter(
            "agentrel.tokens",
            {"gen_ai.agent.name": "flaky", "agentrel.token.disposition": "wasted"},
        )
        == 15
    )


def test_streamed_run(cap: testing.Capture) -> None:
    """run_streamed: tokens come from the stream's response.completed events."""
    model = ScriptedModel([call("c1"), call("c2"), answer()])

    async def main() -> str:
        result = Runner.run_streamed(Agent(name="s", model=model, tools=[flaky(1)]), "hi")
        async for _ in result.stream_events():
            pass
        return str(result.final_output)

    assert asyncio.run(main()) == "done"
    ((attrs, point),) = cap.points("agentrel.run.retry_depth")
    assert attrs["agentrel.outcome"] == "recovered" and point.sum == 1
    assert cap.histogram("agentrel.run.attempts").sum == 5
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "wasted"}) == 15
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "useful"}) == 65


def test_streamed_model_retry(cap: testing.Capture) -> None:
    retry = ModelRetrySettings(max_retries=1, policy=lambda ctx: RetryDecision(retry=True, delay=0))
    model = ScriptedModel([ConnectionError("x"), answer()])
    agent = Agent(name="s", model=model, model_settings=ModelSettings(retry=retry))

    async def main() -> None:
        result = Runner.run_streamed(agent, "hi")
        async for _ in result.stream_events():
            pass

    asyncio.run(main())
    ((attrs, point),) = cap.points("agentrel.run.retry_depth")
    assert attrs["agentrel.outcome"] == "recovered" and point.sum == 1
    assert cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "recovered"}).sum == 2


def test_streamed_run_cancelled(cap: testing.Capture) -> None:
    """result.cancel() while a tool runs: the run is failed (error.type CancelledError)."""

    @function_tool
    async def slow() -> str:
        """Slow."""
        await asyncio.sleep(30)
        return "late"

    async def main() -> None:
        model = ScriptedModel([ModelStep(output=[function_call("slow", {}, call_id="c1")])])
        result = Runner.run_streamed(Agent(name="c", model=model, tools=[slow]), "hi")
        async for event in result.stream_events():
            if getattr(event, "name", None) == "tool_called":
                await asyncio.sleep(0.05)
                result.cancel()

    asyncio.run(main())
    (run_span,) = cap.spans("invoke_agent c")
    assert run_span.attributes["agentrel.outcome"] == "failed"
    assert run_span.attributes["error.type"] == "CancelledError"
    # the tool cut off by the cancellation is a failed attempt of its own
    assert run_span.attributes["agentrel.run.retry_depth"] == 1
    assert cap.counter("agentrel.tool.failures", {"gen_ai.tool.name": "slow"}) == 1


def test_run_cancelled_while_a_tool_executes(cap: testing.Capture) -> None:
    """The caller cancels the run while a tool executes: the cut-off tool is the run's one
    failure (failed, depth 1, attempts 2), the rule LangGraph and pydantic-ai follow too."""
    started = asyncio.Event()

    @function_tool
    async def slow() -> str:
        """Slow."""
        started.set()
        await asyncio.sleep(30)
        return "late"

    async def main() -> None:
        model = ScriptedModel([ModelStep(output=[function_call("slow", {}, call_id="c1")])])
        task = asyncio.ensure_future(Runner.run(Agent(name="c", model=model, tools=[slow]), "hi"))
        await asyncio.wait_for(started.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    (run_span,) = cap.spans("invoke_agent c")
    attrs = run_span.attributes
    assert (attrs["agentrel.outcome"], attrs["error.type"]) == ("failed", "CancelledError")
    assert (attrs["agentrel.run.retry_depth"], attrs["agentrel.run.attempts"]) == (1, 2)
    ((_, depth),) = cap.points("agentrel.run.retry_depth")
    assert (depth.count, depth.sum) == (1, 1)
    assert cap.counter("agentrel.tool.failures") == depth.sum
    assert (
        cap.counter(
            "agentrel.tool.failures",
            {
                "gen_ai.tool.name": "slow",
                "error.type": "CancelledError",
                "agentrel.absorbed": "false",
            },
        )
        == 1
    )
    assert agentrel.telemetry_errors() == {}


SCHEMA_FIELDS = ("name", "description", "params_json_schema", "strict_json_schema")


def test_decorated_tool_is_counted_once_and_unchanged(cap: testing.Capture) -> None:
    """@function_tool over @agentrel.tool: one call per execution, the decorated tool's name
    on the span; the FunctionTool's name, description, schema and async-ness unchanged."""
    n = {"k": 0}

    def plain(city: str) -> str:
        """Look up the weather of a city.

        Args:
            city: the city
        """
        n["k"] += 1
        if n["k"] == 1:
            raise TimeoutError("x")
        return "sunny"

    async def aplain(city: str) -> str:
        """Async twin.

        Args:
            city: the city
        """
        return plain(city)

    bare, deco = function_tool(plain), function_tool(agentrel.tool(plain))
    abare, adeco = function_tool(aplain), function_tool(agentrel.tool(aplain))
    for x, y in ((bare, deco), (abare, adeco)):
        assert [getattr(x, f) for f in SCHEMA_FIELDS] == [getattr(y, f) for f in SCHEMA_FIELDS]
    sync_marker = "__agents_sync_function_tool__"
    assert getattr(deco.on_invoke_tool, sync_marker, False) is True
    assert getattr(adeco.on_invoke_tool, sync_marker, False) is False
    assert inspect.iscoroutinefunction(agentrel.tool(aplain))

    model = ScriptedModel([call("c1", "plain"), call("c2", "plain"), answer()])
    with agentrel.run("app") as run:
        Runner.run_sync(Agent(name="a", model=model, tools=[deco]), "hi")
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 5)
    assert cap.histogram("agentrel.tool.attempts", {"gen_ai.tool.name": "plain"}).count == 2
    assert len(cap.spans("execute_tool plain")) == 2
    # the other order is not a tool: agentrel.tool refuses a FunctionTool at decoration
    with pytest.raises(TypeError, match="callable"):
        agentrel.tool(function_tool(plain))  # type: ignore[arg-type]


def test_decorated_tool_without_instrumentation(cap: testing.Capture) -> None:
    """Not instrumented: the decorated tool still counts itself, once."""
    openai_agents.uninstrument()

    @function_tool
    @agentrel.tool
    def lookup(city: str) -> str:
        """Look up."""
        raise TimeoutError(city)

    model = ScriptedModel([call("c1"), answer()])
    with agentrel.run("app") as run:
        Runner.run_sync(Agent(name="a", model=model, tools=[lookup]), "hi")
    # the decorated call sees the exception; the SDK's message to the model is invisible
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 1)


def test_output_guardrail_tripwire_is_a_rejection(cap: testing.Capture) -> None:
    @output_guardrail
    async def no_done(ctx: Any, agent: Any, output: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered=True)

    agent = Agent(name="g", model=ScriptedModel([answer()]), output_guardrails=[no_done])
    with pytest.raises(OutputGuardrailTripwireTriggered):
        Runner.run_sync(agent, "hi")
    ((attrs, point),) = cap.points("agentrel.run.retry_depth")
    assert attrs["agentrel.outcome"] == "failed" and point.sum == 1
    assert cap.counter("agentrel.tool.failures", {"error.type": "rejected"}) == 1
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "wasted"}) == 50


def test_input_guardrail_tripwire_fails_the_run(cap: testing.Capture) -> None:
    @input_guardrail(run_in_parallel=False)
    async def block(ctx: Any, agent: Any, inp: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered=True)

    agent = Agent(name="g", model=ScriptedModel([answer()]), input_guardrails=[block])
    with pytest.raises(InputGuardrailTripwireTriggered):
        Runner.run_sync(agent, "hi")
    (span,) = cap.spans("invoke_agent g")
    assert span.attributes["agentrel.outcome"] == "failed"
    assert span.attributes["agentrel.run.retry_depth"] == 0
    assert span.attributes["error.type"] == "InputGuardrailTripwireTriggered"


def test_handoff_is_one_run_with_an_event(cap: testing.Capture) -> None:
    billing = Agent(name="billing", model=ScriptedModel([answer("paid")]))
    triage = Agent(
        name="triage",
        model=ScriptedModel(
            [
                ModelStep(
                    output=[function_call("transfer_to_billing", {}, call_id="h1")], usage=U(10, 5)
                )
            ]
        ),
        handoffs=[handoff(billing)],
    )
    assert Runner.run_sync(triage, "bill").final_output == "paid"
    (run_span,) = cap.spans("invoke_agent triage")
    assert run_span.attributes["agentrel.outcome"] == "success"
    assert run_span.attributes["agentrel.run.attempts"] == 2
    (event,) = [e for e in run_span.events if e.name == "agentrel.handoff"]
    assert dict(event.attributes or {}) == {
        "agentrel.handoff.from": "triage",
        "agentrel.handoff.to": "billing",
    }
    agents_on_llm = [s.attributes.get("gen_ai.agent.name") for s in cap.spans("chat")]
    assert agents_on_llm == ["triage", "billing"]


class _Collect(TracingProcessor):
    def __init__(self) -> None:
        self.spans: list[str] = []

    def on_trace_start(self, trace: Any) -> None: ...
    def on_trace_end(self, trace: Any) -> None: ...
    def on_span_start(self, span: Any) -> None: ...

    def on_span_end(self, span: Any) -> None:
        self.spans.append(type(span.span_data).__name__)

    def shutdown(self) -> None: ...
    def force_flush(self) -> None: ...


def test_sdk_tracing_stays_on(cap: testing.Capture) -> None:
    """The SDK's own trace processors still see their spans; agentrel's counts are the same."""
    collect = _Collect()
    add_trace_processor(collect)
    model = ScriptedModel([call("c1"), call("c2"), answer()])
    with agentrel.run("app") as run:
        Runner.run_sync(Agent(name="a", model=model, tools=[flaky(1)]), "hi")
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 5)
    assert collect.spans.count("FunctionSpanData") == 2
    assert collect.spans.count("AgentSpanData") == 1
    assert len(cap.spans("execute_tool lookup")) == 2


def test_instrument_is_idempotent_and_uninstrument_restores(cap: testing.Capture) -> None:
    import agents.run
    import agents.run_internal.run_loop as run_loop

    assert openai_agents.instrumented()
    openai_agents.instrument()  # logs, patches nothing twice
    wrapped = agents.run.AgentRunner.__dict__["run"]
    assert not hasattr(wrapped.__wrapped__, "__wrapped__")  # one layer, not two
    openai_agents.uninstrument()
    assert not openai_agents.instrumented()
    assert agents.run.AgentRunner.__dict__["run"] is wrapped.__wrapped__
    assert not hasattr(run_loop.get_response_with_retry, "__wrapped__")
    assert inspect.iscoroutinefunction(agents.run.AgentRunner.run)
    Runner.run_sync(Agent(name="a", model=ScriptedModel([answer()])), "hi")
    assert cap.points("agentrel.run.retry_depth") == []


def test_nothing_recorded_and_nothing_broken_when_quiet() -> None:
    """No SDK configured and no run: the run goes straight through."""
    model = ScriptedModel([call("c1"), answer()])
    assert (
        Runner.run_sync(Agent(name="a", model=model, tools=[flaky(1)]), "hi").final_output == "done"
    )
    assert agentrel.telemetry_errors() == {}


def test_example_prints_its_numbers() -> None:
    """The example, in its own interpreter (it turns the SDK's tracing off globally)."""
    proc = subprocess.run(
        [sys.executable, "examples/openai_agents_agent.py"],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1:] == [
        "outcome: recovered",
        "retry depth: 2",
        "attempts: 6",
        "failures: {('chat', 'ConnectionError'): 1, ('order_status', 'TimeoutError'): 1}",
        "tokens useful/wasted: 380/140",
        "amplification: 1.37",
    ]


def test_agent_as_tool_is_a_run_of_its_own(cap: testing.Capture) -> None:
    """Agent.as_tool: the sub-agent's run is its own; the outer run counts the tool call."""
    sub = Agent(name="researcher", model=ScriptedModel([answer("found")]))
    tool = sub.as_tool(tool_name="research", tool_description="Research a topic.")
    model = ScriptedModel(
        [ModelStep(output=[function_call("research", {"input": "q"}, call_id="c1")]), answer()]
    )
    Runner.run_sync(Agent(name="lead", model=model, tools=[tool]), "hi")
    lead = cap.histogram("agentrel.run.attempts", {"gen_ai.agent.name": "lead"})
    sub_runs = cap.histogram("agentrel.run.attempts", {"gen_ai.agent.name": "researcher"})
    assert (lead.count, lead.sum, sub_runs.count, sub_runs.sum) == (1, 3, 1, 1)
    (research,) = cap.spans("execute_tool research")
    (sub_span,) = cap.spans("invoke_agent researcher")
    assert sub_span.parent is not None and sub_span.parent.span_id == research.context.span_id


def test_broken_telemetry_never_breaks_the_run(
    cap: testing.Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing telemetry step is counted and logged, the run's result is untouched."""

    def broken(tool: Any) -> Any:
        raise RuntimeError("telemetry bug")

    monkeypatch.setattr(openai_agents, "_tool_spec", broken)
    model = ScriptedModel([call("c1"), call("c2"), answer()])
    result = Runner.run_sync(Agent(name="a", model=model, tools=[flaky(1)]), "hi")
    assert result.final_output == "done"
    assert agentrel.telemetry_errors() == {"openai_agents.tool": 2}


def test_invalid_arguments_from_the_model_are_a_failed_call(cap: testing.Capture) -> None:
    model = ScriptedModel([call("c1", city=3), call("c2"), answer()])  # 3 is not a string
    with agentrel.run("app") as run:
        Runner.run_sync(Agent(name="a", model=model, tools=[flaky(0)]), "hi")
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 5)
    assert cap.counter("agentrel.tool.failures", {"error.type": "ModelBehaviorError"}) == 1


def test_no_failure_function_fails_the_run(cap: testing.Capture) -> None:
    @function_tool(failure_error_function=None)
    def lookup(city: str) -> str:
        """Look up."""
        raise KeyError(city)

    model = ScriptedModel([call("c1")])
    with pytest.raises(Exception) as info, agentrel.run("app") as run:
        Runner.run_sync(Agent(name="a", model=model, tools=[lookup]), "hi")
    assert type(info.value).__name__ == "UserError"
    assert (run.outcome, run.retry_depth, run.attempts) == ("failed", 1, 2)
    assert cap.counter("agentrel.tool.failures", {"error.type": "KeyError"}) == 1


def test_tool_timeout_message_is_a_failed_attempt(cap: testing.Capture) -> None:
    @function_tool(timeout=0.05)
    async def slow(city: str) -> str:
        """Slow."""
        await asyncio.sleep(5)
        return "late"

    model = ScriptedModel([call("c1", "slow"), answer()])
    with agentrel.run("app") as run:
        Runner.run_sync(Agent(name="a", model=model, tools=[slow]), "hi")
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 3)
    assert cap.counter("agentrel.tool.failures", {"error.type": "ToolTimeoutError"}) == 1


def test_parallel_input_guardrail_cancels_the_model_request(cap: testing.Capture) -> None:
    """run_in_parallel=True (the default): the tripwire makes the SDK cancel the model request
    running beside it, and that request is a failed attempt (CancelledError)."""

    @input_guardrail
    async def block(ctx: Any, agent: Any, inp: Any) -> GuardrailFunctionOutput:
        await asyncio.sleep(0.05)  # the model request (5 s) is under way by then
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered=True)

    class Slow(ScriptedModel):
        async def get_response(self, *args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(5)
            return await super().get_response(*args, **kwargs)

    agent = Agent(name="g", model=Slow([answer()]), input_guardrails=[block])
    with pytest.raises(InputGuardrailTripwireTriggered):
        Runner.run_sync(agent, "hi")
    (span,) = cap.spans("invoke_agent g")
    assert span.attributes["agentrel.outcome"] == "failed"
    assert span.attributes["agentrel.run.retry_depth"] == 1
    assert cap.counter("agentrel.tool.failures", {"error.type": "CancelledError"}) == 1


def test_module_imports_without_the_sdk() -> None:
    """The SDK is imported by instrument() only."""
    code = (
        "import sys; sys.modules['agents'] = None\n"
        "from agentrel.integrations import openai_agents as oa\n"
        "assert not oa.instrumented()\n"
        "try:\n    oa.instrument()\nexcept ImportError:\n    print('lazy')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "lazy"


def test_unknown_version_degrades_with_one_warning(
    cap: testing.Capture, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An SDK without one of the private functions agentrel hooks (the tool-failure message):
    instrument() warns once, naming it, raises nothing, and the rest is counted."""
    import agents.tool

    openai_agents.uninstrument()
    monkeypatch.delattr(agents.tool, "maybe_invoke_function_tool_failure_error_function")
    with caplog.at_level("WARNING", logger="agentrel"):
        openai_agents.instrument()
        openai_agents.uninstrument()
        openai_agents.instrument()
    warnings_ = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings_) == 1
    assert "agents.tool.maybe_invoke_function_tool_failure_error_function not found" in warnings_[0]
    assert openai_agents.is_instrumented()

    agent = Agent(name="weather", model=ScriptedModel([call("c1"), answer()]), tools=[flaky(0)])
    assert Runner.run_sync(agent, "weather?").final_output == "done"
    ((attrs, point),) = cap.points("agentrel.run.retry_depth")
    assert (attrs["gen_ai.agent.name"], attrs["agentrel.outcome"], point.sum) == (
        "weather",
        "success",
        0,
    )
    assert cap.histogram("agentrel.run.attempts").sum == 3  # 2 model turns + 1 tool call
    assert agentrel.telemetry_errors() == {}
