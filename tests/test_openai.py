"""The real OpenAI SDK, instrumented, against a mock transport: calls, hidden retries, tokens."""

from __future__ import annotations

import asyncio
import gc
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

import agentrel
from agentrel import testing
from llm_mocks import Script, chat_body, chat_sse, error, openai_client, responses_body

MSGS = [{"role": "user", "content": "my secret question"}]
TOOL = {"gen_ai.tool.name": "chat gpt-4o"}


def _create(client: Any, **kw: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o", messages=MSGS, **kw)


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
    run_attempts = cap.histogram("agentrel.run.attempts")
    assert (run_attempts.count, run_attempts.sum) == (1, 3)
    assert cap.histogram("agentrel.retry.delay", TOOL).count == 2
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "useful"}) == 150
    assert cap.counter("agentrel.tokens", {"gen_ai.token.type": "input"}) == 100
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "wasted"}) == 0
    [span] = cap.spans("chat gpt-4o")
    assert span.attributes["gen_ai.provider.name"] == "openai"
    assert span.attributes["gen_ai.request.model"] == "gpt-4o"
    assert span.attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert span.attributes["gen_ai.usage.input_tokens"] == 100
    assert span.attributes["gen_ai.usage.output_tokens"] == 50
    assert span.attributes["agentrel.outcome"] == "recovered"
    assert [e.attributes.get("error.type") for e in span.events] == [
        "RateLimitError",
        "RateLimitError",
        None,
    ]
    usage = cap.histogram(
        "gen_ai.client.token.usage",
        {"gen_ai.token.type": "input", "gen_ai.response.model": "gpt-4o-2024-08-06"},
    )
    assert (usage.count, usage.sum) == (1, 100)
    duration = cap.histogram("gen_ai.client.operation.duration", {"gen_ai.provider.name": "openai"})
    assert duration.count == 1


def test_429_429_200_is_one_recovered_call_with_three_attempts(cap: testing.Capture) -> None:
    """The SDK's two hidden retries are two absorbed failures of one recovered call."""
    script = Script(error(429), error(429), (200, chat_body()))
    client = agentrel.instrument(openai_client(script))
    with agentrel.run("support"):
        result = _create(client)
    assert type(result) is ChatCompletion
    assert result.usage is not None and result.usage.prompt_tokens == 100
    assert script.retry_counts == ["0", "1", "2"]  # the SDK retried as it always does
    _assert_recovered_twice(cap)


def test_async_429_429_200(cap: testing.Capture) -> None:
    """AsyncOpenAI: the same call, the same metrics."""
    script = Script(error(429), error(429), (200, chat_body()))
    client = agentrel.instrument(openai_client(script, is_async=True))

    async def main() -> Any:
        async with agentrel.run("support"):
            return await _create(client)

    result = asyncio.run(main())
    assert type(result) is ChatCompletion
    assert script.retry_counts == ["0", "1", "2"]
    _assert_recovered_twice(cap)


def _assert_exhausted(cap: testing.Capture) -> None:
    attempts = cap.histogram("agentrel.tool.attempts", {**TOOL, "agentrel.outcome": "exhausted"})
    assert (attempts.count, attempts.sum) == (1, 3)
    assert cap.counter("agentrel.tool.failures") == 3
    assert (
        cap.counter(
            "agentrel.tool.failures",
            {"error.type": "InternalServerError", "agentrel.absorbed": "false"},
        )
        == 3
    )
    depth = cap.histogram("agentrel.run.retry_depth", {"agentrel.outcome": "exhausted"})
    assert (depth.count, depth.sum) == (1, 3)
    assert cap.histogram("agentrel.retry.delay").count == 2
    assert cap.counter("agentrel.tokens") == 0
    [span] = cap.spans("chat gpt-4o")
    assert span.attributes["error.type"] == "InternalServerError"
    assert span.attributes["agentrel.outcome"] == "exhausted"
    err = cap.histogram("gen_ai.client.operation.duration", {"error.type": "InternalServerError"})
    assert err.count == 1


def test_500_three_times_is_exhausted_and_the_sdk_error_propagates(cap: testing.Capture) -> None:
    """500 x3 with max_retries=2: exhausted, 3 failures counted once each, the SDK's error."""
    script = Script(error(500))
    client = agentrel.instrument(openai_client(script, max_retries=2))
    with pytest.raises(openai.InternalServerError) as info, agentrel.run("support"):
        _create(client)
    assert info.value.status_code == 500
    assert script.calls == 3
    _assert_exhausted(cap)


