"""A LangGraph agent whose absorbed failures agentrel counts, with one line of set-up.

Runs offline: the model is LangChain's FakeMessagesListChatModel test double. The graph first
geocodes the city in a node under a RetryPolicy (the geocoder drops the connection once, the
node is retried in place), then runs a ReAct loop: the model asks for the weather three times
(the weather service times out twice; ToolNode(handle_tool_errors=True) hands each error to
the model as a message), then answers.

    pip install 'agentrel-otel[langgraph]'   # Python 3.11 or later
    python examples/langgraph_agent.py
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from typing_extensions import TypedDict

import agentrel
from agentrel.integrations import langgraph as agentrel_langgraph


class State(TypedDict):
    messages: Annotated[list[Any], operator.add]


def build_graph() -> Any:
    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool
    from langgraph.graph import START, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition
    from langgraph.types import RetryPolicy

    def ask(call_id: str, input_tokens: int) -> AIMessage:
        return AIMessage(
            content="",
            tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": call_id}],
            usage_metadata={
                "input_tokens": input_tokens,
                "output_tokens": 10,
                "total_tokens": input_tokens + 10,
            },
        )

    class ScriptedModel(FakeMessagesListChatModel):
        def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
            return self

    model = ScriptedModel(
        responses=[
            ask("call-1", 40),  # the weather service times out   (50 tokens, wasted)
            ask("call-2", 60),  # times out again                  (70 tokens, wasted)
            ask("call-3", 80),  # 18 C, light rain                 (90 tokens, useful)
            AIMessage(  #                                          (112 tokens, useful)
                content="Paris: 18 C, light rain",
                usage_metadata={"input_tokens": 100, "output_tokens": 12, "total_tokens": 112},
            ),
        ]
    )
    service = {"calls": 0}
    geocoder = {"calls": 0}

    @tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        service["calls"] += 1
        if service["calls"] <= 2:
            raise TimeoutError("weather service timed out")
        return "18 C, light rain"

    def geocode(state: State) -> dict[str, Any]:
        geocoder["calls"] += 1
        if geocoder["calls"] == 1:
            raise ConnectionError("geocoder dropped the connection")
        return {"messages": [("system", "Paris is at 48.86 N, 2.35 E")]}

    def call_model(state: State) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(State)
    graph.add_node("geocode", geocode, retry_policy=RetryPolicy(initial_interval=0.01))
    graph.add_node("agent", call_model)
    graph.add_node("tools", ToolNode([get_weather], handle_tool_errors=True))
    graph.add_edge(START, "geocode")
    graph.add_edge("geocode", "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(name="forecaster")


def main() -> None:
    agentrel_langgraph.instrument()  # the one line of set-up
    graph = build_graph()
    with agentrel.run("forecaster") as run:  # your own run (optional): the graph's joins it
        result = graph.invoke({"messages": [("user", "What is the weather in Paris?")]})
    print(f"answer: {result['messages'][-1].content}")
    print(f"outcome: {run.outcome}")
    print(f"retry depth: {run.retry_depth}")
    print(f"attempts: {run.attempts}")
    print(f"tokens: useful {run.useful_tokens}, wasted {run.wasted_tokens}")
    print(f"token amplification: {run.token_amplification:.2f}")
    agentrel_langgraph.uninstrument()


if __name__ == "__main__":
    main()
