"""GenAI semconv ``gen_ai.invoke_agent.tool_calls`` / ``.inference_calls``."""

from __future__ import annotations

import pytest

import agentrel
from agentrel import _catalogue as cat
from agentrel import testing
from agentrel.instrumentation import current_call
from llm_mocks import Script, chat_body, error, openai_client

TOOLS = "gen_ai.invoke_agent.tool_calls"
INFERENCE = "gen_ai.invoke_agent.inference_calls"


@agentrel.tool
def lookup(fail: bool = False) -> str:
    if fail:
        raise TimeoutError
    return "row"


@agentrel.llm(model="m", provider="p")
def think() -> str:
    return "t"


@agentrel.tool
def waits() -> str:
    """A tool retried once by a retry integration (two attempts of one call)."""
    call = current_call()
    assert call is not None
    call.attempt_failed(OSError())
    call.next_attempt()
    return "ok"


def test_one_record_per_run_counting_every_attempt(cap: testing.Capture) -> None:
    """3 tool calls (one failed) + a tool retried once (2 attempts) = 5 tool calls; 2 model
    calls + an SDK call retried after a 429 (2 HTTP attempts) = 4 inference calls."""
    client = agentrel.instrument(openai_client(Script(error(429), (200, chat_body()))))
    with agentrel.run("support") as run:
        lookup()
        with pytest.raises(TimeoutError):
            lookup(fail=True)
        lookup()
        waits()
        think()
        think()
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "q"}])
    cap.collect()
    tools = cap.histogram(TOOLS, {cat.AGENT: "support"})
    inference = cap.histogram(INFERENCE, {cat.AGENT: "support"})
    assert (tools.count, tools.sum) == (1, 5)
    assert (inference.count, inference.sum) == (1, 4)
    assert tools.sum + inference.sum == run.attempts == 9
    assert run.retry_depth == 3  # what semconv cannot tell: 3 of those 9 were failures
    assert cap.label_sets(TOOLS) == [{cat.AGENT: "support"}]
    assert cap.label_sets(INFERENCE) == [{cat.AGENT: "support"}]


def test_buckets_and_zero_calls(cap: testing.Capture) -> None:
    with agentrel.run("empty"):
        pass
    for _ in range(3):
        with agentrel.run("busy"):
            for _ in range(5):
                lookup()
    cap.collect()
    empty = cap.histogram(TOOLS, {cat.AGENT: "empty"})
    assert (empty.count, empty.sum) == (1, 0)
    busy = cap.histogram(TOOLS, {cat.AGENT: "busy"})
    assert (busy.count, busy.sum) == (3, 15)
    assert busy.buckets == {8.0: 3}  # 5 lands in (4, 8]
    assert cap.histogram(INFERENCE, {cat.AGENT: "busy"}).sum == 0
    points = dict(
        (a[cat.AGENT], p)
        for a, p in cap.points(TOOLS)  # the advice reached the SDK
    )
    assert tuple(points["busy"].explicit_bounds) == (1, 2, 4, 8, 16, 32, 64, 128)


def test_failed_run_and_nested_runs(cap: testing.Capture) -> None:
    """A failed run is counted like any other; a nested run counts its own calls only."""
    with pytest.raises(TimeoutError), agentrel.run("outer"):
        think()
        with agentrel.run("inner"):
            lookup()
            lookup()
        lookup(fail=True)
    cap.collect()
    assert cap.histogram(TOOLS, {cat.AGENT: "outer"}).sum == 1
    assert cap.histogram(INFERENCE, {cat.AGENT: "outer"}).sum == 1
    assert cap.histogram(TOOLS, {cat.AGENT: "inner"}).sum == 2
    assert cap.histogram(INFERENCE, {cat.AGENT: "inner"}).sum == 0


def test_no_record_outside_runs(cap: testing.Capture) -> None:
    lookup()
    think()
    cap.collect()
    assert TOOLS not in cap.metric_names() and INFERENCE not in cap.metric_names()
