"""``agentrel.instrument(obj)``: LLM clients as ``chat {model}`` calls, any object's methods as
tools (DESIGN §5).

An instrumented LLM client is a ``wrapt`` proxy of the SDK client (``isinstance`` holds; every
other attribute is the client's own). The proxy walks the resource chain a call goes through
(``client.chat.completions.create``): each node is a small proxy, and the LLM methods at the
leaves open a call scope around the SDK's own method.

The SDKs retry 408/409/429/5xx and connection errors *inside* one ``create()``. Those attempts
are seen where every one of them must pass: the ``send`` method of the SDK client's HTTP client
(``httpx``/``httpx2``). While an instrumented call is in flight (a contextvar says which), that
``send``:

* before an attempt other than the first: records the backoff wait (the time since the
  previous attempt failed: the SDK's sleep plus the microseconds it takes to build the next
  request) and opens the next attempt;
* after an error response (status >= 400) or a transport error: closes the attempt as failed,
  with ``error.type`` the SDK exception class that status or error maps to (``RateLimitError``,
  ``InternalServerError``, ``APITimeoutError``...), the same name the SDK's raised exception
  gives when the last attempt fails, so one status gives one ``error.type`` either way.

Nothing about the request, the response or the SDK's retry decision is changed: the hook only
reads the status and the clock. Outside an instrumented call it is one contextvar read.
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from typing import Any, ClassVar, TypeVar

import wrapt

from . import _catalogue as cat
from . import _cost  # issue 13: cached input tokens for pricing
from ._content import set_content
from ._runtime import T, telemetry_error, warn_once
from ._scopes import (
    Call,
    CallSpec,
    Run,
    before_run_finish,
    enter,
    finish_call,
    leave,
    quiet,
    start_call,
)

__all__ = ["Adapter", "Usage", "instrument", "uninstrument"]

ObjT = TypeVar("ObjT")

_now = time.perf_counter

#: Method kinds at the leaves of an adapter's resource tree.
CREATE = "create"  # returns a typed response, or a Stream with stream=True
RAW = "raw"  # .with_raw_response.<method>: returns the SDK's raw response wrapper
STREAM = "stream"  # .stream(...) helpers: return a stream manager (a context manager)

Tree = Mapping[str, Any]  # name -> Tree | kind

_SPAN_CACHE_READ = "gen_ai.usage.cache_read.input_tokens"
_SPAN_CACHE_CREATION = "gen_ai.usage.cache_creation.input_tokens"
_SPAN_REASONING = "agentrel.usage.reasoning.output_tokens"
_SPAN_ABANDONED = "agentrel.stream.abandoned"
_INPUT_MESSAGES = "gen_ai.input.messages"
_OUTPUT_MESSAGES = "gen_ai.output.messages"


class Usage:
    """Token usage of one LLM call as the SDK reported it (the last report wins: streams
    report cumulative figures)."""

    __slots__ = ("cache_creation", "cache_read", "input", "model", "output", "reasoning")

    def __init__(self) -> None:
        self.input = 0  # all input tokens, cached ones included
        self.output = 0  # all output tokens, reasoning ones included
        self.cache_read: int | None = None  # of which read from the prompt cache
        self.cache_creation: int | None = None  # of which written to the prompt cache
        self.reasoning: int | None = None  # output tokens spent on reasoning
        self.model: str | None = None  # the model that answered


class Adapter:
    """What agentrel needs to know about one SDK; ``integrations/openai.py`` and
    ``integrations/anthropic.py`` subclass it."""

    provider: str = ""
    is_async: bool = False
    tree: ClassVar[Tree] = {}
    #: the SDK's Stream classes (a create() that returned one of these is still running).
    stream_types: tuple[type, ...] = ()

    @staticmethod
    def read_usage(u: Any, usage: Usage) -> None:
        """Fill ``usage`` from the SDK's usage object."""

    def read_response(self, result: Any, usage: Usage) -> None:
        """Fill ``usage`` from a typed response (its model and its usage)."""
        model = getattr(result, "model", None)
        if isinstance(model, str):
            usage.model = model
        self.read_usage(getattr(result, "usage", None), usage)

    def read_chunk(self, item: Any, usage: Usage) -> None:
        """Update ``usage`` from one streamed item."""

    def transport_error_type(self, exc: BaseException) -> str:
        """``error.type`` of an exception raised by the HTTP client's ``send``: the SDK
        exception it becomes."""
        return type(exc).__qualname__

    def input_messages(self, kwargs: Mapping[str, Any]) -> Any:
        """The prompt (for opt-in content capture)."""
        return kwargs.get("messages")

    def output_messages(self, result: Any) -> Any:
        """The completion (for opt-in content capture)."""
        return None