def test_async_500_three_times(cap: testing.Capture) -> None:
    """AsyncOpenAI: exhausted, the SDK's error unchanged."""
    script = Script(error(500))
    client = agentrel.instrument(openai_client(script, is_async=True, max_retries=2))

    async def main() -> None:
        async with agentrel.run("support"):
            await _create(client)

    with pytest.raises(openai.InternalServerError):
        asyncio.run(main())
    _assert_exhausted(cap)


def test_sdk_exception_is_the_very_object_raised(cap: testing.Capture) -> None:
    """The exception that reaches the caller is the one the SDK raised (a 400: not retried)."""
    script = Script(error(400))
    client = agentrel.instrument(openai_client(script))
    seen: list[BaseException] = []
    original = client.__wrapped__.chat.completions.create

    def spy(*a: Any, **kw: Any) -> Any:
        try:
            return original(*a, **kw)
        except BaseException as exc:
            seen.append(exc)
            raise

    node = client.chat.completions
    node.__wrapped__.create = spy  # the resource's own method, seen through the proxy
    with pytest.raises(openai.BadRequestError) as info:
        node.create(model="gpt-4o", messages=MSGS)
    assert seen == [info.value]
    assert script.calls == 1
    attempts = cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "failed"})
    assert (attempts.count, attempts.sum) == (1, 1)
    assert cap.counter("agentrel.tool.failures", {"error.type": "BadRequestError"}) == 1


def test_typed_result_is_the_sdk_object(cap: testing.Capture) -> None:
    """The value returned is the SDK's own object, untouched."""
    script = Script((200, chat_body()))
    client = agentrel.instrument(openai_client(script))
    results: list[Any] = []
    original = client.__wrapped__.chat.completions.create
    client.chat.completions.__wrapped__.create = lambda *a, **kw: (
        results.append(original(*a, **kw)) or results[-1]
    )
    result = _create(client)
    assert result is results[0]
    assert cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "success"}).count == 1


def test_stream_records_its_usage(cap: testing.Capture) -> None:
    """stream=True with include_usage: the stream is the SDK's, its usage is recorded."""
    script = Script((200, chat_sse()))
    client = agentrel.instrument(openai_client(script))
    with agentrel.run("support"):
        stream = _create(client, stream=True, stream_options={"include_usage": True})
        assert type(stream) is openai.Stream
        assert cap.spans("chat gpt-4o") == []  # still running
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello"
    [span] = cap.spans("chat gpt-4o")
    assert span.attributes["gen_ai.usage.input_tokens"] == 20
    assert span.attributes["gen_ai.usage.output_tokens"] == 7
    assert span.attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "useful"}) == 27
    assert cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "success"}).count == 1


def test_stream_closed_early_ends_the_call(cap: testing.Capture) -> None:
    """A stream left early through its context manager still ends its call (once)."""
    script = Script((200, chat_sse()))
    client = agentrel.instrument(openai_client(script))
    with _create(client, stream=True) as stream:
        next(iter(stream))
    stream.close()
    assert len(cap.spans("chat gpt-4o")) == 1
    assert cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "success"}).count == 1


def test_stream_never_read_is_ended_with_its_run(cap: testing.Capture) -> None:
    """A stream nobody reads or closes: its call ends with its run (marked abandoned), so
    the run's span and metrics still hold it; reading it afterwards records nothing more."""
    client = agentrel.instrument(openai_client(Script((200, chat_sse()))))
    with agentrel.run("support"):
        stream = _create(client, stream=True, stream_options={"include_usage": True})
    [span] = cap.spans("chat gpt-4o")
    [run] = cap.spans("invoke_agent support")
    assert span.parent is not None and span.parent.span_id == run.context.span_id
    assert span.attributes["agentrel.stream.abandoned"] is True
    assert span.attributes["agentrel.outcome"] == "success"
    assert span.end_time is not None and run.end_time is not None
    assert span.end_time <= run.end_time
    attempts = cap.histogram("agentrel.tool.attempts", {**TOOL, "agentrel.outcome": "success"})
    assert (attempts.count, attempts.sum) == (1, 1)
    run_attempts = cap.histogram("agentrel.run.attempts", {"agentrel.outcome": "success"})
    assert (run_attempts.count, run_attempts.sum) == (1, 1)
    assert len(list(stream)) == 3  # the stream itself is untouched
    assert len(cap.spans("chat gpt-4o")) == 1
    assert cap.counter("agentrel.tokens") == 0  # its usage came after its run had ended


