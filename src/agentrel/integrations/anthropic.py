"""The Anthropic Python SDK (``pip install 'agentrel-otel[anthropic]'``): ``agentrel.instrument()``.

Recorded: ``messages.create`` (``stream=True`` included), ``messages.stream(...)`` and
``with_raw_response.create``. Tokens (see docs/integrations.md): Anthropic's ``input_tokens``
excludes prompt-cache reads and writes, so agentrel's input is ``input_tokens +
cache_read_input_tokens + cache_creation_input_tokens`` (every input token counted once, as
the GenAI conventions ask), with the two cache figures on the span as
``gen_ai.usage.cache_read.input_tokens`` / ``gen_ai.usage.cache_creation.input_tokens``;
``output_tokens`` is the output, ``output_tokens_details.thinking_tokens`` (a part of it) goes
on the span as ``agentrel.usage.reasoning.output_tokens``. Streams: ``message_start`` carries
the input figures, each ``message_delta`` the cumulative output.

The SDK is imported only when a client of it is instrumented (the user has imported it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..instrumentation import CREATE, RAW, STREAM, Adapter, Usage

__all__ = ["adapter_for"]

TREE: Mapping[str, Any] = {
    "messages": {"create": CREATE, "stream": STREAM, "with_raw_response": {"create": RAW}},
    "with_raw_response": {"messages": {"create": RAW}},
}


def _n(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_usage(u: Any, usage: Usage) -> None:
    """``Usage`` of a Message, or the (cumulative) ``MessageDeltaUsage`` of a stream."""
    if u is None:
        return
    base = _n(getattr(u, "input_tokens", None))
    read = _n(getattr(u, "cache_read_input_tokens", None))
    created = _n(getattr(u, "cache_creation_input_tokens", None))
    if read is not None:
        usage.cache_read = read
    if created is not None:
        usage.cache_creation = created
    if base is not None:
        usage.input = base + (usage.cache_read or 0) + (usage.cache_creation or 0)
    out = _n(getattr(u, "output_tokens", None))
    if out is not None:
        usage.output = out
    details = getattr(u, "output_tokens_details", None)
    thinking = _n(getattr(details, "thinking_tokens", None)) if details is not None else None
    if thinking is not None:
        usage.reasoning = thinking


class AnthropicAdapter(Adapter):
    provider = "anthropic"
    tree = TREE
    read_usage = staticmethod(read_usage)

    def __init__(self, is_async: bool) -> None:
        import anthropic

        self.is_async = is_async
        self.stream_types = (anthropic.AsyncStream,) if is_async else (anthropic.Stream,)
        self._base_error: type[BaseException] = anthropic.AnthropicError

    def read_chunk(self, item: Any, usage: Usage) -> None:
        kind = getattr(item, "type", None)
        if kind == "message_start":
            self.read_response(getattr(item, "message", None), usage)
        elif kind == "message_delta":
            read_usage(getattr(item, "usage", None), usage)

    def transport_error_type(self, exc: BaseException) -> str:
        # The SDK turns a timeout into APITimeoutError and any other send() failure into
        # APIConnectionError (its own errors pass through).
        if isinstance(exc, self._base_error):
            return type(exc).__qualname__
        if any(c.__name__ == "TimeoutException" for c in type(exc).__mro__):
            return "APITimeoutError"
        return "APIConnectionError"

    def input_messages(self, kwargs: Mapping[str, Any]) -> Any:
        if "system" in kwargs:
            return {"system": kwargs["system"], "messages": kwargs.get("messages")}
        return kwargs.get("messages")

    def output_messages(self, result: Any) -> Any:
        blocks = getattr(result, "content", None)
        if blocks is None:
            return None
        return [
            {
                "role": "assistant",
                "content": [getattr(b, "text", None) for b in blocks if hasattr(b, "text")],
                "finish_reason": getattr(result, "stop_reason", None),
            }
        ]


def adapter_for(client: Any) -> Adapter | None:
    """The adapter for an ``anthropic.Anthropic`` / ``AsyncAnthropic`` client (subclasses
    included), else ``None``."""
    import anthropic

    if isinstance(client, anthropic.AsyncAnthropic):
        return AnthropicAdapter(is_async=True)
    if isinstance(client, anthropic.Anthropic):
        return AnthropicAdapter(is_async=False)
    return None
