"""The contract every instrumented LLM client keeps, whatever the SDK, sync or async.

One suite, parametrized over the APIs (OpenAI Chat Completions, OpenAI Responses, Anthropic
Messages; the streaming tests over the two that are streamed here) x sync/async clients, the
real SDKs against ``httpx2.MockTransport``. The contract (docs/integrations.md, "LLM
clients"):

* a ``create()`` (or a stream) is one call ``chat {model}``, and every HTTP request the SDK
  sends inside it is one attempt: a clean call is ``success`` with 1 attempt; hidden retries
  that recover (408, 409, 429, 5xx, connection errors and timeouts) make it ``recovered``;
  retries the SDK gives up on make it ``exhausted``; an error it does not retry, ``failed``;
* each failed attempt is one ``agentrel.tool.failures`` and one ``agentrel.attempt`` event
  (a call with a failed or more than one attempt has one event per attempt; a clean call
  none) whose ``error.type`` is the SDK exception that status or transport error maps to (the
  SDK's own table, which the APIs' adapters below spell out), ``agentrel.absorbed`` as the
  run (or, outside any run, the call) ended; the wait before each retry is one
  ``agentrel.retry.delay``, measured from the end of the failed attempt to the next request;
* the response's tokens are counted once, by type, as ``useful`` (every call here that has
  tokens succeeds); the GenAI semconv ``gen_ai.client.token.usage`` and
  ``gen_ai.client.operation.duration`` points carry the request and response models (and
  ``error.type`` on failure); the usage details (cache, reasoning) go on the span only;
* the run's retry depth is the number of failed attempts, its attempts the HTTP requests;
* the SDK's return value and the exception it raises reach the caller unchanged (the very
  objects), and the SDK retries exactly as it does uninstrumented (``x-stainless-retry-count``);
* a stream is the SDK's own object; its call ends when it is read to the end (usage read
  from the stream) or its block is left; one nobody reads to the end or closes ends with its
  run, ``agentrel.stream.abandoned``, with the usage it had reported;
* no prompt or completion text is recorded by default; ``uninstrument()`` gives the original
  client back and takes the HTTP hook away.

Time is the fake clock of conftest: HTTP attempt ``i`` takes ``ATTEMPT_SECONDS[i]`` of it (the
transport moves it) and the wait before retry ``i`` ``BACKOFF_SECONDS[i]`` (the SDK's retry
timeout computation moves it, then sleeps at most 1 ms for real), so every duration asserted
is exact and none is wall-clock time. What only one SDK or API does stays in test_openai.py
and test_anthropic.py.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from anthropic.lib.streaming import AsyncMessageStream, MessageStream
from anthropic.types import Message
from openai.lib.streaming.chat import AsyncChatCompletionStream, ChatCompletionStream
from openai.types.chat import ChatCompletion
from openai.types.responses import Response
from opentelemetry.trace import StatusCode

import agentrel
from agentrel import testing
from conftest import FakeClock
from llm_mocks import (
    Script,
    anthropic_client,
    chat_body,
    chat_sse,
    error,
    message_body,
    message_sse,
    openai_client,
    responses_body,
)

RUN = "support"
MSGS = [{"role": "user", "content": "my secret question"}]
ATTEMPT_SECONDS = (0.25, 0.5, 1.0)
BACKOFF_SECONDS = (2.0, 4.0)
SUCCESS, RECOVERED, EXHAUSTED, FAILED = "success", "recovered", "exhausted", "failed"
#: transport errors a scripted reply can raise instead of answering
CONNECT, TIMEOUT = httpx2.ConnectError, httpx2.ReadTimeout


# --- the mock server and the clock ----------------------------------------------------------
class Timed(Script):
    """A ``Script`` whose attempt ``i`` takes ``ATTEMPT_SECONDS[i]`` of the fake clock; a reply
    whose body is an httpx2 exception class raises it (a transport error) instead."""

    def __init__(self, clock: FakeClock, *replies: Any) -> None:
        super().__init__(*replies)
        self.clock = clock

    def respond(self, request: Any, response_cls: Callable[..., Any]) -> Any:
        n = self.calls
        self.clock.advance(ATTEMPT_SECONDS[min(n, len(ATTEMPT_SECONDS) - 1)])
        _, body = self.replies[min(n, len(self.replies) - 1)]
        if isinstance(body, type) and issubclass(body, httpx2.TransportError):
            self.retry_counts.append(request.headers.get("x-stainless-retry-count"))
            raise body(f"mock {body.__name__}", request=request)
        return super().respond(request, response_cls)


def failing(*failures: int | type[Exception], then: Any = None) -> tuple[Any, ...]:
    """The scripted replies: an error response per status (or a transport error), then
    ``then`` (a ``(200, body)`` reply) if given."""
    out = [error(f) if isinstance(f, int) else (0, f) for f in failures]
    return (*out, then) if then is not None else tuple(out)


def _timed_backoff(client: Any, clock: FakeClock) -> None:
    """The SDK still computes its retry wait; the wait moves the fake clock by
    ``BACKOFF_SECONDS[i]`` and really sleeps at most 1 ms."""
    waits = iter(BACKOFF_SECONDS)
    computed = client._calculate_retry_timeout

    def timeout(*args: Any, **kwargs: Any) -> float:
        clock.advance(next(waits))
        return min(float(computed(*args, **kwargs)), 0.001)

    client._calculate_retry_timeout = timeout


# --- sync and async -------------------------------------------------------------------------
async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class Sync:
    is_async = False

    def call(self, fn: Callable[[], Any], in_run: bool = True) -> Any:
        if not in_run:
            return fn()
        with agentrel.run(RUN):
            return fn()

    def spy(self, original: Callable[..., Any], seen: list[Any]) -> Callable[..., Any]:
        """``original`` recording what it returned or raised into ``seen``."""

        def spy(*args: Any, **kwargs: Any) -> Any:
            try:
                result = original(*args, **kwargs)
            except BaseException as exc:
                seen.append(exc)
                raise
            seen.append(result)
            return result

        return spy

    def read_stream(
        self, open_: Callable[[], Any], form: StreamForm, probe: Callable[[], Any]
    ) -> tuple[Any, Any, list[Any], Any, Any]:
        """In a run, open the stream's block and read it to the end: (the stream, ``probe()``
        once opened, the items, ``form.final(stream, items)``, ``probe()`` after the last
        item)."""
        with agentrel.run(RUN), open_() as stream:
            before = probe()
            items = list(form.iterate(stream))
            after = probe()
            return stream, before, items, form.final(stream, items), after

    def leave_early(self, open_: Callable[[], Any]) -> Any:
        """Open the stream's block, read one item, leave the block, close the stream again."""
        with open_() as stream:
            first = next(iter(stream))
        stream.close()
        return first

    def leave_open(
        self, open_: Callable[[], Any], n: int, after_run: Callable[[], None]
    ) -> list[Any]:
        """In a run, open a stream and read ``n`` items; after the run, ``after_run()``, then
        read the rest: every item, in order."""
        with agentrel.run(RUN):
            stream = open_()
            it = iter(stream)
            first = [next(it) for _ in range(n)]
        after_run()
        return first + list(it)