def test_stream_dropped_outside_a_run_ends_at_the_next_call(cap: testing.Capture) -> None:
    """A stream read in part and dropped outside any run: the garbage collector only queues
    its call (ending it there could deadlock); the next instrumented call ends it."""
    script = Script((200, chat_sse()), (200, chat_body()))
    client = agentrel.instrument(openai_client(script))
    stream = _create(client, stream=True, stream_options={"include_usage": True})
    next(iter(stream))
    del stream
    gc.collect()
    assert cap.spans("chat gpt-4o") == []
    _create(client)
    spans = cap.spans("chat gpt-4o")
    assert [s.attributes.get("agentrel.stream.abandoned") for s in spans] == [True, None]
    assert cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "success"}).count == 2
    assert cap.counter("agentrel.tokens") == 150  # the dropped stream never sent its usage


def test_stream_read_to_the_end_is_not_abandoned(cap: testing.Capture) -> None:
    """A stream read to its end, then dropped, ends once: the collector queues nothing."""
    client = agentrel.instrument(openai_client(Script((200, chat_sse()))))
    with agentrel.run("support"):
        stream = _create(client, stream=True, stream_options={"include_usage": True})
        list(stream)
        del stream
        gc.collect()
    [span] = cap.spans("chat gpt-4o")
    assert "agentrel.stream.abandoned" not in span.attributes
    assert cap.counter("agentrel.tokens") == 27


def test_reset_drops_streams_left_open() -> None:
    """testing.reset(): a stream left open before it is never recorded afterwards."""
    client = agentrel.instrument(openai_client(Script((200, chat_sse()), (200, chat_body()))))
    with testing.capture():
        stream = _create(client, stream=True)
    testing.reset()
    with testing.capture() as cap:
        del stream
        gc.collect()
        _create(client)
        assert cap.histogram("agentrel.tool.attempts").count == 1
        assert [s.attributes.get("agentrel.stream.abandoned") for s in cap.spans()] == [None]


def test_threads_each_end_their_own_abandoned_stream(cap: testing.Capture) -> None:
    """16 threads, one run each over one shared client; odd ones leave their stream unread.
    Each run ends its own stream's call, and only that one."""
    client = agentrel.instrument(openai_client(Script((200, chat_sse()))))
    barrier = threading.Barrier(16)

    def one(i: int) -> Any:
        with agentrel.run("support"):
            stream = _create(client, stream=True, stream_options={"include_usage": True})
            barrier.wait(timeout=30)  # every stream is open while the runs end
            if i % 2 == 0:
                list(stream)
        return stream

    with ThreadPoolExecutor(16) as pool:
        streams = list(pool.map(one, range(16)))
    assert len(streams) == 16
    chats = cap.spans("chat gpt-4o")
    runs = {r.context.span_id: r for r in cap.spans("invoke_agent support")}
    assert len(chats) == 16 and len(runs) == 16
    assert len({c.parent.span_id for c in chats}) == 16
    for chat in chats:
        run = runs[chat.parent.span_id]
        assert chat.end_time <= run.end_time
    assert sum(bool(c.attributes.get("agentrel.stream.abandoned")) for c in chats) == 8
    assert cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "success"}).count == 16
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "useful"}) == 8 * 27


def test_async_stream_records_its_usage(cap: testing.Capture) -> None:
    """AsyncOpenAI stream=True: usage from the last chunk."""
    script = Script(error(503), (200, chat_sse()))
    client = agentrel.instrument(openai_client(script, is_async=True))

    async def main() -> list[Any]:
        async with agentrel.run("support"):
            stream = await _create(client, stream=True, stream_options={"include_usage": True})
            assert type(stream) is openai.AsyncStream
            return [c async for c in stream]

    chunks = asyncio.run(main())
    assert len(chunks) == 3
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "useful"}) == 27
    attempts = cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "recovered"})
    assert (attempts.count, attempts.sum) == (1, 2)
    assert cap.counter("agentrel.tool.failures", {"error.type": "InternalServerError"}) == 1


def test_stream_helper_records_usage(cap: testing.Capture) -> None:
    """chat.completions.stream(...): one call around the helper, usage from the raw chunks."""
    script = Script(error(429), (200, chat_sse()))
    client = agentrel.instrument(openai_client(script))
    with (
        agentrel.run("support"),
        client.chat.completions.stream(
            model="gpt-4o", messages=MSGS, stream_options={"include_usage": True}
        ) as stream,
    ):
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Hello"
    attempts = cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "recovered"})
    assert (attempts.count, attempts.sum) == (1, 2)
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "useful"}) == 27
    assert len(cap.spans("chat gpt-4o")) == 1


