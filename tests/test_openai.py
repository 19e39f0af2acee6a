"""The real OpenAI SDK, instrumented, against a mock transport: what is OpenAI's own or not part
of the shared contract (stream lifecycle, with_raw_response, with_options, the proxy, legacy
httpx, content capture, telemetry failures). The contract it shares with Anthropic (calls,
hidden retries, errors, tokens, streams, content off by default, uninstrument) is
tests/test_llm_contract.py."""

from __future__ import annotations

import gc
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion

import agentrel
from agentrel import testing
from llm_mocks import Script, chat_body, chat_sse, error, openai_client

MSGS = [{"role": "user", "content": "my secret question"}]


def _create(client: Any, **kw: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o", messages=MSGS, **kw)


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


def test_shared_http_client_uninstrumented_use_is_not_recorded(cap: testing.Capture) -> None:
    """The original client sharing the hooked HTTP client records nothing."""
    bare = openai_client(Script((200, chat_body())))
    agentrel.instrument(bare)
    with agentrel.run("support"):
        _create(bare)
    assert cap.histogram("agentrel.tool.attempts").count == 0


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
