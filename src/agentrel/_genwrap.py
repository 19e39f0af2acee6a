"""Generator and async-generator wrappers: a scope (a tool call or a run) that spans the whole
iteration, current only while the wrapped generator runs.

The scope is taken away at each ``yield``: contextvars set inside a generator would otherwise
leak into the consumer. However the iteration ends (exhausted, raising, closed early, or an
interrupt raised by a host callback while the scope finishes), the scope is finished and the
context restored before the exception propagates.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from ._call import Call, enter, finish_call, leave, start_call
from ._content import holding
from ._current import quiet
from ._guard import telemetry_error
from ._run import enter_run, finish_run, leave_run, open_run
from ._runtime import T


def end_span(call: Call) -> None:
    """End ``call``'s span if finishing the call could not (a telemetry error or an interrupt
    part-way): every span agentrel starts is ended."""
    try:
        span = call.span
        if span is not None and span.is_recording():
            span.end()
    except Exception as exc:
        telemetry_error("call.span", exc)


class Lifecycle:
    """How a generator wrapper opens, resumes, suspends and ends its scope."""

    __slots__ = ("abandon", "begin", "end", "fast_exit", "resume", "suspend")

    def __init__(
        self,
        begin: Callable[[], Any],
        resume: Callable[[Any], Any],
        suspend: Callable[[Any], None],
        end: Callable[[Any, BaseException | None], None],
        fast_exit: bool,
        abandon: Callable[[Any], None] | None = None,
    ) -> None:
        self.begin, self.resume, self.suspend, self.end = begin, resume, suspend, end
        self.fast_exit = fast_exit
        self.abandon = abandon

    def guarded(self, site: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            telemetry_error(site, exc)
            return None

    def finish(self, state: Any, exc: BaseException | None) -> BaseException | None:
        """End the scope; return a ``BaseException`` the host's ``redact`` raised meanwhile
        (to be raised once the context is restored)."""
        try:
            if exc is not None and T.redact is not None:
                held = holding("scope.finish", self.end, state, exc)
                if held is not None and self.abandon is not None:
                    self.abandon(state)  # ended already, unless finishing failed after the hold
                return held
            self.end(state, exc)
        except Exception as err:
            telemetry_error("scope.finish", err)
            if self.abandon is not None:
                self.abandon(state)
        except BaseException:  # raised by the host's SDK hooks: end what was started
            if self.abandon is not None:
                self.abandon(state)
            raise
        return None


def _finish_quiet(call: Call, exc: BaseException | None) -> None:
    finish_call(call, exc, False)


def call_lifecycle(spec: Any) -> Lifecycle:
    return Lifecycle(
        lambda: start_call(spec), enter, leave, _finish_quiet, fast_exit=True, abandon=end_span
    )


def run_lifecycle(name: str, cohort: str | None, budget: int | None) -> Lifecycle:
    return Lifecycle(
        lambda: open_run(name, cohort, budget), enter_run, leave_run, finish_run, False
    )


def _fast(lc: Lifecycle) -> bool:
    return lc.fast_exit and quiet()


def open_scope(lc: Lifecycle) -> tuple[Any, Any]:
    """Open and enter the scope: ``(state, saved)``, each ``None`` if telemetry failed."""
    state = lc.guarded("scope.start", lc.begin)
    saved = lc.guarded("scope.context", lc.resume, state) if state is not None else None
    return state, saved


def close_scope(lc: Lifecycle, state: Any, saved: Any, exc: BaseException | None) -> None:
    """Finish the scope and restore the context, whatever happens on the way; then raise an
    interrupt the host's ``redact`` raised while the scope finished."""
    held = None
    try:
        if state is not None:
            held = lc.finish(state, exc)
    finally:
        if saved is not None:
            lc.guarded("scope.context", lc.suspend, saved)
    if held is not None:
        raise held


def wrap_gen(fn: Callable[..., Iterator[Any]], lc: Lifecycle) -> Callable[..., Iterator[Any]]:
    """A generator whose scope spans the whole iteration."""
    g = lc.guarded

    @functools.wraps(fn)
    def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
        if _fast(lc):
            return (yield from fn(*args, **kwargs))
        state = g("scope.start", lc.begin)
        gen: Any = fn(*args, **kwargs)
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            saved = g("scope.context", lc.resume, state) if state is not None else None
            try:
                if to_throw is not None:
                    exc, to_throw = to_throw, None
                    item = gen.throw(exc)
                else:
                    item = gen.send(to_send)
            except StopIteration as stop:
                close_scope(lc, state, saved, None)
                return stop.value
            except BaseException as exc:
                close_scope(lc, state, saved, exc)
                raise
            if saved is not None:
                g("scope.context", lc.suspend, saved)
            try:
                to_send = yield item
            except GeneratorExit:
                # The consumer stopped early: not a failure, unless the body's own cleanup
                # raises (that exception leaves the scope, as any other would).
                saved = g("scope.context", lc.resume, state) if state is not None else None
                try:
                    gen.close()
                except BaseException as exc:
                    close_scope(lc, state, saved, exc)
                    raise
                close_scope(lc, state, saved, None)
                raise
            except BaseException as exc:
                to_throw = exc

    return gen_wrapper


def wrap_async_gen(
    fn: Callable[..., AsyncIterator[Any]], lc: Lifecycle
) -> Callable[..., AsyncIterator[Any]]:
    """The async-generator twin of ``wrap_gen``."""
    g = lc.guarded

    @functools.wraps(fn)
    async def agen_wrapper(*args: Any, **kwargs: Any) -> Any:
        if _fast(lc):
            async for item in fn(*args, **kwargs):
                yield item
            return
        state = g("scope.start", lc.begin)
        agen: Any = fn(*args, **kwargs)
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            saved = g("scope.context", lc.resume, state) if state is not None else None
            try:
                if to_throw is not None:
                    exc, to_throw = to_throw, None
                    item = await agen.athrow(exc)
                else:
                    item = await agen.asend(to_send)
            except StopAsyncIteration:
                close_scope(lc, state, saved, None)
                return
            except BaseException as exc:
                close_scope(lc, state, saved, exc)
                raise
            if saved is not None:
                g("scope.context", lc.suspend, saved)
            try:
                to_send = yield item
            except GeneratorExit:
                saved = g("scope.context", lc.resume, state) if state is not None else None
                try:
                    await agen.aclose()
                except BaseException as exc:
                    close_scope(lc, state, saved, exc)
                    raise
                close_scope(lc, state, saved, None)
                raise
            except BaseException as exc:
                to_throw = exc

    return agen_wrapper