def test_async_stream_helper(cap: testing.Capture) -> None:
    """AsyncOpenAI chat.completions.stream(...)."""
    script = Script((200, chat_sse()))
    client = agentrel.instrument(openai_client(script, is_async=True))

    async def main() -> None:
        async with client.chat.completions.stream(
            model="gpt-4o", messages=MSGS, stream_options={"include_usage": True}
        ) as stream:
            async for _ in stream:
                pass

    asyncio.run(main())
    assert cap.counter("agentrel.tokens") == 27
    assert len(cap.spans("chat gpt-4o")) == 1


def test_responses_api_tokens_and_details(cap: testing.Capture) -> None:
    """responses.create: input/output tokens; cached and reasoning figures on the span only."""
    script = Script((200, responses_body()))
    client = agentrel.instrument(openai_client(script))
    result = client.responses.create(model="gpt-4.1", input="hi")
    assert type(result) is Response
    [span] = cap.spans("chat gpt-4.1")
    assert span.attributes["gen_ai.usage.input_tokens"] == 30
    assert span.attributes["gen_ai.usage.output_tokens"] == 12
    assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 10
    assert span.attributes["agentrel.usage.reasoning.output_tokens"] == 4
    assert cap.counter("agentrel.tokens") == 42  # cached and reasoning are not added again


def test_chat_cached_and_reasoning_tokens(cap: testing.Capture) -> None:
    """Chat usage details go on the span; the token counters hold prompt + completion."""
    body = chat_body(
        prompt_tokens_details={"cached_tokens": 64},
        completion_tokens_details={"reasoning_tokens": 20},
    )
    client = agentrel.instrument(openai_client(Script((200, body))))
    _create(client)
    [span] = cap.spans("chat gpt-4o")
    assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 64
    assert span.attributes["agentrel.usage.reasoning.output_tokens"] == 20
    assert cap.counter("agentrel.tokens") == 150


def test_with_raw_response(cap: testing.Capture) -> None:
    """with_raw_response.create still returns the raw wrapper; its parse() is unchanged."""
    script = Script(error(429), (200, chat_body()))
    client = agentrel.instrument(openai_client(script))
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MSGS)
    assert raw.http_response.status_code == 200
    parsed = raw.parse()
    assert type(parsed) is ChatCompletion and raw.parse() is parsed
    attempts = cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "recovered"})
    assert (attempts.count, attempts.sum) == (1, 2)
    assert cap.counter("agentrel.tokens") == 150
    client.with_raw_response.chat.completions.create(model="gpt-4o", messages=MSGS)
    assert cap.histogram("agentrel.tool.attempts").count == 2


def test_with_options_stays_instrumented(cap: testing.Capture) -> None:
    """with_options(...) returns an instrumented client with the new options."""
    script = Script(error(429))
    client = agentrel.instrument(openai_client(script))
    quick = client.with_options(max_retries=0)
    assert isinstance(quick, openai.OpenAI) and quick.max_retries == 0
    assert agentrel.instrument(quick) is quick
    with pytest.raises(openai.RateLimitError):
        _create(quick)
    assert script.calls == 1
    attempts = cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "failed"})
    assert (attempts.count, attempts.sum) == (1, 1)


def test_proxy_is_the_client() -> None:
    """isinstance holds, attributes pass through, instrumenting twice is a no-op."""
    bare = openai_client(Script((200, chat_body())))
    client = agentrel.instrument(bare)
    assert isinstance(client, openai.OpenAI)
    assert client.api_key == "sk-test" and client.max_retries == 2
    assert str(client.base_url) == "http://mock/v1/"
    assert agentrel.instrument(client) is client
    assert agentrel.instrument(bare) is client
    assert client.models is bare.models  # what agentrel does not record is the client's own


def test_uninstrument_gives_the_original_back(cap: testing.Capture) -> None:
    """uninstrument returns the original client and takes the HTTP hook away."""
    script = Script((200, chat_body()))
    bare = openai_client(script)
    http = bare._client
    client = agentrel.instrument(bare)
    assert "send" in vars(http)
    assert agentrel.uninstrument(client) is bare
    assert "send" not in vars(http)
    _create(client)  # the old proxy passes straight through now
    assert cap.histogram("agentrel.tool.attempts").count == 0
    assert agentrel.uninstrument(bare) is bare


