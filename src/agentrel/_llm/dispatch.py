"""``agentrel.instrument(obj)``: LLM clients as ``chat {model}`` calls, any object's methods as
tools (docs/integrations.md).

An instrumented LLM client is a ``wrapt`` proxy of the SDK client (``isinstance`` holds; every
other attribute is the client's own). The proxy walks the resource chain a call goes through
(``client.chat.completions.create``): each node is a small proxy, and the LLM methods at the
leaves open a call scope around the SDK's own method (``client``); the hidden retries are seen
by the HTTP hook (``http``), streams by ``streams``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from .client import Client, instrument_client, uninstrument_client
from .tools import Tools, tools_proxy

__all__ = ["instrument", "uninstrument"]

ObjT = TypeVar("ObjT")


def instrument(obj: ObjT, *, tools: Mapping[str, Mapping[str, Any]] | None = None) -> ObjT:
    """Return ``obj`` instrumented: a proxy that still passes ``isinstance``.

    * An ``openai.OpenAI`` / ``AsyncOpenAI`` / ``anthropic.Anthropic`` / ``AsyncAnthropic``
      client: ``chat.completions.create``, ``responses.create``, ``messages.create`` (sync,
      async, ``stream=True``, the ``.stream(...)`` helpers, ``with_raw_response``) become
      ``chat {model}`` calls with their tokens, and every HTTP attempt the SDK retried past
      is an absorbed failure. ``copy(...)`` / ``with_options(...)`` (the client's own
      signature) return an instrumented client too.
    * Any object, with ``tools={"search": {"system": "kb", "idempotent": True}}``: the named
      methods become tools with that metadata (the keys of ``@agentrel.tool``).

    Instrumenting an instrumented object returns it unchanged. Bad arguments raise
    ``TypeError`` here, not at the first call.
    """
    if tools is not None:
        if isinstance(obj, Tools):
            return obj
        return tools_proxy(obj, tools)  # type: ignore[return-value]
    if isinstance(obj, (Client, Tools)):
        return obj
    return instrument_client(obj)  # type: ignore[return-value]


def uninstrument(obj: ObjT) -> ObjT:
    """The original object behind an instrumented one (``obj`` itself if it is not one).

    The proxy stops recording, and the HTTP hook is removed once no instrumented client uses
    that HTTP client any more.
    """
    if isinstance(obj, Client):
        return uninstrument_client(obj)  # type: ignore[no-any-return]
    if isinstance(obj, Tools):
        return obj.__wrapped__  # type: ignore[no-any-return]
    return obj