# --- the call in flight ---------------------------------------------------------------------------
_FLIGHT: ContextVar[_Flight | None] = ContextVar("agentrel.llm_flight", default=None)
_status_names: dict[tuple[str, int], str] = {}


class _Flight:
    """One logical LLM call: its scope, the HTTP attempts seen, the usage reported."""

    __slots__ = (
        "abandoned",
        "adapter",
        "call",
        "client",
        "done",
        "failed_at",
        "finalizer",
        "sends",
        "usage",
    )

    def __init__(self, call: Call, client: Any, adapter: Adapter) -> None:
        self.call = call
        self.client = client
        self.adapter = adapter
        self.sends = 0
        self.failed_at: float | None = None
        self.usage: Usage | None = None
        self.done = False
        self.abandoned = False
        #: set while a returned stream is watched (see ``_watch_stream``).
        self.finalizer: weakref.finalize[Any, Any] | None = None

    # -- HTTP attempts (called by the send hook) --------------------------------------------
    def before_send(self) -> None:
        try:
            n = self.sends
            self.sends = n + 1
            if n == 0:
                return  # attempt 1 was opened by start_call
            call = self.call
            call.attempt_failed(None, "unknown")  # no-op: the failure was seen and closed
            if self.failed_at is not None:
                call.record_delay(_now() - self.failed_at)
                self.failed_at = None
            call.begin_attempt()
        except Exception as exc:
            telemetry_error("llm.attempt", exc)

    def after_response(self, response: Any) -> None:
        try:
            status = response.status_code
            if status >= 400:
                self._failed(self._status_error_type(status, response))
        except Exception as exc:
            telemetry_error("llm.attempt", exc)

    def after_error(self, exc: BaseException) -> None:
        try:
            self._failed(self.adapter.transport_error_type(exc))
        except Exception as err:
            telemetry_error("llm.attempt", err)

    def _failed(self, etype: str) -> None:
        self.call.attempt_failed(None, etype)
        self.failed_at = _now()

    def _status_error_type(self, status: int, response: Any) -> str:
        key = (self.adapter.provider, status)
        name = _status_names.get(key)
        if name is None:
            try:  # the SDK's own status -> exception mapping (looks at the status only)
                err = self.client._make_status_error("", body=None, response=response)
                name = type(err).__qualname__
            except Exception:
                name = "APIStatusError"
            _status_names[key] = name
        return name

    # -- results -------------------------------------------------------------------------------
    def read(self, result: Any) -> None:
        try:
            usage = self.usage = self.usage or Usage()
            self.adapter.read_response(result, usage)
            set_content(self.call.span, _OUTPUT_MESSAGES, self.adapter.output_messages(result))
        except Exception as exc:
            telemetry_error("llm.usage", exc)

    def chunk(self, item: Any) -> None:
        if self.done:  # read after its call ended (abandoned): nothing more to record
            return
        try:
            usage = self.usage
            if usage is None:
                usage = self.usage = Usage()
            self.adapter.read_chunk(item, usage)
        except Exception as exc:
            telemetry_error("llm.usage", exc)

    def _claim(self) -> bool:
        """Whether this caller ends the call: true once. A watched stream can be ended by its
        reader, its run's end and the next safe point after it was collected, in any thread."""
        if self.done:
            return False
        finalizer = self.finalizer
        if finalizer is None:
            self.done = True
            return True
        with _streams_lock:
            if self.done:
                return False
            self.done = True
            _open_streams.discard(self)
        finalizer.detach()
        return True

    def finish(self, exc: BaseException | None) -> None:
        """End the call (once): tokens, response model, span extras, then the core's metrics."""
        if self._claim():
            self._end(exc)

    def _end(self, exc: BaseException | None) -> None:
        call = self.call
        try:
            usage = self.usage
            if usage is not None:
                call.add_tokens(None, usage.input, usage.output)
                _cost.add_cache_tokens(call, usage.cache_read, usage.cache_creation)  # issue 13
                call.response_model = usage.model
                extras = {
                    k: v
                    for k, v in (
                        (_SPAN_CACHE_READ, usage.cache_read),
                        (_SPAN_CACHE_CREATION, usage.cache_creation),
                        (_SPAN_REASONING, usage.reasoning),
                    )
                    if v is not None
                }
            else:
                extras = {}
            if self.abandoned:
                extras[_SPAN_ABANDONED] = True
            if extras:  # set on the span with the outcome, in one write
                call.span_extra = extras
        except Exception as err:
            telemetry_error("llm.usage", err)
        try:
            finish_call(call, exc)
        except Exception as err:
            telemetry_error("call.finish", err)

    def finish_detached(self, exc: BaseException | None, abandoned: bool = False) -> None:
        """``finish`` from outside the call (a stream ending): make it current meanwhile, so
        histogram exemplars carry its trace. ``abandoned``: nobody read the stream to its end
        or closed it (its run ended, or it was collected); the span says so."""
        if not self._claim():
            return
        self.abandoned = abandoned
        try:
            tokens = enter(self.call)
        except Exception as err:
            telemetry_error("call.context", err)
            self._end(exc)
            return
        try:
            self._end(exc)
        finally:
            try:
                leave(tokens)
            except Exception as err:  # pragma: no cover - context misuse
                telemetry_error("call.context", err)


