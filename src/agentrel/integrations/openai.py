"""The OpenAI Python SDK (``pip install 'agentrel-otel[openai]'``): ``agentrel.instrument(client)``.

Recorded: ``chat.completions.create`` / ``.parse`` / ``.stream``, ``responses.create`` /
``.parse`` / ``.stream``, and the same through ``with_raw_response``. Tokens (how they are
counted, see docs/integrations.md):

* Chat Completions: ``prompt_tokens`` → input, ``completion_tokens`` → output;
  ``prompt_tokens_details.cached_tokens`` (a part of the input) → span
  ``gen_ai.usage.cache_read.input_tokens``; ``completion_tokens_details.reasoning_tokens``
  (a part of the output) → span ``agentrel.usage.reasoning.output_tokens``. Streams report
  usage in their last chunk only with ``stream_options={"include_usage": True}``.
* Responses: ``input_tokens`` / ``output_tokens`` with the same details; streams report them
  in the ``response.completed`` event.

The SDK is imported only when a client of it is instrumented (the user has imported it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..instrumentation import CREATE, RAW, STREAM, Adapter, Usage

__all__ = ["adapter_for"]

_RESOURCES = {
    "chat": {
        "completions": {
            "create": CREATE,
            "parse": CREATE,
            "stream": STREAM,
            "with_raw_response": {"create": RAW, "parse": RAW},
        }
    },
    "responses": {
        "create": CREATE,
        "parse": CREATE,
        "stream": STREAM,
        "with_raw_response": {"create": RAW, "parse": RAW},
    },
}
TREE: Mapping[str, Any] = {
    **_RESOURCES,
    "with_raw_response": {
        "chat": {"completions": {"create": RAW, "parse": RAW}},
        "responses": {"create": RAW, "parse": RAW},
    },
}


def _n(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def read_usage(u: Any, usage: Usage) -> None:
    """Chat Completions usage (``prompt_tokens``...) or Responses usage (``input_tokens``...)."""
    if u is None:
        return
    if hasattr(u, "prompt_tokens"):
        usage.input = _n(u.prompt_tokens)
        usage.output = _n(u.completion_tokens)
        in_details = getattr(u, "prompt_tokens_details", None)
        out_details = getattr(u, "completion_tokens_details", None)
    else:
        usage.input = _n(getattr(u, "input_tokens", 0))
        usage.output = _n(getattr(u, "output_tokens", 0))
        in_details = getattr(u, "input_tokens_details", None)
        out_details = getattr(u, "output_tokens_details", None)
    if in_details is not None:
        cached = getattr(in_details, "cached_tokens", None)
        if cached is not None:
            usage.cache_read = _n(cached)
        written = getattr(in_details, "cache_write_tokens", None)
        if written is not None:
            usage.cache_creation = _n(written)
    if out_details is not None:
        reasoning = getattr(out_details, "reasoning_tokens", None)
        if reasoning is not None:
            usage.reasoning = _n(reasoning)


class OpenAIAdapter(Adapter):
    provider = "openai"
    tree = TREE
    read_usage = staticmethod(read_usage)

    def __init__(self, is_async: bool) -> None:
        import openai

        self.is_async = is_async
        self.stream_types = (openai.AsyncStream,) if is_async else (openai.Stream,)
        self._base_error: type[BaseException] = openai.OpenAIError

    def read_chunk(self, item: Any, usage: Usage) -> None:
        kind = getattr(item, "type", None)
        if kind is None:  # a ChatCompletionChunk: the last one carries usage when asked for
            model = getattr(item, "model", None)
            if isinstance(model, str) and model:
                usage.model = model
            read_usage(getattr(item, "usage", None), usage)
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self.read_response(getattr(item, "response", None), usage)

    def transport_error_type(self, exc: BaseException) -> str:
        if isinstance(exc, self._base_error):
            return type(exc).__qualname__
        names = {c.__name__ for c in type(exc).__mro__}
        if "TimeoutException" in names:
            return "APITimeoutError"
        if names & {"RequestError", "SSLError", "EndOfStream"}:
            return "APIConnectionError"
        return type(exc).__qualname__

    def input_messages(self, kwargs: Mapping[str, Any]) -> Any:
        if "messages" in kwargs:
            return kwargs["messages"]
        out = {k: kwargs[k] for k in ("instructions", "input") if k in kwargs}
        return out or None

    def output_messages(self, result: Any) -> Any:
        choices = getattr(result, "choices", None)
        if choices is not None:
            return [
                {
                    "role": "assistant",
                    "content": getattr(getattr(c, "message", None), "content", None),
                    "finish_reason": getattr(c, "finish_reason", None),
                }
                for c in choices
            ]
        text = getattr(result, "output_text", None)
        return [{"role": "assistant", "content": text}] if text is not None else None


def adapter_for(client: Any) -> Adapter | None:
    """The adapter for an ``openai.OpenAI`` / ``AsyncOpenAI`` client (subclasses, such as
    ``AzureOpenAI``, included), else ``None``."""
    import openai

    if isinstance(client, openai.AsyncOpenAI):
        return OpenAIAdapter(is_async=True)
    if isinstance(client, openai.OpenAI):
        return OpenAIAdapter(is_async=False)
    return None