class Async:
    is_async = True

    def call(self, fn: Callable[[], Any], in_run: bool = True) -> Any:
        async def main() -> Any:
            if not in_run:
                return await fn()
            async with agentrel.run(RUN):
                return await fn()

        return asyncio.run(main())

    def spy(self, original: Callable[..., Any], seen: list[Any]) -> Callable[..., Any]:
        async def spy(*args: Any, **kwargs: Any) -> Any:
            try:
                result = await original(*args, **kwargs)
            except BaseException as exc:
                seen.append(exc)
                raise
            seen.append(result)
            return result

        return spy

    def read_stream(
        self, open_: Callable[[], Any], form: StreamForm, probe: Callable[[], Any]
    ) -> tuple[Any, Any, list[Any], Any, Any]:
        async def main() -> tuple[Any, Any, list[Any], Any, Any]:
            async with agentrel.run(RUN):
                async with await _maybe(open_()) as stream:
                    before = probe()
                    items = [item async for item in form.iterate(stream)]
                    after = probe()
                    final = await _maybe(form.final(stream, items))
                    return stream, before, items, final, after

        return asyncio.run(main())

    def leave_early(self, open_: Callable[[], Any]) -> Any:
        async def main() -> Any:
            async with await _maybe(open_()) as stream:
                first = await anext(aiter(stream))
            await stream.close()
            return first

        return asyncio.run(main())

    def leave_open(
        self, open_: Callable[[], Any], n: int, after_run: Callable[[], None]
    ) -> list[Any]:
        async def main() -> list[Any]:
            async with agentrel.run(RUN):
                stream = await open_()
                it = aiter(stream)
                first = [await anext(it) for _ in range(n)]
            after_run()
            return first + [item async for item in it]

        return asyncio.run(main())


MODES = [pytest.param(Sync(), id="sync"), pytest.param(Async(), id="async")]


# --- the APIs -------------------------------------------------------------------------------
@dataclass(frozen=True)
class StreamForm:
    """One way to stream: ``create(stream=True)`` or the SDK's ``.stream(...)`` helper."""

    id: str
    open: Callable[[Any], Any]  # client -> the stream (a coroutine of it, async) or helper
    types: tuple[type, type]  # the object the block gives, sync and async
    #: (stream, items read) -> what the SDK made of them (may be awaitable)
    final: Callable[[Any, list[Any]], Any]
    #: (items, what ``final`` gave) -> (the text, (input, output) tokens the SDK reports)
    reading: Callable[[list[Any], Any], tuple[str, tuple[int, int]]]
    items: int | None = None  # how many items the stream has, when iterating gives chunks
    #: what is read off the stream object (the stream itself, or e.g. its ``text_stream``)
    iterate: Callable[[Any], Any] = lambda stream: stream