_Ctx = tuple[Any, "Token[_Flight | None]"]

#: Flights of returned streams not yet ended (read to the end, closed, or abandoned).
_open_streams: set[_Flight] = set()
_streams_lock = threading.Lock()
#: Flights of streams collected before they ended. The garbage collector can run inside any
#: allocation, even one made under a lock the call's end takes, so it only queues them
#: (``list.append`` is atomic); ``_end_abandoned`` ends them at the next safe point.
_collected: list[_Flight] = []


def _end_abandoned(run: Run | None = None) -> None:
    """End abandoned streams' calls: those collected unread, and (just before ``run`` is
    classified) those of ``run`` still open, so the run's figures and trace hold them."""
    while _collected:
        try:
            flight = _collected.pop()
        except IndexError:  # another thread drained it
            break
        flight.finish_detached(None, abandoned=True)
    if run is not None and _open_streams:
        with _streams_lock:
            mine = [f for f in _open_streams if f.call.run is run]
        for flight in mine:
            flight.finish_detached(None, abandoned=True)


def _forget_streams() -> None:
    """Drop every open or collected stream's call unrecorded (``testing.reset()``)."""
    with _streams_lock:
        flights = [*_open_streams, *_collected]
        _open_streams.clear()
        _collected.clear()
    for flight in flights:
        flight.done = True
        if flight.finalizer is not None:
            flight.finalizer.detach()


def _begin(inst: _Instrumentation, model: object, kwargs: Mapping[str, Any]) -> _Flight | None:
    if _collected:
        _end_abandoned()
    try:
        call = start_call(_spec(inst.adapter.provider, model))
        flight = _Flight(call, inst.client, inst.adapter)
        if T.capture_content:
            set_content(call.span, _INPUT_MESSAGES, inst.adapter.input_messages(kwargs))
        return flight
    except Exception as exc:
        telemetry_error("call.start", exc)
        return None


def _attach(flight: _Flight) -> _Ctx | None:
    try:
        return enter(flight.call), _FLIGHT.set(flight)
    except Exception as exc:
        telemetry_error("call.context", exc)
        return None


def _detach(ctx: _Ctx | None) -> None:
    if ctx is None:
        return
    try:
        _FLIGHT.reset(ctx[1])
        leave(ctx[0])
    except Exception as exc:  # pragma: no cover - context misuse
        telemetry_error("call.context", exc)


# --- call specs, one per (provider, model) -------------------------------------------------------
_MAX_MODELS = 256
_specs: dict[tuple[str, str | None], CallSpec] = {}
_specs_lock = threading.Lock()


