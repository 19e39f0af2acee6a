"""A pydantic-ai agent whose absorbed failures agentrel counts, with one line of set-up.

Runs offline: the model is pydantic-ai's FunctionModel test double, scripted to misspell the
city (the tool answers ModelRetry), then to hit a weather-service timeout (ToolFailed, handed
to the model as a failed tool result), then to get the weather, then to write an answer the
output validator rejects (it leaves out the rain), and finally a good answer.

    pip install 'agentrel-otel[pydantic-ai]'   # Python 3.11 or later
    python examples/pydantic_ai_agent.py
"""

from __future__ import annotations

from typing import Any

import agentrel
from agentrel.integrations import pydantic_ai as agentrel_pydantic_ai


def build_agent() -> Any:
    from pydantic_ai import Agent, ModelRetry, ToolFailed
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel
    from pydantic_ai.usage import RequestUsage

    def call(city: str, input_tokens: int) -> ModelResponse:
        return ModelResponse(
            parts=[ToolCallPart("get_weather", {"city": city})],
            usage=RequestUsage(input_tokens=input_tokens, output_tokens=10),
        )

    def say(answer: str, input_tokens: int, output_tokens: int) -> ModelResponse:
        return ModelResponse(
            parts=[TextPart(answer)],
            usage=RequestUsage(input_tokens=input_tokens, output_tokens=output_tokens),
        )

    script = [
        call("Pariss", 40),  # unknown city: ModelRetry            (50 tokens, wasted)
        call("Paris", 60),  # the weather service times out       (70 tokens, wasted)
        call("Paris", 80),  # 18 C, light rain                     (90 tokens, useful)
        say("Paris: 18 C", 100, 10),  # rejected: no rain in it  (110 tokens, wasted)
        say("Paris: 18 C, light rain", 120, 12),  # accepted       (132 tokens, useful)
    ]

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return script.pop(0)

    agent = Agent(FunctionModel(model, model_name="scripted"), name="forecaster", retries=2)
    service = {"calls": 0}

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        if city != "Paris":
            raise ModelRetry(f"unknown city {city!r}; check the spelling")
        service["calls"] += 1
        if service["calls"] == 1:
            raise ToolFailed("weather service timed out")
        return "18 C, light rain"

    @agent.output_validator
    def mentions_the_rain(answer: str) -> str:
        if "rain" not in answer:
            raise ModelRetry("the forecast says rain: say so")
        return answer

    return agent


def main() -> None:
    agentrel_pydantic_ai.instrument()  # the one line of set-up
    agent = build_agent()
    with agentrel.run("forecaster") as run:  # your own run (optional): the agent's joins it
        result = agent.run_sync("What is the weather in Paris?")
    print(f"answer: {result.output}")
    print(f"outcome: {run.outcome}")
    print(f"retry depth: {run.retry_depth}")
    print(f"attempts: {run.attempts}")
    print(f"tokens: useful {run.useful_tokens}, wasted {run.wasted_tokens}")
    print(f"token amplification: {run.token_amplification:.2f}")
    agentrel_pydantic_ai.uninstrument()


if __name__ == "__main__":
    main()