@dataclass(frozen=True)
class Api:
    """What the contract needs to know of one provider API."""

    id: str
    provider: str  # gen_ai.provider.name
    make: Callable[..., Any]  # llm_mocks.openai_client / anthropic_client
    client_types: tuple[type, type]  # sync, async
    sdk: Any  # the SDK module (its exception classes)
    path: tuple[str, ...]  # the resource whose create() is the call
    model: str
    kwargs: Mapping[str, Any]  # create()'s other arguments (the prompt holds a secret)
    body: Callable[[], Any]  # a 200 response
    result_type: type
    reported: Callable[[Any], tuple[int, int]]  # a result -> its usage's (input, output)
    response_model: str  # what body() says answered
    tokens: tuple[int, int]  # (input, output) as agentrel counts body()'s usage
    #: the SDK exception each status or transport error maps to (its class's name)
    errors: Mapping[int | type[Exception], str]
    #: span-only usage figures body() reports
    body_details: Mapping[str, Any] = field(default_factory=dict)
    #: a body with usage details, the tokens counted, the span-only figures
    details: tuple[Any, tuple[int, int], Mapping[str, Any]] | None = None
    #: streaming: the SSE body, its tokens, the text streamed, the stream forms
    sse: bytes = b""
    sse_tokens: tuple[int, int] = (0, 0)
    sse_text: str = ""
    #: tokens and response model recorded once the first stream item has been read
    first_item: tuple[tuple[int, int] | None, str | None] = (None, None)
    forms: tuple[StreamForm, ...] = ()

    @property
    def span_name(self) -> str:
        return f"chat {self.model}"

    def client(self, script: Timed, mode: Any, **kwargs: Any) -> Any:
        """The bare SDK client on the mock transport, its retry waits on the fake clock."""
        bare = self.make(script, is_async=mode.is_async, **kwargs)
        _timed_backoff(bare, script.clock)
        return bare

    def resource(self, client: Any) -> Any:
        return functools.reduce(getattr, self.path, client)

    def create(self, client: Any, **kwargs: Any) -> Any:
        return self.resource(client).create(model=self.model, **self.kwargs, **kwargs)

    def error(self, failure: int | type[Exception]) -> str:
        return self.errors[failure]


_COMMON_ERRORS: dict[int | type[Exception], str] = {
    400: "BadRequestError",
    404: "NotFoundError",
    409: "ConflictError",
    429: "RateLimitError",
    500: "InternalServerError",
    CONNECT: "APIConnectionError",
    TIMEOUT: "APITimeoutError",
}
OPENAI_ERRORS = {
    **_COMMON_ERRORS,
    408: "APIStatusError",
    503: "InternalServerError",
    504: "InternalServerError",
    529: "InternalServerError",
}
ANTHROPIC_ERRORS = {
    **_COMMON_ERRORS,
    408: "RequestTimeoutError",
    503: "ServiceUnavailableError",
    504: "GatewayTimeoutError",
    529: "OverloadedError",
}

CACHE_READ = "gen_ai.usage.cache_read.input_tokens"
CACHE_CREATION = "gen_ai.usage.cache_creation.input_tokens"
REASONING = "agentrel.usage.reasoning.output_tokens"
USAGE = {"stream_options": {"include_usage": True}}


def _chat_text(chunks: list[Any], final: Any = None) -> tuple[str, tuple[int, int]]:
    usage = chunks[-1].usage
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, (usage.prompt_tokens, usage.completion_tokens)


def _completion_text(events: list[Any], final: Any) -> tuple[str, tuple[int, int]]:
    return final.choices[0].message.content, (
        final.usage.prompt_tokens,
        final.usage.completion_tokens,
    )


def _events_text(events: list[Any], final: Any = None) -> tuple[str, tuple[int, int]]:
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    [delta] = [e for e in events if e.type == "message_delta"]
    return text, (events[0].message.usage.input_tokens, delta.usage.output_tokens)


def _message_text(texts: list[str], final: Any) -> tuple[str, tuple[int, int]]:
    text = "".join(texts)  # the helper's text_stream
    assert "".join(block.text for block in final.content) == text
    return text, (final.usage.input_tokens, final.usage.output_tokens)


def _anthropic_details() -> Any:
    body = message_body(inp=10, out=5, cache_read=300, cache_creation=40)
    body["usage"]["output_tokens_details"] = {"thinking_tokens": 3}
    return body