def _spec(provider: str, model: object) -> CallSpec:
    m = model if isinstance(model, str) and model else None
    spec = _specs.get((provider, m))
    if spec is not None:
        return spec
    with _specs_lock:
        if len(_specs) >= _MAX_MODELS:
            warn_once(
                "llm:models",
                "agentrel: more than %d distinct LLM models seen; further ones are recorded "
                "without gen_ai.request.model",
                _MAX_MODELS,
            )
            m = None
            spec = _specs.get((provider, None))
            if spec is not None:
                return spec
        attrs: dict[str, Any] = {cat.OPERATION: "chat", cat.PROVIDER: provider}
        if m is not None:
            attrs[cat.REQUEST_MODEL] = m
        name = f"chat {m}" if m else "chat"
        spec = CallSpec(name, "llm", span_name=name, span_attrs=attrs, model=m, provider=provider)
        _specs[(provider, m)] = spec
        return spec


# --- streams --------------------------------------------------------------------------------------
def _watch_stream(flight: _Flight, stream: Any) -> None:
    """Observe a Stream's items and its end without replacing the object the user holds.

    The SDK streams iterate ``self._iterator`` (both in ``__iter__``/``__next__`` and when a
    ``.stream()`` helper reads its raw stream); agentrel puts an observing generator in its
    place, and a ``close`` that ends the call when the consumer stops early. Neither refers to
    the stream itself, so no reference cycle keeps a dropped stream alive.
    """
    try:
        inner = stream._iterator
        if flight.adapter.is_async:
            stream.__dict__["_iterator"] = _observe_async(inner, flight)
            stream.__dict__["close"] = _AsyncCloser(type(stream).close, weakref.ref(stream), flight)
        else:
            stream.__dict__["_iterator"] = _observe(inner, flight)
            stream.__dict__["close"] = _Closer(type(stream).close, weakref.ref(stream), flight)
        # Left unread: ended when its run ends, or after the stream is collected.
        flight.finalizer = weakref.finalize(stream, _collected.append, flight)
        with _streams_lock:
            _open_streams.add(flight)
    except Exception as exc:
        telemetry_error("llm.stream", exc)
        flight.finish_detached(None)


def _observe(inner: Any, flight: _Flight) -> Any:
    try:
        for item in inner:
            flight.chunk(item)
            yield item
    except GeneratorExit:
        # Closed early, or collected: the call ends at close() / the manager's exit instead
        # (ending it here could run inside the garbage collector).
        inner.close()
        raise
    except BaseException as exc:
        flight.finish_detached(exc)
        raise
    flight.finish_detached(None)


async def _observe_async(inner: Any, flight: _Flight) -> Any:
    try:
        async for item in inner:
            flight.chunk(item)
            yield item
    except GeneratorExit:
        await inner.aclose()
        raise
    except BaseException as exc:
        flight.finish_detached(exc)
        raise
    flight.finish_detached(None)


class _Closer:
    __slots__ = ("_close", "_flight", "_ref")

    def __init__(self, close: Callable[[Any], Any], ref: Any, flight: _Flight) -> None:
        self._close, self._ref, self._flight = close, ref, flight

    def __call__(self) -> Any:
        try:
            stream = self._ref()
            return None if stream is None else self._close(stream)
        finally:
            self._flight.finish_detached(None)


class _AsyncCloser(_Closer):
    __slots__ = ()

    async def __call__(self) -> Any:
        try:
            stream = self._ref()
            return None if stream is None else await self._close(stream)
        finally:
            self._flight.finish_detached(None)


