"""The real Anthropic SDK, instrumented, against a mock transport: calls, hidden retries, tokens."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import pytest
from anthropic.types import Message

import agentrel
from agentrel import testing
from llm_mocks import Script, anthropic_client, error, message_body, message_sse

MODEL = "claude-mock-1"
MSGS = [{"role": "user", "content": "my secret question"}]
TOOL = {"gen_ai.tool.name": f"chat {MODEL}"}


def _create(client: Any, **kw: Any) -> Any:
    return client.messages.create(model=MODEL, max_tokens=100, messages=MSGS, **kw)


def _assert_recovered_twice(cap: testing.Capture) -> None:
    attempts = cap.histogram("agentrel.tool.attempts", {**TOOL, "agentrel.outcome": "recovered"})
    assert (attempts.count, attempts.sum) == (1, 3)
    assert cap.histogram("agentrel.tool.attempts").count == 1
    assert cap.counter("agentrel.tool.failures") == 2
    assert (
        cap.counter(
            "agentrel.tool.failures",
            {**TOOL, "error.type": "RateLimitError", "agentrel.absorbed": "true"},
        )
        == 2
    )
    depth = cap.histogram("agentrel.run.retry_depth", {"agentrel.outcome": "recovered"})
    assert (depth.count, depth.sum) == (1, 2)
    assert cap.histogram("agentrel.retry.delay", TOOL).count == 2
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "useful"}) == 150
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "wasted"}) == 0
    [span] = cap.spans(f"chat {MODEL}")
    assert span.attributes["gen_ai.provider.name"] == "anthropic"
    assert span.attributes["gen_ai.response.model"] == "claude-mock-1-20260101"
    assert span.attributes["gen_ai.usage.input_tokens"] == 100
    assert span.attributes["gen_ai.usage.output_tokens"] == 50
    usage = cap.histogram("gen_ai.client.token.usage", {"gen_ai.token.type": "output"})
    assert (usage.count, usage.sum) == (1, 50)


def test_429_429_200_is_one_recovered_call_with_three_attempts(cap: testing.Capture) -> None:
    """The SDK's two hidden retries are two absorbed failures of one recovered call."""
    script = Script(error(429), error(429), (200, message_body()))
    client = agentrel.instrument(anthropic_client(script))
    with agentrel.run("support"):
        result = _create(client)
    assert type(result) is Message
    assert script.retry_counts == ["0", "1", "2"]
    _assert_recovered_twice(cap)


def test_async_429_429_200(cap: testing.Capture) -> None:
    """AsyncAnthropic: the same call, the same metrics."""
    script = Script(error(429), error(429), (200, message_body()))
    client = agentrel.instrument(anthropic_client(script, is_async=True))
    assert isinstance(client, anthropic.AsyncAnthropic)

    async def main() -> Any:
        async with agentrel.run("support"):
            return await _create(client)

    assert type(asyncio.run(main())) is Message
    _assert_recovered_twice(cap)


def _assert_exhausted(cap: testing.Capture) -> None:
    attempts = cap.histogram("agentrel.tool.attempts", {**TOOL, "agentrel.outcome": "exhausted"})
    assert (attempts.count, attempts.sum) == (1, 3)
    assert (
        cap.counter(
            "agentrel.tool.failures",
            {"error.type": "InternalServerError", "agentrel.absorbed": "false"},
        )
        == 3
    )
    assert cap.counter("agentrel.tool.failures") == 3
    depth = cap.histogram("agentrel.run.retry_depth", {"agentrel.outcome": "exhausted"})
    assert (depth.count, depth.sum) == (1, 3)


def test_500_three_times_is_exhausted(cap: testing.Capture) -> None:
    """500 x3 with max_retries=2: exhausted, and the SDK's own exception."""
    script = Script(error(500))
    client = agentrel.instrument(anthropic_client(script, max_retries=2))
    with pytest.raises(anthropic.InternalServerError) as info, agentrel.run("support"):
        _create(client)
    assert info.value.status_code == 500
    assert script.calls == 3
    _assert_exhausted(cap)


def test_async_500_three_times(cap: testing.Capture) -> None:
    """AsyncAnthropic: exhausted."""
    script = Script(error(500))
    client = agentrel.instrument(anthropic_client(script, is_async=True, max_retries=2))

    async def main() -> None:
        async with agentrel.run("support"):
            await _create(client)

    with pytest.raises(anthropic.InternalServerError):
        asyncio.run(main())
    _assert_exhausted(cap)


def test_overloaded_529_is_named_by_the_sdk(cap: testing.Capture) -> None:
    """error.type follows the SDK's own status mapping (529 -> OverloadedError)."""
    script = Script(error(529), (200, message_body()))
    client = agentrel.instrument(anthropic_client(script))
    with agentrel.run("support"):
        _create(client)
    assert cap.counter("agentrel.tool.failures", {"error.type": "OverloadedError"}) == 1