OPENAI_CHAT = Api(
    id="openai-chat",
    provider="openai",
    make=openai_client,
    client_types=(openai.OpenAI, openai.AsyncOpenAI),
    sdk=openai,
    path=("chat", "completions"),
    model="gpt-4o",
    kwargs={"messages": MSGS},
    body=chat_body,
    result_type=ChatCompletion,
    reported=lambda r: (r.usage.prompt_tokens, r.usage.completion_tokens),
    response_model="gpt-4o-2024-08-06",
    tokens=(100, 50),
    errors=OPENAI_ERRORS,
    details=(
        chat_body(
            prompt_tokens_details={"cached_tokens": 64, "cache_write_tokens": 8},
            completion_tokens_details={"reasoning_tokens": 20},
        ),
        (100, 50),
        {CACHE_READ: 64, CACHE_CREATION: 8, REASONING: 20},
    ),
    sse=chat_sse(),
    sse_tokens=(20, 7),
    sse_text="Hello",
    first_item=(None, "gpt-4o-2024-08-06"),  # usage comes in the last chunk
    forms=(
        StreamForm(
            "stream=True",
            lambda c: c.chat.completions.create(
                model="gpt-4o", messages=MSGS, stream=True, **USAGE
            ),
            (openai.Stream, openai.AsyncStream),
            lambda stream, items: items,
            _chat_text,
            items=3,
        ),
        StreamForm(
            "helper",
            lambda c: c.chat.completions.stream(model="gpt-4o", messages=MSGS, **USAGE),
            (ChatCompletionStream, AsyncChatCompletionStream),
            lambda stream, items: stream.get_final_completion(),
            _completion_text,
        ),
    ),
)
OPENAI_RESPONSES = Api(
    id="openai-responses",
    provider="openai",
    make=openai_client,
    client_types=(openai.OpenAI, openai.AsyncOpenAI),
    sdk=openai,
    path=("responses",),
    model="gpt-4.1",
    kwargs={"input": "my secret question", "instructions": "be secret"},
    body=responses_body,
    result_type=Response,
    reported=lambda r: (r.usage.input_tokens, r.usage.output_tokens),
    response_model="gpt-4.1-2025-04-14",
    tokens=(30, 12),
    errors=OPENAI_ERRORS,
    body_details={CACHE_READ: 10, REASONING: 4},
    details=(responses_body(inp=300, out=40), (300, 40), {CACHE_READ: 10, REASONING: 4}),
)
ANTHROPIC = Api(
    id="anthropic-messages",
    provider="anthropic",
    make=anthropic_client,
    client_types=(anthropic.Anthropic, anthropic.AsyncAnthropic),
    sdk=anthropic,
    path=("messages",),
    model="claude-mock-1",
    kwargs={"max_tokens": 100, "messages": MSGS, "system": "be secret"},
    body=message_body,
    result_type=Message,
    reported=lambda r: (r.usage.input_tokens, r.usage.output_tokens),
    response_model="claude-mock-1-20260101",
    tokens=(100, 50),
    errors=ANTHROPIC_ERRORS,
    # input = input_tokens + cache reads + cache writes
    details=(_anthropic_details(), (350, 5), {CACHE_READ: 300, CACHE_CREATION: 40, REASONING: 3}),
    sse=message_sse(),
    sse_tokens=(25, 9),
    sse_text="Hi",
    first_item=((25, 1), "claude-mock-1-20260101"),  # message_start: the input, 1 output
    forms=(
        StreamForm(
            "stream=True",
            lambda c: c.messages.create(
                model="claude-mock-1", max_tokens=100, messages=MSGS, stream=True
            ),
            (anthropic.Stream, anthropic.AsyncStream),
            lambda stream, items: items,
            _events_text,
            items=6,
        ),
        StreamForm(
            "helper",
            lambda c: c.messages.stream(model="claude-mock-1", max_tokens=100, messages=MSGS),
            (MessageStream, AsyncMessageStream),
            lambda stream, items: stream.get_final_message(),
            _message_text,
            iterate=lambda stream: stream.text_stream,
        ),
    ),
)
APIS = [pytest.param(a, id=a.id) for a in (OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC)]
STREAMED = [pytest.param(a, id=a.id) for a in (OPENAI_CHAT, ANTHROPIC)]
FORMS = [pytest.param(a, f, id=f"{a.id}-{f.id}") for a in (OPENAI_CHAT, ANTHROPIC) for f in a.forms]


# --- what one call must have recorded -------------------------------------------------------
@dataclass(frozen=True)
class Expected:
    outcome: str  # the call's (and its run's)
    errors: tuple[str, ...] = ()  # error.type of each failed attempt, in order
    tokens: tuple[int, int] | None = None  # (input, output) counted
    response_model: str | None = None
    span_extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.outcome in (FAILED, EXHAUSTED)

    @property
    def attempts(self) -> int:
        return len(self.errors) + (0 if self.failed else 1)


