"""LLM streams: a returned ``Stream`` is observed (its items, its end) without replacing
the object the user holds, and a ``.stream(...)`` helper's manager starts the call when it is
entered."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import wrapt

from .._current import quiet
from .._guard import telemetry_error
from .flight import Ctx, Flight, attach, begin, detach

if TYPE_CHECKING:
    from .client import Instrumentation


# --- streams --------------------------------------------------------------------------------------
def watch_stream(flight: Flight, stream: Any) -> None:
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
        flight.watch(stream)
    except Exception as exc:
        telemetry_error("llm.stream", exc)
        flight.finish_detached(None)


def _observe(inner: Any, flight: Flight) -> Any:
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


async def _observe_async(inner: Any, flight: Flight) -> Any:
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

    def __init__(self, close: Callable[[Any], Any], ref: Any, flight: Flight) -> None:
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


class StreamManager(wrapt.BaseObjectProxy[Any]):
    """A ``.stream(...)`` helper's manager: the call starts when it is entered (that is when
    the request goes out) and ends when the stream ends or the block exits."""

    def __init__(self, wrapped: Any, inst: Instrumentation, model: object, kwargs: Any) -> None:
        super().__init__(wrapped)
        self._self_inst = inst
        self._self_model = model
        self._self_kwargs = kwargs
        self._self_flight: Flight | None = None

    def _self_start(self) -> tuple[Flight | None, Ctx | None]:
        if quiet() or not self._self_inst.active:
            return None, None
        flight = begin(self._self_inst, self._self_model, self._self_kwargs)
        self._self_kwargs = None
        self._self_flight = flight
        return flight, (attach(flight) if flight is not None else None)

    def _self_started(self, flight: Flight | None, ctx: Ctx | None, helper: Any) -> Any:
        detach(ctx)
        if flight is not None:
            raw = getattr(helper, "_raw_stream", None)
            if raw is not None:
                watch_stream(flight, raw)
        return helper

    def __enter__(self) -> Any:
        flight, ctx = self._self_start()
        try:
            helper = self.__wrapped__.__enter__()
        except BaseException as exc:
            if flight is not None:
                flight.finish(exc)
            detach(ctx)
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
            detach(ctx)
            raise
        return self._self_started(flight, ctx, helper)

    async def __aexit__(self, et: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(et, exc, tb)
        finally:
            if self._self_flight is not None:
                self._self_flight.finish_detached(None)
