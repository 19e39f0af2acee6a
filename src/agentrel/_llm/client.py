"""The proxies of an instrumented LLM client: the client, the resource nodes on the way to
an LLM method (``client.chat.completions``), and the method wrappers at the leaves, which open
a call around the SDK's own method; plus the one proxy per client (``instrument_client``)."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import wrapt

from .._current import quiet
from .._guard import telemetry_error
from .._run import before_run_finish
from .adapter import RAW, STREAM, Adapter, Tree, adapter_for
from .flight import Flight, attach, begin, detach, end_abandoned
from .http import install_hook, remove_hook
from .streams import StreamManager, watch_stream


# --- LLM method wrappers --------------------------------------------------------------------------
def _returned(flight: Flight, result: Any, kind: str, kwargs: Mapping[str, Any]) -> None:
    """A create() returned: read its usage and end the call, or watch the stream it returned."""
    adapter = flight.adapter
    if adapter.stream_types and isinstance(result, adapter.stream_types):
        watch_stream(flight, result)
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


def _wrap_method(fn: Callable[..., Any], inst: Instrumentation, kind: str) -> Any:
    if kind == STREAM:

        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Any:
            manager = fn(*args, **kwargs)
            if not inst.active:
                return manager
            return StreamManager(manager, inst, kwargs.get("model"), kwargs)

        return stream

    if inst.adapter.is_async:

        @functools.wraps(fn)
        async def acreate(*args: Any, **kwargs: Any) -> Any:
            if quiet() or not inst.active:
                return await fn(*args, **kwargs)
            flight = begin(inst, kwargs.get("model"), kwargs)
            if flight is None:
                return await fn(*args, **kwargs)
            ctx = attach(flight)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                flight.finish(exc)
                detach(ctx)
                raise
            try:
                _returned(flight, result, kind, kwargs)
            finally:
                detach(ctx)
            return result

        return acreate

    @functools.wraps(fn)
    def create(*args: Any, **kwargs: Any) -> Any:
        if quiet() or not inst.active:
            return fn(*args, **kwargs)
        flight = begin(inst, kwargs.get("model"), kwargs)
        if flight is None:
            return fn(*args, **kwargs)
        ctx = attach(flight)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            flight.finish(exc)
            detach(ctx)
            raise
        try:
            _returned(flight, result, kind, kwargs)
        finally:
            detach(ctx)
        return result

    return create


# --- proxies --------------------------------------------------------------------------------------
class Instrumentation:
    """Shared by a client proxy and the resource proxies under it."""

    __slots__ = ("active", "adapter", "client", "hooked", "http")

    def __init__(self, client: Any, adapter: Adapter) -> None:
        self.client = client
        self.adapter = adapter
        self.active = True
        self.http = getattr(client, "_client", None)
        self.hooked = self.http is not None and install_hook(self.http, adapter.is_async)


class _Node(wrapt.BaseObjectProxy[Any]):
    """A proxy on the way to an LLM method: wraps the children its tree names."""

    def __init__(self, wrapped: Any, inst: Instrumentation, tree: Tree) -> None:
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


class _Reinstrumenting:
    """A client method that makes a new client (``copy``, ``with_options``): on the proxy it
    is the client's own bound method (its signature, name and docstring, through
    ``functools.wraps``), and the client it returns comes back instrumented."""

    __slots__ = ("name",)

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, proxy: Client | None, owner: type | None = None) -> Any:
        if proxy is None:
            return self
        method = getattr(proxy.__wrapped__, self.name)  # AttributeError: the client has none

        @functools.wraps(method)
        def reinstrumenting(*args: Any, **kwargs: Any) -> Any:
            return instrument_client(method(*args, **kwargs))

        return reinstrumenting


class _ClientInit:
    """``proxy.__init__`` is the client's own bound ``__init__``, so that
    ``inspect.signature(client.__init__)`` reads the SDK's parameters (the SDK's own
    ``test_copy_signature`` compares it with ``copy()``); the proxy itself is still built by
    ``_Node.__init__``, which ``type()`` gets while the proxy is not yet initialised."""

    __slots__ = ()

    def __get__(self, proxy: Client | None, owner: type | None = None) -> Any:
        if proxy is None:
            return _Node.__init__
        try:  # set by _Node.__init__; read past the proxy's attribute forwarding
            object.__getattribute__(proxy, "_self_inst")
        except AttributeError:  # being constructed
            return _Node.__init__.__get__(proxy, owner)
        return proxy.__wrapped__.__init__


class Client(_Node):
    """An instrumented SDK client."""

    __init__ = _ClientInit()
    copy = _Reinstrumenting()
    with_options = _Reinstrumenting()

    def __repr__(self) -> str:
        return f"<agentrel instrumented {self.__wrapped__!r}>"


# --- one proxy per client -------------------------------------------------------------------------
_proxies: weakref.WeakValueDictionary[int, Client] = weakref.WeakValueDictionary()


def instrument_client(obj: Any) -> Client:
    """The instrumented proxy of an SDK client (the same one while it records); ``TypeError``
    when no registered adapter knows the client."""
    existing = _proxies.get(id(obj))
    if existing is not None and existing.__wrapped__ is obj and existing._self_inst.active:
        return existing
    adapter = adapter_for(obj)
    if adapter is None:
        raise TypeError(
            f"agentrel.instrument() knows OpenAI and Anthropic clients; for a "
            f"{type(obj).__name__}, name the methods to record: instrument(obj, tools={{...}})"
        )
    proxy: Client = Client(obj, Instrumentation(obj, adapter), adapter.tree)
    _proxies[id(obj)] = proxy
    if end_abandoned not in before_run_finish:
        before_run_finish.append(end_abandoned)
    return proxy


def uninstrument_client(proxy: Client) -> Any:
    """Stop ``proxy`` recording (its HTTP hook goes once no instrumented client uses that
    HTTP client any more) and return the client behind it."""
    inst = proxy._self_inst
    if inst.active:
        inst.active = False
        if inst.hooked:
            remove_hook(inst.http)
    original = proxy.__wrapped__
    if _proxies.get(id(original)) is proxy:
        del _proxies[id(original)]
    return original
