"""The proxies of an instrumented LLM client: the client, the resource nodes on the way to
an LLM method (``client.chat.completions``), and the method wrappers at the leaves, which open
a call around the SDK's own method."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import wrapt

from ._current import quiet
from ._guard import telemetry_error
from ._llm_adapter import RAW, STREAM, Adapter, Tree
from ._llm_flight import _attach, _begin, _detach, _Flight
from ._llm_http import _install_hook
from ._llm_streams import _StreamManager, _watch_stream


# --- LLM method wrappers --------------------------------------------------------------------------
def _settle(flight: _Flight, result: Any, kind: str, kwargs: Mapping[str, Any]) -> None:
    """A create() returned: read its usage and end the call, or watch the stream it returned."""
    adapter = flight.adapter
    if adapter.stream_types and isinstance(result, adapter.stream_types):
        _watch_stream(flight, result)
        return
    if kind == RAW:
        if kwargs.get("stream"):
            flight.finish(None)  # the raw stream is parsed later, out of sight: no tokens
            return
        try:
            result = result.parse()  # cached by the SDK: the user's parse() gets this object
        except Exception as exc:
            telemetry_error("llm.usage", exc)
            flight.finish(None)
            return
    flight.read(result)
    flight.finish(None)


def _wrap_method(fn: Callable[..., Any], inst: _Instrumentation, kind: str) -> Any:
    if kind == STREAM:

        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Any:
            manager = fn(*args, **kwargs)
            if not inst.active:
                return manager
            return _StreamManager(manager, inst, kwargs.get("model"), kwargs)

        return stream

    if inst.adapter.is_async:

        @functools.wraps(fn)
        async def acreate(*args: Any, **kwargs: Any) -> Any:
            if quiet() or not inst.active:
                return await fn(*args, **kwargs)
            flight = _begin(inst, kwargs.get("model"), kwargs)
            if flight is None:
                return await fn(*args, **kwargs)
            ctx = _attach(flight)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                flight.finish(exc)
                _detach(ctx)
                raise
            try:
                _settle(flight, result, kind, kwargs)
            finally:
                _detach(ctx)
            return result

        return acreate

    @functools.wraps(fn)
    def create(*args: Any, **kwargs: Any) -> Any:
        if quiet() or not inst.active:
            return fn(*args, **kwargs)
        flight = _begin(inst, kwargs.get("model"), kwargs)
        if flight is None:
            return fn(*args, **kwargs)
        ctx = _attach(flight)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            flight.finish(exc)
            _detach(ctx)
            raise
        try:
            _settle(flight, result, kind, kwargs)
        finally:
            _detach(ctx)
        return result

    return create


# --- proxies --------------------------------------------------------------------------------------
class _Instrumentation:
    """Shared by a client proxy and the resource proxies under it."""

    __slots__ = ("active", "adapter", "client", "hooked", "http")

    def __init__(self, client: Any, adapter: Adapter) -> None:
        self.client = client
        self.adapter = adapter
        self.active = True
        self.http = getattr(client, "_client", None)
        self.hooked = self.http is not None and _install_hook(self.http, adapter.is_async)


class _Node(wrapt.BaseObjectProxy[Any]):
    """A proxy on the way to an LLM method: wraps the children its tree names."""

    def __init__(self, wrapped: Any, inst: _Instrumentation, tree: Tree) -> None:
        super().__init__(wrapped)
        self._self_inst = inst
        self._self_tree = tree
        self._self_children: dict[str, tuple[Any, Any]] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_self_"):
            raise AttributeError(name)
        value = getattr(self.__wrapped__, name)
        sub = self._self_tree.get(name)
        if sub is None:
            return value
        cached = self._self_children.get(name)
        if cached is not None and (cached[0] is value or cached[0] == value):
            return cached[1]
        try:
            if isinstance(sub, str):
                child = _wrap_method(value, self._self_inst, sub)
            else:
                child = _Node(value, self._self_inst, sub)
        except Exception as exc:
            telemetry_error("llm.proxy", exc)
            return value
        self._self_children[name] = (value, child)
        return child


class _Client(_Node):
    """An instrumented SDK client."""

    def with_options(self, *args: Any, **kwargs: Any) -> Any:
        from ._instrument import instrument

        return instrument(self.__wrapped__.with_options(*args, **kwargs))

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        from ._instrument import instrument

        return instrument(self.__wrapped__.copy(*args, **kwargs))

    def __repr__(self) -> str:
        return f"<agentrel instrumented {self.__wrapped__!r}>"