def _points(cap: testing.Capture, name: str) -> list[tuple[dict[str, Any], Any]]:
    """Every point of ``name``: (attributes, value) for a counter, (attributes, (count,
    sum)) for a histogram, in a stable order."""
    out = [
        (attrs, (p.count, p.sum) if hasattr(p, "bucket_counts") else p.value)
        for attrs, p in cap.points(name)
    ]
    return sorted(out, key=lambda item: repr(sorted(item[0].items())))


def _sorted(points: list[tuple[dict[str, Any], Any]]) -> list[tuple[dict[str, Any], Any]]:
    return sorted(points, key=lambda item: repr(sorted(item[0].items())))


def check_call(cap: testing.Capture, api: Api, want: Expected, in_run: bool = True) -> None:
    """Exactly what one call (alone in its run, or in no run) records: metrics, span, run."""
    n = want.attempts
    tool = {"gen_ai.tool.name": api.span_name}
    semconv = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": api.provider,
        "gen_ai.request.model": api.model,
    }
    if want.response_model is not None:
        semconv["gen_ai.response.model"] = want.response_model
    run_labels = {"gen_ai.agent.name": RUN, "agentrel.cohort": "none"} if in_run else {}
    tokens = want.tokens if want.tokens and any(want.tokens) else None
    disposition = "wasted" if want.failed else "useful"
    waits = BACKOFF_SECONDS[: n - 1]
    duration = sum(ATTEMPT_SECONDS[:n]) + sum(waits)

    assert _points(cap, "agentrel.tool.attempts") == [
        ({**tool, "agentrel.outcome": want.outcome}, (1, n))
    ]
    absorbed = "false" if want.failed else "true"
    assert _points(cap, "agentrel.tool.failures") == _sorted(
        [
            ({**tool, "error.type": etype, "agentrel.absorbed": absorbed}, count)
            for etype, count in Counter(want.errors).items()
        ]
    )
    assert _points(cap, "agentrel.retry.delay") == ([(tool, (n - 1, sum(waits)))] if waits else [])
    assert _points(cap, "agentrel.tokens") == _sorted(
        [
            (
                {
                    "gen_ai.token.type": kind,
                    "agentrel.token.disposition": disposition,
                    **run_labels,
                    "gen_ai.request.model": api.model,
                },
                count,
            )
            for kind, count in zip(("input", "output"), tokens or (), strict=False)
        ]
    )
    assert _points(cap, "gen_ai.client.token.usage") == _sorted(
        [
            ({**semconv, "gen_ai.token.type": kind}, (1, count))
            for kind, count in zip(("input", "output"), tokens or (), strict=False)
        ]
    )
    error_label = {"error.type": want.errors[-1]} if want.failed else {}
    assert _points(cap, "gen_ai.client.operation.duration") == [
        ({**semconv, **error_label}, (1, duration))
    ]

    [span] = cap.spans(api.span_name)
    attrs: dict[str, Any] = {
        **semconv,
        "agentrel.outcome": want.outcome,
        "agentrel.call.attempts": n,
        "agentrel.cold_start": True,  # testing.reset(): every test's first call is a first
    }
    if tokens:
        attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"] = tokens
    attrs.update(error_label)
    attrs.update(want.span_extra)
    assert dict(span.attributes) == attrs
    if want.failed:
        assert (span.status.status_code, span.status.description) == (
            StatusCode.ERROR,
            want.errors[-1],
        )
    else:
        assert span.status.status_code is StatusCode.UNSET
    events = []
    if n > 1 or want.failed:  # a call that succeeds at its first attempt has no attempt event
        for i in range(n):
            event: dict[str, Any] = {
                "agentrel.attempt.number": i + 1,
                "agentrel.attempt.duration": ATTEMPT_SECONDS[i],
            }
            if i < len(want.errors):
                event["error.type"] = want.errors[i]
            if i:
                event["agentrel.retry.delay"] = BACKOFF_SECONDS[i - 1]
            events.append(("agentrel.attempt", event))
    assert [(e.name, dict(e.attributes)) for e in span.events] == events

    if not in_run:
        assert span.parent is None
        assert _points(cap, "agentrel.run.attempts") == []
        return
    [run] = cap.spans(f"invoke_agent {RUN}")
    assert span.parent is not None and span.parent.span_id == run.context.span_id
    assert span.end_time <= run.end_time
    total = sum(tokens or ())
    run_attrs = {
        "agentrel.outcome": want.outcome,
        "agentrel.run.retry_depth": len(want.errors),
        "agentrel.run.attempts": n,
        "agentrel.run.tokens": total,
        "agentrel.run.wasted_tokens": total if want.failed else 0,
        **error_label,
    }
    assert {k: run.attributes.get(k) for k in run_attrs} == run_attrs
    assert want.failed or "error.type" not in run.attributes
    labels = {**run_labels, "agentrel.outcome": want.outcome}
    assert _points(cap, "agentrel.run.retry_depth") == [(labels, (1, len(want.errors)))]
    assert _points(cap, "agentrel.run.attempts") == [(labels, (1, n))]