class _StreamManager(wrapt.BaseObjectProxy[Any]):
    """A ``.stream(...)`` helper's manager: the call starts when it is entered (that is when
    the request goes out) and ends when the stream ends or the block exits."""

    def __init__(self, wrapped: Any, inst: _Instrumentation, model: object, kwargs: Any) -> None:
        super().__init__(wrapped)
        self._self_inst = inst
        self._self_model = model
        self._self_kwargs = kwargs
        self._self_flight: _Flight | None = None

    def _self_start(self) -> tuple[_Flight | None, _Ctx | None]:
        if quiet() or not self._self_inst.active:
            return None, None
        flight = _begin(self._self_inst, self._self_model, self._self_kwargs)
        self._self_kwargs = None
        self._self_flight = flight
        return flight, (_attach(flight) if flight is not None else None)

    def _self_started(self, flight: _Flight | None, ctx: _Ctx | None, helper: Any) -> Any:
        _detach(ctx)
        if flight is not None:
            raw = getattr(helper, "_raw_stream", None)
            if raw is not None:
                _watch_stream(flight, raw)
        return helper

    def __enter__(self) -> Any:
        flight, ctx = self._self_start()
        try:
            helper = self.__wrapped__.__enter__()
        except BaseException as exc:
            if flight is not None:
                flight.finish(exc)
            _detach(ctx)
            raise
        return self._self_started(flight, ctx, helper)

    def __exit__(self, et: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(et, exc, tb)
        finally:
            if self._self_flight is not None:
                self._self_flight.finish_detached(None)

    async def __aenter__(self) -> Any:
        flight, ctx = self._self_start()
        try:
            helper = await self.__wrapped__.__aenter__()
        except BaseException as exc:
            if flight is not None:
                flight.finish(exc)
            _detach(ctx)
            raise
        return self._self_started(flight, ctx, helper)

    async def __aexit__(self, et: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(et, exc, tb)
        finally:
            if self._self_flight is not None:
                self._self_flight.finish_detached(None)


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


# --- the HTTP hook --------------------------------------------------------------------------------
_hooks: dict[int, tuple[Any, int, Any]] = {}  # id(http client) -> (weakref, refcount, previous)
_hooks_lock = threading.Lock()
#: keys of HTTP clients that died; purged under the lock. A weakref callback can run inside
#: any allocation (garbage collection), including one made while ``_hooks_lock`` is held, so
#: it must never take that lock itself (``WeakValueDictionary`` does the same).
_dead: list[int] = []


def _purge_dead() -> None:
    """Drop the entries of collected HTTP clients (call with ``_hooks_lock`` held)."""
    while _dead:
        key = _dead.pop()
        entry = _hooks.get(key)
        if entry is not None and entry[0]() is None:
            del _hooks[key]


def _make_send(http: Any, is_async: bool) -> Any:
    ref = weakref.ref(http)
    previous = http.__dict__.get("send")
    original = previous if previous is not None else type(http).send

    def call_original(*args: Any, **kwargs: Any) -> Any:
        if previous is not None:
            return previous(*args, **kwargs)
        return original(ref(), *args, **kwargs)

    if is_async:

        async def asend(request: Any, *args: Any, **kwargs: Any) -> Any:
            flight = _FLIGHT.get()
            if flight is None:
                return await call_original(request, *args, **kwargs)
            flight.before_send()
            try:
                response = await call_original(request, *args, **kwargs)
            except BaseException as exc:
                flight.after_error(exc)
                raise
            flight.after_response(response)
            return response

        asend._agentrel_hook = True  # type: ignore[attr-defined]
        return asend

    def send(request: Any, *args: Any, **kwargs: Any) -> Any:
        flight = _FLIGHT.get()
        if flight is None:
            return call_original(request, *args, **kwargs)
        flight.before_send()
        try:
            response = call_original(request, *args, **kwargs)
        except BaseException as exc:
            flight.after_error(exc)
            raise
        flight.after_response(response)
        return response

    send._agentrel_hook = True  # type: ignore[attr-defined]
    return send


def _install_hook(http: Any, is_async: bool) -> bool:
    """Hook ``http.send`` (once per HTTP client, however many SDK clients share it)."""
    try:
        with _hooks_lock:
            _purge_dead()
            entry = _hooks.get(id(http))
            if entry is not None and entry[0]() is http:
                _hooks[id(http)] = (entry[0], entry[1] + 1, entry[2])
                return True
            previous = http.__dict__.get("send")
            http.send = _make_send(http, is_async)
            _hooks[id(http)] = (weakref.ref(http, _forget_hook(id(http))), 1, previous)
        return True
    except Exception as exc:
        telemetry_error("llm.hook", exc)
        warn_once(
            "llm:hook",
            "agentrel: could not observe the HTTP client of %s; its calls are recorded "
            "without their hidden retries",
            type(http).__name__,
        )
        return False


def _forget_hook(key: int) -> Callable[[Any], None]:
    def forget(_: Any) -> None:
        _dead.append(key)  # atomic; no lock (see ``_dead``)

    return forget


def _remove_hook(http: Any) -> None:
    try:
        with _hooks_lock:
            _purge_dead()
            entry = _hooks.get(id(http))
            if entry is None or entry[0]() is not http:
                return
            if entry[1] > 1:
                _hooks[id(http)] = (entry[0], entry[1] - 1, entry[2])
                return
            del _hooks[id(http)]
            current = http.__dict__.get("send")
            if getattr(current, "_agentrel_hook", False):
                if entry[2] is None:
                    del http.__dict__["send"]
                else:
                    http.send = entry[2]
    except Exception as exc:
        telemetry_error("llm.hook", exc)


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
        return instrument(self.__wrapped__.with_options(*args, **kwargs))

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        return instrument(self.__wrapped__.copy(*args, **kwargs))

    def __repr__(self) -> str:
        return f"<agentrel instrumented {self.__wrapped__!r}>"


class _Tools(wrapt.BaseObjectProxy[Any]):
    """Any object whose named methods are agentrel tools."""

    def __init__(self, wrapped: Any, tools: dict[str, Any]) -> None:
        super().__init__(wrapped)
        self._self_tools = tools

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_self_"):
            raise AttributeError(name)
        tool = self._self_tools.get(name)
        return tool if tool is not None else getattr(self.__wrapped__, name)


_TOOL_KEYS = frozenset(
    ("name", "system", "idempotent", "reversible", "owner", "description", "failure_when")
)


def _tools_proxy(obj: Any, tools: Mapping[str, Mapping[str, Any]]) -> Any:
    from ._decorators import _check_callable, _first_line, _where, _wrap_call, tool_spec

    if not isinstance(tools, Mapping) or not tools:
        raise TypeError(
            f"tools= must be a non-empty mapping of method name -> metadata, got {tools!r}"
        )
    wrapped: dict[str, Any] = {}
    for method_name, meta in tools.items():
        if meta is None:
            meta = {}
        if not isinstance(meta, Mapping):
            raise TypeError(
                f"tools[{method_name!r}] must be a mapping of tool metadata, got {meta!r}"
            )
        unknown = set(meta) - _TOOL_KEYS
        if unknown:
            raise TypeError(
                f"tools[{method_name!r}]: unknown metadata {sorted(unknown)}; "
                f"expected some of {sorted(_TOOL_KEYS)}"
            )
        method = getattr(obj, method_name, None)
        if method is None or not callable(method):
            raise TypeError(f"{type(obj).__name__}.{method_name} is not a method, cannot be a tool")
        pred = meta.get("failure_when")
        _check_callable(pred, "failure_when")
        description = meta.get("description")
        spec = tool_spec(
            meta.get("name", method_name),
            system=meta.get("system"),
            idempotent=meta.get("idempotent", True),
            reversible=meta.get("reversible", True),
            owner=meta.get("owner"),
            description=description if description is not None else _first_line(method.__doc__),
            where=_where(method),
        )
        wrapped[method_name] = _wrap_call(method, spec, pred)
    return _Tools(obj, wrapped)


# --- the public functions -------------------------------------------------------------------------
_proxies: weakref.WeakValueDictionary[int, _Client] = weakref.WeakValueDictionary()


#: top-level package of an SDK's client classes -> factory(client) -> Adapter | None.
#: Filled by ``agentrel.instrumentation.register_llm_adapter``; the bundled adapters register
#: themselves when their module is imported (``_BUNDLED`` says which module to import).
_ADAPTERS: dict[str, Callable[[Any], Adapter | None]] = {}
_BUNDLED = {
    "openai": "agentrel.integrations.openai",
    "anthropic": "agentrel.integrations.anthropic",
}


def _adapter_for(obj: Any) -> Adapter | None:
    module = type(obj).__module__.partition(".")[0]
    factory = _ADAPTERS.get(module)
    if factory is None and module in _BUNDLED:
        import importlib

        importlib.import_module(_BUNDLED[module])
        factory = _ADAPTERS.get(module)
    return factory(obj) if factory is not None else None


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
    adapter = _adapter_for(obj)
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