def test_user_http_client_legacy_httpx(cap: testing.Capture) -> None:
    """A user-supplied (legacy httpx) client: its attempts are seen all the same."""
    script = Script(error(429), (200, chat_body()))
    http = httpx.Client(transport=httpx.MockTransport(lambda r: script.respond(r, httpx.Response)))
    client = agentrel.instrument(
        openai.OpenAI(api_key="sk-test", base_url="http://mock/v1", http_client=http)
    )
    with agentrel.run("support"):
        _create(client)
    attempts = cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "recovered"})
    assert (attempts.count, attempts.sum) == (1, 2)


def test_connection_error_is_an_absorbed_failure(cap: testing.Capture) -> None:
    """A transport error the SDK retried past counts as APIConnectionError."""
    script = Script((200, chat_body()))
    failures = [httpx2.ConnectError("refused")]

    def handler(request: httpx2.Request) -> httpx2.Response:
        if failures:
            raise failures.pop()
        return script.respond(request, httpx2.Response)  # type: ignore[no-any-return]

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    client = agentrel.instrument(
        openai.OpenAI(api_key="k", base_url="http://mock/v1", http_client=http)
    )
    client._calculate_retry_timeout = lambda *a, **k: 0.001  # type: ignore[method-assign]
    with agentrel.run("support"):
        _create(client)
    assert (
        cap.counter(
            "agentrel.tool.failures",
            {"error.type": "APIConnectionError", "agentrel.absorbed": "true"},
        )
        == 1
    )


def test_shared_http_client_uninstrumented_use_is_not_recorded(cap: testing.Capture) -> None:
    """The original client sharing the hooked HTTP client records nothing."""
    bare = openai_client(Script((200, chat_body())))
    agentrel.instrument(bare)
    with agentrel.run("support"):
        _create(bare)
    assert cap.histogram("agentrel.tool.attempts").count == 0


def test_no_content_by_default(cap: testing.Capture) -> None:
    """Prompt and completion text are not recorded unless the user opts in."""
    client = agentrel.instrument(openai_client(Script((200, chat_body()))))
    _create(client)
    [span] = cap.spans("chat gpt-4o")
    text = repr(dict(span.attributes)) + repr([e.attributes for e in span.events])
    assert "secret" not in text
    assert "gen_ai.input.messages" not in span.attributes


def test_content_opt_in_is_redacted(cap: testing.Capture) -> None:
    """capture_content=True: prompt and completion on the span, through redact()."""
    agentrel.configure(
        tracer_provider=cap.tracer_provider,
        meter_provider=cap.meter_provider,
        capture_content=True,
        redact=lambda s: s.replace("secret", "[redacted]"),
    )
    client = agentrel.instrument(openai_client(Script((200, chat_body()))))
    _create(client)
    [span] = cap.spans("chat gpt-4o")
    assert span.attributes["gen_ai.input.messages"] == (
        '[{"role": "user", "content": "my [redacted] question"}]'
    )
    assert "[redacted] answer" in span.attributes["gen_ai.output.messages"]
    assert "secret" not in repr(dict(span.attributes))


def test_unconfigured_calls_straight_through() -> None:
    """No provider, no run: the instrumented client is the client, and nothing fails."""
    client = agentrel.instrument(openai_client(Script(error(429), (200, chat_body()))))
    assert type(_create(client)) is ChatCompletion
    assert agentrel.telemetry_errors() == {}


def test_telemetry_failure_never_breaks_the_call(
    cap: testing.Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure inside agentrel is counted and logged; the SDK result still comes back."""
    from agentrel.integrations.openai import OpenAIAdapter

    def broken(self: Any, result: Any, usage: Any) -> None:
        raise RuntimeError("bug in agentrel")

    monkeypatch.setattr(OpenAIAdapter, "read_response", broken)
    client = agentrel.instrument(openai_client(Script((200, chat_body()))))
    assert type(_create(client)) is ChatCompletion
    assert agentrel.telemetry_errors() == {"llm.usage": 1}
    assert cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "success"}).count == 1


def test_error_inside_a_stream_fails_the_call(cap: testing.Capture) -> None:
    """An error event mid-stream: the SDK's APIError propagates, the call is failed."""
    body = b'data: {"error": {"message": "overloaded"}}\n\n'
    client = agentrel.instrument(openai_client(Script((200, body))))
    stream = _create(client, stream=True)
    with pytest.raises(openai.APIError, match="overloaded"):
        list(stream)
    attempts = cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "failed"})
    assert (attempts.count, attempts.sum) == (1, 1)
    assert cap.counter("agentrel.tool.failures", {"error.type": "APIError"}) == 1