def test_cache_tokens_counted_once(cap: testing.Capture) -> None:
    """input = input_tokens + cache reads + cache writes; the cache figures on the span."""
    body = message_body(inp=10, out=5, cache_read=300, cache_creation=40)
    client = agentrel.instrument(anthropic_client(Script((200, body))))
    _create(client)
    [span] = cap.spans(f"chat {MODEL}")
    assert span.attributes["gen_ai.usage.input_tokens"] == 350
    assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 300
    assert span.attributes["gen_ai.usage.cache_creation.input_tokens"] == 40
    assert cap.counter("agentrel.tokens", {"gen_ai.token.type": "input"}) == 350
    assert cap.counter("agentrel.tokens", {"gen_ai.token.type": "output"}) == 5


def test_stream_true_records_usage(cap: testing.Capture) -> None:
    """messages.create(stream=True): the SDK's Stream, usage from message_start/delta."""
    client = agentrel.instrument(anthropic_client(Script((200, message_sse()))))
    with agentrel.run("support"):
        stream = _create(client, stream=True)
        assert type(stream) is anthropic.Stream
        events = [e.type for e in stream]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    [span] = cap.spans(f"chat {MODEL}")
    assert span.attributes["gen_ai.usage.input_tokens"] == 25
    assert span.attributes["gen_ai.usage.output_tokens"] == 9
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "useful"}) == 34


def test_stream_helper(cap: testing.Capture) -> None:
    """messages.stream(...): one call, usage recorded, the helper's API unchanged."""
    script = Script(error(429), (200, message_sse()))
    client = agentrel.instrument(anthropic_client(script))
    with (
        agentrel.run("support"),
        client.messages.stream(model=MODEL, max_tokens=100, messages=MSGS) as stream,
    ):
        assert "".join(stream.text_stream) == "Hi"
        final = stream.get_final_message()
    assert final.usage.output_tokens == 9
    attempts = cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "recovered"})
    assert (attempts.count, attempts.sum) == (1, 2)
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "useful"}) == 34
    assert len(cap.spans(f"chat {MODEL}")) == 1


def test_stream_helper_left_early(cap: testing.Capture) -> None:
    """Leaving the stream block before the end still ends the call once."""
    client = agentrel.instrument(anthropic_client(Script((200, message_sse()))))
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MSGS) as stream:
        next(iter(stream))
    assert len(cap.spans(f"chat {MODEL}")) == 1
    assert cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "success"}).count == 1


def test_async_stream_helper_and_stream_true(cap: testing.Capture) -> None:
    """AsyncAnthropic: messages.stream(...) and create(stream=True)."""
    client = agentrel.instrument(anthropic_client(Script((200, message_sse())), is_async=True))

    async def main() -> None:
        async with client.messages.stream(model=MODEL, max_tokens=100, messages=MSGS) as s:
            await s.get_final_message()
        stream = await _create(client, stream=True)
        assert type(stream) is anthropic.AsyncStream
        async for _ in stream:
            pass

    asyncio.run(main())
    assert len(cap.spans(f"chat {MODEL}")) == 2
    assert cap.counter("agentrel.tokens") == 68


def test_async_stream_read_in_part_is_ended_with_its_run(cap: testing.Capture) -> None:
    """AsyncAnthropic create(stream=True), one event read, left open: the run ends the
    call with the usage seen so far (message_start: 25 input, 1 output)."""
    client = agentrel.instrument(anthropic_client(Script((200, message_sse())), is_async=True))

    async def main() -> Any:
        async with agentrel.run("support"):
            stream = await _create(client, stream=True)
            first = await stream.__anext__()
            assert first.type == "message_start"
            return stream

    stream = asyncio.run(main())
    [span] = cap.spans(f"chat {MODEL}")
    assert span.attributes["agentrel.stream.abandoned"] is True
    assert span.attributes["gen_ai.usage.input_tokens"] == 25
    assert span.attributes["gen_ai.usage.output_tokens"] == 1
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "useful"}) == 26
    assert cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "success"}).count == 1
    del stream


def test_with_raw_response_and_with_options(cap: testing.Capture) -> None:
    """with_raw_response and with_options keep working and stay instrumented."""
    script = Script((200, message_body()))
    client = agentrel.instrument(anthropic_client(script))
    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=10, messages=MSGS)
    assert type(raw.parse()) is Message
    other = client.with_options(timeout=5.0)
    assert isinstance(other, anthropic.Anthropic)
    _create(other)
    assert cap.histogram("agentrel.tool.attempts").count == 2
    assert cap.counter("agentrel.tokens") == 300


def test_no_content_by_default(cap: testing.Capture) -> None:
    """No prompt or completion text on spans unless the user opts in."""
    client = agentrel.instrument(anthropic_client(Script((200, message_body()))))
    _create(client, system="be secret")
    [span] = cap.spans(f"chat {MODEL}")
    assert "secret" not in repr(dict(span.attributes))


def test_uninstrument(cap: testing.Capture) -> None:
    """uninstrument gives the original client back."""
    bare = anthropic_client(Script((200, message_body())))
    client = agentrel.instrument(bare)
    assert agentrel.uninstrument(client) is bare
    _create(bare)
    assert cap.histogram("agentrel.tool.attempts").count == 0
