"""``agentrel.instrument(obj)``: LLM clients as ``chat {model}`` calls, any object's methods as
tools (DESIGN §5).

An instrumented LLM client is a ``wrapt`` proxy of the SDK client (``isinstance`` holds; every
other attribute is the client's own). The proxy walks the resource chain a call goes through
(``client.chat.completions.create``): each node is a small proxy, and the LLM methods at the
leaves open a call scope around the SDK's own method (``_llm_client``); the hidden retries
are seen by the HTTP hook (``_llm_http``), streams by ``_llm_streams``.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any, TypeVar

from ._llm_adapter import adapter_for
from ._llm_client import _Client, _Instrumentation
from ._llm_flight import _end_abandoned
from ._llm_http import _remove_hook
from ._run import before_run_finish
from ._tools_proxy import _Tools, _tools_proxy

__all__ = ["instrument", "uninstrument"]

ObjT = TypeVar("ObjT")

# --- the public functions -------------------------------------------------------------------------
_proxies: weakref.WeakValueDictionary[int, _Client] = weakref.WeakValueDictionary()


#: top-level package of an SDK's client classes -> factory(client) -> Adapter | None.


def instrument(obj: ObjT, *, tools: Mapping[str, Mapping[str, Any]] | None = None) -> ObjT:
    """Return ``obj`` instrumented: a proxy that still passes ``isinstance``.

    * An ``openai.OpenAI`` / ``AsyncOpenAI`` / ``anthropic.Anthropic`` / ``AsyncAnthropic``
      client: ``chat.completions.create``, ``responses.create``, ``messages.create`` (sync,
      async, ``stream=True``, the ``.stream(...)`` helpers, ``with_raw_response``) become
      ``chat {model}`` calls with their tokens, and every HTTP attempt the SDK retried past
      is an absorbed failure. ``with_options(...)`` returns an instrumented client too.
    * Any object, with ``tools={"search": {"system": "kb", "idempotent": True}}``: the named
      methods become tools with that metadata (the keys of ``@agentrel.tool``).

    Instrumenting an instrumented object returns it unchanged. Bad arguments raise
    ``TypeError`` here, not at the first call.
    """
    if tools is not None:
        if isinstance(obj, _Tools):
            return obj
        return _tools_proxy(obj, tools)  # type: ignore[no-any-return]
    if isinstance(obj, (_Client, _Tools)):
        return obj
    existing = _proxies.get(id(obj))
    if existing is not None and existing.__wrapped__ is obj and existing._self_inst.active:
        return existing  # type: ignore[return-value]
    adapter = adapter_for(obj)
    if adapter is None:
        raise TypeError(
            f"agentrel.instrument() knows OpenAI and Anthropic clients; for a "
            f"{type(obj).__name__}, name the methods to record: instrument(obj, tools={{...}})"
        )
    proxy = _Client(obj, _Instrumentation(obj, adapter), adapter.tree)
    _proxies[id(obj)] = proxy
    if _end_abandoned not in before_run_finish:
        before_run_finish.append(_end_abandoned)
    return proxy  # type: ignore[return-value]


def uninstrument(obj: ObjT) -> ObjT:
    """The original object behind an instrumented one (``obj`` itself if it is not one).

    The proxy stops recording, and the HTTP hook is removed once no instrumented client uses
    that HTTP client any more.
    """
    if isinstance(obj, _Client):
        inst = obj._self_inst
        if inst.active:
            inst.active = False
            if inst.hooked:
                _remove_hook(inst.http)
        original = obj.__wrapped__
        if _proxies.get(id(original)) is obj:
            del _proxies[id(original)]
        return original  # type: ignore[no-any-return]
    if isinstance(obj, _Tools):
        return obj.__wrapped__  # type: ignore[no-any-return]
    return obj