def _instrumented(api: Api, script: Timed, mode: Any, seen: list[Any], **kwargs: Any) -> Any:
    """An instrumented client whose resource's own create() records into ``seen`` what the SDK
    returned or raised (seen through the proxy)."""
    client = agentrel.instrument(api.client(script, mode, **kwargs))
    assert isinstance(client, api.client_types[mode.is_async])
    node = api.resource(client)
    node.__wrapped__.create = mode.spy(node.__wrapped__.create, seen)
    return client


# --- calls ----------------------------------------------------------------------------------
@pytest.mark.parametrize("in_run", [True, False], ids=["in-run", "no-run"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("api", APIS)
def test_clean_call_is_one_successful_attempt(
    cap: testing.Capture, clock: FakeClock, api: Api, mode: Any, in_run: bool
) -> None:
    """200: a call with one attempt, its tokens useful; the SDK's own object comes back."""
    script = Timed(clock, (200, api.body()))
    seen: list[Any] = []
    client = _instrumented(api, script, mode, seen)
    result = mode.call(lambda: api.create(client), in_run)
    assert type(result) is api.result_type
    assert api.reported(result) == api.tokens
    assert seen == [result] and seen[0] is result
    assert script.retry_counts == ["0"]
    check_call(
        cap,
        api,
        Expected(SUCCESS, (), api.tokens, api.response_model, api.body_details),
        in_run,
    )


RECOVERIES = [
    pytest.param((429, 429), id="429-429"),
    pytest.param((429, 500), id="429-500"),
    pytest.param((408, 409), id="408-409"),
    pytest.param((503, 529), id="503-529"),
    pytest.param((CONNECT, TIMEOUT), id="connect-timeout"),
]


@pytest.mark.parametrize("failures", RECOVERIES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("api", APIS)
def test_hidden_retries_that_recover(
    cap: testing.Capture, clock: FakeClock, api: Api, mode: Any, failures: tuple[Any, ...]
) -> None:
    """Two failures the SDK retries past, then 200: one recovered call with three attempts,
    two absorbed failures named by the SDK's mapping, two retry waits, retry depth 2, the
    final response's tokens useful; the SDK retried as it always does."""
    script = Timed(clock, *failing(*failures, then=(200, api.body())))
    seen: list[Any] = []
    client = _instrumented(api, script, mode, seen)
    result = mode.call(lambda: api.create(client))
    assert type(result) is api.result_type and seen == [result] and seen[0] is result
    assert api.reported(result) == api.tokens
    assert script.retry_counts == ["0", "1", "2"]
    errors = tuple(api.error(f) for f in failures)
    check_call(
        cap, api, Expected(RECOVERED, errors, api.tokens, api.response_model, api.body_details)
    )


EXHAUSTIONS = [
    pytest.param((500, 500, 500), id="500x3"),
    pytest.param((429, 503, 504), id="429-503-504"),
    pytest.param((TIMEOUT, CONNECT, TIMEOUT), id="timeout-connect-timeout"),
]


@pytest.mark.parametrize("failures", EXHAUSTIONS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("api", APIS)
def test_retries_exhausted_raise_the_sdk_error(
    cap: testing.Capture, clock: FakeClock, api: Api, mode: Any, failures: tuple[Any, ...]
) -> None:
    """Three retryable failures with max_retries=2: the SDK gives up and raises; the very
    exception object it raised reaches the caller; the call is exhausted, its three
    failures counted once each and not absorbed, no tokens."""
    script = Timed(clock, *failing(*failures))
    seen: list[Any] = []
    client = _instrumented(api, script, mode, seen, max_retries=2)
    errors = tuple(api.error(f) for f in failures)
    with pytest.raises(api.sdk.APIError) as info:
        mode.call(lambda: api.create(client))
    assert type(info.value).__qualname__ == errors[-1]
    assert seen == [info.value] and seen[0] is info.value
    if isinstance(failures[-1], int):
        assert info.value.status_code == failures[-1]
    assert script.retry_counts == ["0", "1", "2"]
    check_call(cap, api, Expected(EXHAUSTED, errors))


NOT_RETRIED = [
    pytest.param((400,), True, id="400"),
    pytest.param((400,), False, id="400-no-run"),
    pytest.param((404,), True, id="404"),
    pytest.param((429, 400), True, id="429-then-400"),
]


@pytest.mark.parametrize(("failures", "in_run"), NOT_RETRIED)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("api", APIS)
def test_error_the_sdk_does_not_retry(
    cap: testing.Capture,
    clock: FakeClock,
    api: Api,
    mode: Any,
    failures: tuple[int, ...],
    in_run: bool,
) -> None:
    """A 400/404 is not retried: the SDK raises at once and the very exception reaches the
    caller; the call is failed with one attempt (exhausted when a retried failure came
    first), its failures not absorbed."""
    script = Timed(clock, *failing(*failures))
    seen: list[Any] = []
    client = _instrumented(api, script, mode, seen)
    errors = tuple(api.error(f) for f in failures)
    with pytest.raises(api.sdk.APIStatusError) as info:
        mode.call(lambda: api.create(client), in_run)
    assert type(info.value).__qualname__ == errors[-1]
    assert info.value.status_code == failures[-1]
    assert seen == [info.value] and seen[0] is info.value
    assert script.retry_counts == [str(i) for i in range(len(failures))]
    outcome = FAILED if len(failures) == 1 else EXHAUSTED
    check_call(cap, api, Expected(outcome, errors), in_run)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("api", APIS)
def test_usage_details_go_on_the_span_and_are_counted_once(
    cap: testing.Capture, clock: FakeClock, api: Api, mode: Any
) -> None:
    """Cache reads/writes and reasoning are parts of the totals: on the span only, never
    counted again (Anthropic's input adds its cache figures back, as documented)."""
    assert api.details is not None
    body, tokens, extra = api.details
    client = agentrel.instrument(api.client(Timed(clock, (200, body)), mode))
    mode.call(lambda: api.create(client))
    check_call(cap, api, Expected(SUCCESS, (), tokens, api.response_model, extra))


# --- streams --------------------------------------------------------------------------------
@pytest.mark.parametrize("failures", [(), (503,)], ids=["clean", "after-503"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("api", "form"), FORMS)
def test_stream_read_to_the_end_records_its_usage(
    cap: testing.Capture,
    clock: FakeClock,
    api: Api,
    form: StreamForm,
    mode: Any,
    failures: tuple[int, ...],
) -> None:
    """The block gives the SDK's own stream; the call is still open while it is read and
    ends with its last item, with the usage the stream reported (a retried 503 before it
    makes the call recovered)."""
    script = Timed(clock, *failing(*failures, then=(200, api.sse)))
    client = agentrel.instrument(api.client(script, mode))
    stream, before, items, final, after = mode.read_stream(
        lambda: form.open(client), form, lambda: len(cap.spans(api.span_name))
    )
    assert type(stream) is form.types[mode.is_async]
    assert (before, after) == (0, 1)  # open while read; ended by its last item
    assert form.reading(items, final) == (api.sse_text, api.sse_tokens)
    if form.items is not None:
        assert len(items) == form.items
    errors = tuple(api.error(f) for f in failures)
    outcome = RECOVERED if failures else SUCCESS
    check_call(cap, api, Expected(outcome, errors, api.sse_tokens, api.response_model))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("api", "form"), FORMS)
def test_stream_block_left_early_ends_the_call_once(
    cap: testing.Capture, clock: FakeClock, api: Api, form: StreamForm, mode: Any
) -> None:
    """Leaving the stream's block after one item ends the call (once: closing it again adds
    nothing), not abandoned, with the usage read so far."""
    client = agentrel.instrument(api.client(Timed(clock, (200, api.sse)), mode))
    mode.leave_early(lambda: form.open(client))
    tokens, model = api.first_item
    check_call(cap, api, Expected(SUCCESS, (), tokens, model), in_run=False)


@pytest.mark.parametrize("read", [0, 1], ids=["unread", "one-item-read"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("api", STREAMED)
def test_stream_left_open_ends_with_its_run(
    cap: testing.Capture, clock: FakeClock, api: Api, mode: Any, read: int
) -> None:
    """create(stream=True) read in part (or not at all) and left open: its call ends when its
    run ends, marked abandoned, with the usage reported so far, so the run holds it; reading
    the stream afterwards gets every item and records nothing more."""
    [form] = [f for f in api.forms if f.id == "stream=True"]
    client = agentrel.instrument(api.client(Timed(clock, (200, api.sse)), mode))
    tokens, model = api.first_item if read else (None, None)
    want = Expected(SUCCESS, (), tokens, model, {"agentrel.stream.abandoned": True})
    items = mode.leave_open(lambda: form.open(client), read, lambda: check_call(cap, api, want))
    assert len(items) == form.items  # the stream itself is untouched
    assert form.reading(items, items) == (api.sse_text, api.sse_tokens)
    check_call(cap, api, want)  # what was read after its run is not recorded


# --- content and uninstrument ---------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("api", APIS)
def test_no_content_by_default(cap: testing.Capture, clock: FakeClock, api: Api, mode: Any) -> None:
    """The prompt (and Anthropic's system / the Responses API's instructions) and the
    completion hold "secret"; no span or event says it unless the user opts in."""
    client = agentrel.instrument(api.client(Timed(clock, (200, api.body())), mode))
    mode.call(lambda: api.create(client))
    spans = cap.spans()
    assert sorted(s.name for s in spans) == sorted([api.span_name, f"invoke_agent {RUN}"])
    text = repr([(dict(s.attributes), [dict(e.attributes) for e in s.events]) for s in spans])
    assert "secret" not in text
    [span] = cap.spans(api.span_name)
    assert "gen_ai.input.messages" not in span.attributes
    assert "gen_ai.output.messages" not in span.attributes


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("api", APIS)
def test_uninstrument_gives_the_original_back(
    cap: testing.Capture, clock: FakeClock, api: Api, mode: Any
) -> None:
    """uninstrument() returns the original client and takes the HTTP hook away: neither the
    old proxy nor the client records anything after it."""
    script = Timed(clock, (200, api.body()))
    bare = api.client(script, mode)
    http = bare._client
    client = agentrel.instrument(bare)
    assert "send" in vars(http)
    assert agentrel.uninstrument(client) is bare
    assert "send" not in vars(http)
    mode.call(lambda: api.create(client), in_run=False)  # the old proxy passes straight through
    mode.call(lambda: api.create(bare), in_run=False)
    assert script.calls == 2
    assert cap.spans() == []
    assert _points(cap, "agentrel.tool.attempts") == []
    assert agentrel.uninstrument(bare) is bare


# --- a new client from an instrumented one --------------------------------------------------
#: constructor parameters the SDKs' own copy() leaves out on purpose (openai-python's
#: ``test_copy_signature`` excludes the first three; Anthropic adds its token cache)
NOT_COPIED = {"transport", "proxies", "_strict_response_validation", "_token_cache"}


@pytest.mark.parametrize("method", ["copy", "with_options"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("api", APIS)
def test_copy_has_the_sdk_signature_and_stays_instrumented(
    cap: testing.Capture, clock: FakeClock, api: Api, mode: Any, method: str
) -> None:
    """``copy()`` / ``with_options()`` on the proxy are the client's own: the same signature,
    name and docstring (the SDKs' own signature test, run on the instrumented client: every
    constructor parameter is one of copy()'s), and the client they make is instrumented: a
    call through it with a hidden retry records exactly that."""
    script = Timed(clock, *failing(429, then=(200, api.body())))
    bare = api.client(script, mode)
    client = agentrel.instrument(bare)
    mine, sdk = getattr(client, method), getattr(bare, method)
    assert inspect.signature(mine) == inspect.signature(sdk)
    assert (mine.__name__, mine.__qualname__, mine.__doc__) == (
        sdk.__name__,
        sdk.__qualname__,
        sdk.__doc__,
    )
    # as the SDK's own test reads it: through the client the test holds (here the proxy)
    init = inspect.signature(client.__init__)
    assert init == inspect.signature(bare.__init__)
    copy = inspect.signature(mine)
    missing = [n for n in init.parameters if n not in copy.parameters and n not in NOT_COPIED]
    assert missing == []

    copied = mine(max_retries=1)
    assert type(copied) is not type(bare) and isinstance(copied, type(bare))  # a proxy
    assert copied.max_retries == 1 and agentrel.instrument(copied) is copied
    _timed_backoff(copied, clock)
    result = mode.call(lambda: api.create(copied))
    assert type(result) is api.result_type and script.retry_counts == ["0", "1"]
    check_call(
        cap,
        api,
        Expected(RECOVERED, (api.error(429),), api.tokens, api.response_model, api.body_details),
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("api", APIS)
def test_the_sdks_own_http_client_is_hooked_too(
    cap: testing.Capture, clock: FakeClock, api: Api, mode: Any
) -> None:
    """Given no ``http_client=``, the SDK sends through a client of its own making (of
    ``httpx2``, in the SDK majors installed here; ``httpx`` in older ones): its ``send`` is
    hooked the same way, a hidden retry recorded exactly, and uninstrument() unhooks it."""
    script = Timed(clock, *failing(500, then=(200, api.body())))
    bare = api.client(script, mode, sdk_http=True)
    http = bare._client
    assert isinstance(http, httpx2.AsyncClient if mode.is_async else httpx2.Client)
    assert type(http) is not (httpx2.AsyncClient if mode.is_async else httpx2.Client)
    client = agentrel.instrument(bare)
    assert "send" in vars(http)
    result = mode.call(lambda: api.create(client))
    assert type(result) is api.result_type and script.retry_counts == ["0", "1"]
    check_call(
        cap,
        api,
        Expected(RECOVERED, (api.error(500),), api.tokens, api.response_model, api.body_details),
    )
    agentrel.uninstrument(client)
    assert "send" not in vars(http)
