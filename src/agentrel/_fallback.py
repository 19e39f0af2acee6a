"""Fallback chains: ``agentrel.fallback(name, *tiers)`` and ``@agentrel.fallback_to(...)``.

A chain is one call scope (span ``fallback {chain}``) whose attempts are its tiers, tried in
order until one serves. A tier failing moves the chain on (``agentrel.fallbacks``, with the
chain, the tier it left, the tier it moved to and the ``error.type``); a later tier serving
makes the chain ``recovered``, every tier failing makes it ``exhausted``. Each tier tried gets
a span ``fallback_tier {tier}``; the chain span carries ``agentrel.fallback.served_tier``.

A tier that is itself an ``@agentrel.tool`` opens its own call inside the chain; its failure
is counted once, in the tool (the chain sees the same exception and does not count it again),
so retry depth is not doubled.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import _catalogue as cat
from . import instrumentation as ai
from .instrumentation import CallHandle, error_type

__all__ = ["fallback", "fallback_to"]

F = TypeVar("F", bound=Callable[..., Any])
Tier = Callable[..., Any] | tuple[str, Callable[..., Any]]
ExcTypes = type[BaseException] | tuple[type[BaseException], ...]


class _Chain:
    """Everything known about a chain at definition: computed once."""

    __slots__ = ("_moves", "_tier_attrs", "failure_when", "fns", "name", "names", "on", "spec")

    def __init__(
        self,
        name: str,
        tiers: Sequence[tuple[str, Callable[..., Any]]],
        on: ExcTypes,
        failure_when: Callable[[Any], object] | None,
    ) -> None:
        self.name = name
        self.names = tuple(n for n, _ in tiers)
        self.fns = tuple(f for _, f in tiers)
        self.on = on
        self.failure_when = failure_when
        self.spec = ai.fallback_spec(
            name, {cat.FALLBACK_CHAIN: name, cat.FALLBACK_TIERS: len(tiers)}
        )
        self._moves: dict[tuple[int, str], dict[str, str]] = {}
        self._tier_attrs: tuple[dict[str, Any], ...] = tuple(
            {cat.FALLBACK_CHAIN: name, cat.FALLBACK_TIER: n, cat.FALLBACK_TIER_INDEX: i}
            for i, n in enumerate(self.names)
        )

    def move_attrs(self, i: int, etype: str) -> dict[str, str]:
        attrs = self._moves.get((i, etype))
        if attrs is None:
            attrs = self._moves[(i, etype)] = {
                cat.FALLBACK_CHAIN: self.name,
                cat.FALLBACK_FROM: self.names[i],
                cat.FALLBACK_TO: self.names[i + 1],
                cat.ERROR_TYPE: etype,
            }
        return attrs

    def flagged(self, result: Any) -> bool:
        return ai.flags(self.failure_when, result, "fallback.failure_when")


class _Scope:
    """The live state of one chain invocation (``None`` when telemetry is off)."""

    __slots__ = ("call", "chain", "ctx_token", "saved", "span")

    def __init__(self, chain: _Chain, call: CallHandle, saved: Any) -> None:
        self.chain = chain
        self.call = call
        self.saved = saved
        self.span: Any = None
        self.ctx_token: Any = None

    # -- tiers ---------------------------------------------------------------------------------
    def tier_started(self, i: int) -> None:
        try:
            if self.call.span is not None:
                span = ai.tracer().start_span(
                    f"fallback_tier {self.chain.names[i]}",
                    kind=SpanKind.INTERNAL,
                    attributes=self.chain._tier_attrs[i],
                )
                self.span = span
                self.ctx_token = otel_context.attach(trace.set_span_in_context(span))
        except Exception as exc:
            ai.report_error("fallback.tier", exc)

    def tier_ended(self, etype: str | None) -> None:
        span, token = self.span, self.ctx_token
        self.span = self.ctx_token = None
        try:
            if token is not None:
                otel_context.detach(token)
            if span is not None:
                if etype is not None and span.is_recording():
                    span.set_attribute(cat.ERROR_TYPE, etype)
                    span.set_status(Status(StatusCode.ERROR, etype))
                span.end()
        except Exception as exc:
            ai.report_error("fallback.tier", exc)

    def moved_on(self, i: int, exc: BaseException | None, etype: str) -> None:
        """Tier ``i`` failed: count it (once), record the move, open the next attempt."""
        try:
            call = self.call
            # Closing the attempt as failed also wastes the tokens the tier recorded.
            call.attempt_failed(exc, error=None if exc is not None else etype)
            ai.record_fallback(self.chain.move_attrs(i, etype))
            call.next_attempt()
        except Exception as err:
            ai.report_error("fallback.move", err)

    # -- the chain ----------------------------------------------------------------------------
    def finish(self, exc: BaseException | None, served: int | None) -> None:
        try:
            span = self.call.span
            if served is not None and span is not None and span.is_recording():
                span.set_attributes(
                    {
                        cat.FALLBACK_SERVED_TIER: self.chain.names[served],
                        cat.FALLBACK_SERVED_INDEX: served,
                    }
                )
            self.call.finish(exc, flagged=served is None and exc is None)
        except Exception as err:
            ai.report_error("fallback.finish", err)
        finally:
            try:
                ai.leave(self.saved)
            except Exception as err:  # pragma: no cover - context misuse by the application
                ai.report_error("fallback.context", err)


def _open(chain: _Chain) -> _Scope | None:
    if not ai.is_recording():
        return None
    try:
        call = ai.start(chain.spec)
        return _Scope(chain, call, call.enter())
    except Exception as exc:
        ai.report_error("fallback.start", exc)
        return None


# --- sync and async chains ------------------------------------------------------------------------
def _try_sync(chain: _Chain, scope: _Scope | None, i: int, args: Any, kwargs: Any) -> Any:
    last = i == len(chain.fns) - 1
    if scope is not None:
        scope.tier_started(i)
    try:
        result = chain.fns[i](*args, **kwargs)
    except chain.on as exc:
        if scope is not None:
            scope.tier_ended(error_type(exc))
        if last:
            raise
        if scope is not None:
            scope.moved_on(i, exc, error_type(exc))
        # Called inside the handler, so the next tier's error chains this one (__context__).
        return _try_sync(chain, scope, i + 1, args, kwargs)
    except BaseException as exc:
        if scope is not None:
            scope.tier_ended(error_type(exc))
        raise
    if chain.flagged(result):
        if scope is not None:
            scope.tier_ended(cat.RESULT_FLAGGED)
        if last:
            return _Flagged(result)
        if scope is not None:
            scope.moved_on(i, None, cat.RESULT_FLAGGED)
        return _try_sync(chain, scope, i + 1, args, kwargs)
    if scope is not None:
        scope.tier_ended(None)
    return _Served(i, result)


async def _try_async(chain: _Chain, scope: _Scope | None, i: int, args: Any, kwargs: Any) -> Any:
    last = i == len(chain.fns) - 1
    if scope is not None:
        scope.tier_started(i)
    try:
        result = chain.fns[i](*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
    except chain.on as exc:
        if scope is not None:
            scope.tier_ended(error_type(exc))
        if last:
            raise
        if scope is not None:
            scope.moved_on(i, exc, error_type(exc))
        return await _try_async(chain, scope, i + 1, args, kwargs)
    except BaseException as exc:
        if scope is not None:
            scope.tier_ended(error_type(exc))
        raise
    if chain.flagged(result):
        if scope is not None:
            scope.tier_ended(cat.RESULT_FLAGGED)
        if last:
            return _Flagged(result)
        if scope is not None:
            scope.moved_on(i, None, cat.RESULT_FLAGGED)
        return await _try_async(chain, scope, i + 1, args, kwargs)
    if scope is not None:
        scope.tier_ended(None)
    return _Served(i, result)


class _Served:
    __slots__ = ("index", "value")

    def __init__(self, index: int, value: Any) -> None:
        self.index, self.value = index, value


class _Flagged:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _unpack(scope: _Scope | None, outcome: _Served | _Flagged) -> Any:
    if scope is not None:
        scope.finish(None, outcome.index if isinstance(outcome, _Served) else None)
    return outcome.value


def _make(chain: _Chain, is_async: bool) -> Callable[..., Any]:
    if is_async:

        async def run_async_chain(*args: Any, **kwargs: Any) -> Any:
            scope = _open(chain)
            try:
                outcome = await _try_async(chain, scope, 0, args, kwargs)
            except BaseException as exc:
                if scope is not None:
                    scope.finish(exc, None)
                raise
            return _unpack(scope, outcome)

        return run_async_chain

    def run_chain(*args: Any, **kwargs: Any) -> Any:
        scope = _open(chain)
        try:
            outcome = _try_sync(chain, scope, 0, args, kwargs)
        except BaseException as exc:
            if scope is not None:
                scope.finish(exc, None)
            raise
        return _unpack(scope, outcome)

    return run_chain


# --- public API ----------------------------------------------------------------------------------
def _is_async(fn: Callable[..., Any]) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
    )


def _tiers(tiers: Sequence[Tier]) -> list[tuple[str, Callable[..., Any]]]:
    out: list[tuple[str, Callable[..., Any]]] = []
    for tier in tiers:
        if isinstance(tier, tuple):
            if len(tier) != 2 or not isinstance(tier[0], str) or not tier[0]:
                raise TypeError(f"a named tier is (name, callable), got {tier!r}")
            name, fn = tier
        else:
            fn = tier
            name = getattr(fn, "__name__", None) or type(fn).__name__
        if not callable(fn):
            raise TypeError(f"a fallback tier must be callable, got {type(fn).__name__}: {fn!r}")
        out.append((name, fn))
    return out


def _check(name: object, on: object, failure_when: object) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"fallback chain name must be a non-empty str, got {name!r}")
    kinds = on if isinstance(on, tuple) else (on,)
    if not kinds or not all(isinstance(k, type) and issubclass(k, BaseException) for k in kinds):
        raise TypeError(f"on= must be an exception class or a tuple of them, got {on!r}")
    if failure_when is not None and not callable(failure_when):
        raise TypeError(f"failure_when must be callable, got {type(failure_when).__name__}")


def fallback(
    name: str,
    /,
    *tiers: Tier,
    on: ExcTypes = Exception,
    failure_when: Callable[[Any], object] | None = None,
) -> Callable[..., Any]:
    """A fallback chain: a function that calls ``tiers`` in order, with its arguments, until
    one serves, and returns that tier's value.

        answer = agentrel.fallback("answer", primary_model, secondary_model, ("cache", cached))
        text = answer(question)

    Each tier is a callable (named by its ``__name__``) or a ``(name, callable)`` pair. An
    exception matching ``on`` (default: any ``Exception``) moves the chain on; any other
    exception propagates at once. ``failure_when``, a predicate on a tier's value, moves on
    too (``error.type="result_flagged"``, e.g. ``lambda r: not r`` for an empty answer).

    When every tier fails, the last tier's exception propagates, the very object it raised;
    each earlier tier's exception is reachable through ``__context__`` (the next tier ran
    while it was being handled). When the last tier's value is flagged, that value is
    returned and the chain is ``exhausted``. The chain is ``async`` if any tier is.
    """
    _check(name, on, failure_when)
    if not tiers:
        raise TypeError("agentrel.fallback needs at least one tier")
    parsed = _tiers(tiers)
    chain = _Chain(name, parsed, on, failure_when)
    fn = _make(chain, any(_is_async(f) for _, f in parsed))
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Fallback chain {name!r}: tiers {', '.join(chain.names)}."
    return fn


def fallback_to(
    *tiers: Tier,
    name: str | None = None,
    on: ExcTypes = Exception,
    failure_when: Callable[[Any], object] | None = None,
) -> Callable[[F], F]:
    """Decorator form: the decorated function is the first tier, ``tiers`` follow.

        @agentrel.fallback_to(secondary_model, ("static", static_answer))
        def answer(question): ...

    The chain is named ``name`` (default: the function's name); the function keeps its
    signature, docstring and async-ness (an ``async`` function may fall back to sync
    callables, a sync one only to sync callables).
    """
    if not tiers:
        raise TypeError("agentrel.fallback_to needs at least one tier to fall back to")
    parsed_tail = _tiers(tiers)

    def decorate(primary: F) -> F:
        if not callable(primary):
            raise TypeError(
                f"@agentrel.fallback_to decorates a callable, got {type(primary).__name__}"
            )
        chain_name = name or getattr(primary, "__name__", None) or type(primary).__name__
        _check(chain_name, on, failure_when)
        primary_async = _is_async(primary)
        if not primary_async and any(_is_async(f) for _, f in parsed_tail):
            raise TypeError(
                f"@agentrel.fallback_to on sync {chain_name!r} cannot fall back to an async "
                "callable (the function would have to become async)"
            )
        first = getattr(primary, "__name__", None) or chain_name
        chain = _Chain(chain_name, [(first, primary), *parsed_tail], on, failure_when)
        fn = _make(chain, primary_async)
        return functools.wraps(primary)(fn)  # type: ignore[return-value]

    return decorate
