"""Mock HTTP transports for the real OpenAI and Anthropic SDKs (no network).

The installed SDKs send through ``httpx2`` (OpenAI also accepts a legacy ``httpx`` client);
``Script`` answers each request with the next scripted response and records the
``x-stainless-retry-count`` header the SDK sent, so tests can check what the SDK did.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2

# Retry-After of 1 ms: the SDKs honour it, so retry tests do not sleep half a second.
FAST_RETRY = {"retry-after-ms": "1"}


def chat_body(
    model: str = "gpt-4o-2024-08-06", prompt: int = 100, completion: int = 50, **usage: Any
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "secret answer"},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            **usage,
        },
    }


def chat_sse(model: str = "gpt-4o-2024-08-06", prompt: int = 20, completion: int = 7) -> bytes:
    chunks: list[dict[str, Any]] = []
    for text in ("Hel", "lo"):
        chunks.append(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
            }
        )
    chunks.append(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
    )
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return body.encode()


def responses_body(
    model: str = "gpt-4.1-2025-04-14", inp: int = 30, out: int = 12
) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "model": model,
        "status": "completed",
        "output": [
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "hi", "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": inp,
            "input_tokens_details": {"cached_tokens": 10},
            "output_tokens": out,
            "output_tokens_details": {"reasoning_tokens": 4},
            "total_tokens": inp + out,
        },
    }


def message_body(
    model: str = "claude-mock-1-20260101",
    inp: int = 100,
    out: int = 50,
    cache_read: int | None = None,
    cache_creation: int | None = None,
) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "secret answer"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": inp,
            "output_tokens": out,
            "cache_read_input_tokens": cache_read,
            "cache_creation_input_tokens": cache_creation,
        },
    }


def message_sse(model: str = "claude-mock-1-20260101", inp: int = 25, out: int = 9) -> bytes:
    start = message_body(model, inp=inp, out=1)
    start["content"] = []
    start["stop_reason"] = None
    events = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hi"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": out},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events).encode()


Reply = tuple[int, Any]  # (status, json body | bytes for SSE)


class Script:
    """Answers requests with ``replies`` in order (the last one repeats)."""

    def __init__(self, *replies: Reply, headers: dict[str, str] | None = None) -> None:
        self.replies = list(replies)
        self.headers = FAST_RETRY if headers is None else headers
        self.retry_counts: list[str | None] = []

    def respond(self, request: Any, response_cls: Callable[..., Any]) -> Any:
        self.retry_counts.append(request.headers.get("x-stainless-retry-count"))
        i = min(len(self.retry_counts) - 1, len(self.replies) - 1)
        status, body = self.replies[i]
        if isinstance(body, bytes):
            return response_cls(
                status,
                content=body,
                headers={"content-type": "text/event-stream", **self.headers},
            )
        return response_cls(status, json=body, headers=self.headers)

    @property
    def calls(self) -> int:
        return len(self.retry_counts)

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(lambda request: self.respond(request, httpx2.Response))

    def client(self) -> httpx2.Client:
        return httpx2.Client(transport=self.transport())

    def async_client(self) -> httpx2.AsyncClient:
        async def handler(request: Any) -> Any:
            return self.respond(request, httpx2.Response)

        return httpx2.AsyncClient(transport=httpx2.MockTransport(handler))


def error(status: int) -> Reply:
    return status, {"error": {"message": f"status {status}", "type": "error"}}


def openai_client(
    script: Script, *, is_async: bool = False, sdk_http: bool = False, **kwargs: Any
) -> Any:
    """An OpenAI client answered by ``script``: through an ``httpx2`` client given as
    ``http_client=``, or (``sdk_http``) through the HTTP client the SDK makes itself."""
    import openai

    cls = openai.AsyncOpenAI if is_async else openai.OpenAI
    return _client(cls, "http://mock/v1", script, is_async, sdk_http, kwargs)


def anthropic_client(
    script: Script, *, is_async: bool = False, sdk_http: bool = False, **kwargs: Any
) -> Any:
    """An Anthropic client answered by ``script`` (as ``openai_client``)."""
    import anthropic

    cls = anthropic.AsyncAnthropic if is_async else anthropic.Anthropic
    return _client(cls, "http://mock", script, is_async, sdk_http, kwargs)


def _client(
    cls: Any, url: str, script: Script, is_async: bool, sdk_http: bool, kwargs: dict[str, Any]
) -> Any:
    http = script.async_client() if is_async else script.client()
    if not sdk_http:
        return cls(api_key="sk-test", base_url=url, http_client=http, **kwargs)
    client = cls(api_key="sk-test", base_url=url, **kwargs)
    own = client._client  # the SDK's own class: its transport answers from the script
    own._transport, own._mounts = http._transport, {}
    return client
