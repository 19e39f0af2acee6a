"""An OpenAI Agents SDK agent counted by agentrel, with no keys: the SDK's ScriptedModel.

The model's first request fails and the runner retries it (ModelSettings(retry=...)); the
model then calls a tool that times out (the SDK hands the error to the model as text) and
calls it again, successfully; then it answers. One Runner.run: one agentrel run.
"""

import asyncio

from agents import (
    Agent,
    ModelRetrySettings,
    ModelSettings,
    RetryDecision,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from agents.usage import Usage

import agentrel
from agentrel import testing
from agentrel.integrations import openai_agents

openai_agents.instrument()  # the one line of set-up
set_tracing_disabled(True)  # the SDK's tracing would try to export to OpenAI (no key here)
lookups = iter([TimeoutError("orders-db timed out"), "shipped"])


@function_tool
async def order_status(order_id: str) -> str:
    """The shipping status of an order."""
    reply = next(lookups)
    if isinstance(reply, Exception):
        raise reply
    return reply


def usage(i: int, o: int) -> Usage:
    return Usage(requests=1, input_tokens=i, output_tokens=o, total_tokens=i + o)


model = ScriptedModel(
    [
        ConnectionError("503 from the model API"),
        ModelStep(
            output=[function_call("order_status", {"order_id": "42"}, call_id="c1")],
            usage=usage(120, 20),
        ),
        ModelStep(
            output=[function_call("order_status", {"order_id": "42"}, call_id="c2")],
            usage=usage(150, 20),
        ),
        ModelStep(output=[assistant_message("Order 42 has shipped.")], usage=usage(180, 30)),
    ]
)
retry = ModelRetrySettings(max_retries=2, policy=lambda ctx: RetryDecision(retry=True, delay=0.05))
agent = Agent(
    name="support",
    model=model,
    tools=[order_status],
    model_settings=ModelSettings(retry=retry),
)


async def main() -> None:
    with testing.capture() as cap:  # in memory; in production: agentrel.configure(...)
        async with agentrel.run("support") as run:
            result = await Runner.run(agent, "Where is order 42?")
        failures = {
            (a["gen_ai.tool.name"], a["error.type"]): int(p.value)
            for a, p in cap.points("agentrel.tool.failures")
        }
    print(result.final_output)
    print(f"outcome: {run.outcome}")
    print(f"retry depth: {run.retry_depth}")
    print(f"attempts: {run.attempts}")
    print(f"failures: {failures}")
    print(f"tokens useful/wasted: {run.useful_tokens}/{run.wasted_tokens}")
    print(f"amplification: {run.token_amplification:.2f}")


asyncio.run(main())
