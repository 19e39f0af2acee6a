"""backoff (``pip install 'agentrel-otel[backoff]'``): backoff's retries made visible.

    from agentrel.integrations import backoff as agentrel_backoff
    agentrel_backoff.instrument()      # once, before the decorators run (uninstrument() undoes it)

    @agentrel.tool                     # or inside @backoff.on_...: the same metrics either way
    @backoff.on_exception(backoff.expo, TimeoutError, max_tries=4)
    def search(query): ...

``instrument()`` wraps the retry loops ``backoff.on_exception`` / ``on_predicate`` build from
then on (sync and async): each execution of a retry loop joins the ``@agentrel.tool`` around
the retried function, or else opens a call named ``module.qualname`` of the function, which an
``@agentrel.tool`` inside takes over (``agentrel.instrumentation.join_call``); and it adds
agentrel's ``on_backoff`` / ``on_giveup`` / ``on_success`` handlers to the handlers you give
(once: passing ``handlers()`` as well counts nothing twice). Functions decorated before
``instrument()`` keep the loop backoff built for them.

Without ``instrument()``, ``handlers()`` gives the three handlers to pass yourself:

    @agentrel.tool
    @backoff.on_exception(backoff.expo, TimeoutError, max_tries=4, **handlers())
    def search(query): ...

Then put ``@agentrel.tool`` outside ``@backoff.on_...`` (backoff's handlers run inside the
decorated function, so the retries are attempts of the agentrel call around it); with
``@agentrel.tool`` inside, each attempt is a call of its own (the run's retry depth is the
same; the calls are not merged) and the waits are recorded under ``module.qualname`` of the
function.

The call classifies the outcome: ``recovered`` after a retry, ``exhausted`` when backoff gave
up and raised. A give-up that *returns* (``on_predicate``, ``raise_on_giveup=False``) is a
failed call when agentrel opened the call; inside your own ``@agentrel.tool`` the tool decides:
give it ``failure_when=`` to count the returned value as a failure.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from .. import instrumentation as ai

__all__ = [
    "BackoffInstrumentor",
    "handlers",
    "instrument",
    "instrumented",
    "is_instrumented",
    "on_backoff",
    "on_giveup",
    "on_success",
    "uninstrument",
]

LIBRARY = "backoff"


def _failed(call: ai.CallHandle, details: Mapping[str, Any]) -> None:
    exc = details.get("exception")
    if exc is not None:
        call.attempt_failed(exc)
    else:  # on_predicate: the value was flagged
        call.attempt_failed(error=ai.RESULT_FLAGGED)


def on_backoff(details: Mapping[str, Any]) -> None:
    """backoff scheduled a retry: the attempt failed, a wait starts, then the next attempt."""
    try:
        wait = float(details["wait"])
        call = ai.current_call(guarded=False)
        if call is None:
            ai.record_retry_wait(wait, tool=ai.qualified_name(details["target"]))
            return
        _failed(call, details)
        call.retry_wait(wait)
        call.next_attempt(starts_in=wait)  # the next attempt starts when the wait is over
    except Exception as exc:
        ai.report_error("backoff.on_backoff", exc)


def on_giveup(details: Mapping[str, Any]) -> None:
    """backoff gave up: the last attempt failed."""
    try:
        call = ai.current_call(guarded=False)
        if call is not None:
            _failed(call, details)
    except Exception as exc:
        ai.report_error("backoff.on_giveup", exc)


def on_success(details: Mapping[str, Any]) -> None:
    """backoff got a result: the open attempt is the successful one, and the call around it
    classifies the outcome when it ends (nothing is recorded here)."""
    return None


def handlers() -> dict[str, Callable[[Mapping[str, Any]], None]]:
    """The three handlers as keyword arguments for ``backoff.on_exception`` / ``on_predicate``."""
    return {"on_backoff": on_backoff, "on_giveup": on_giveup, "on_success": on_success}


# --- instrument(): backoff's loop builders ----------------------------------------------------
_OURS = (("on_backoff", on_backoff), ("on_giveup", on_giveup), ("on_success", on_success))


def _with_handlers(kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        for key, ours in _OURS:
            given = kwargs.get(key)
            if isinstance(given, (list, tuple)) and ours not in given:
                kwargs[key] = [*given, ours]
    except Exception as exc:
        ai.report_error("backoff.instrument", exc)
    return kwargs


def _sync_builder(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def build(target: Any, *args: Any, **kwargs: Any) -> Any:
        retry = original(target, *args, **_with_handlers(kwargs))

        @functools.wraps(retry)
        def joined(*a: Any, **k: Any) -> Any:
            if not ai.is_recording():
                return retry(*a, **k)
            with ai.join_call(target, library=LIBRARY):
                return retry(*a, **k)

        return joined

    build._agentrel_original = original  # type: ignore[attr-defined]
    return build


def _async_builder(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def build(target: Any, *args: Any, **kwargs: Any) -> Any:
        retry = original(target, *args, **_with_handlers(kwargs))

        @functools.wraps(retry)
        async def joined(*a: Any, **k: Any) -> Any:
            if not ai.is_recording():
                return await retry(*a, **k)
            async with ai.join_call(target, library=LIBRARY):
                return await retry(*a, **k)

        return joined

    build._agentrel_original = original  # type: ignore[attr-defined]
    return build


class BackoffInstrumentor(ai.BaseInstrumentor):
    """agentrel's backoff instrumentor (``BackoffInstrumentor().instrument()`` is
    ``instrument()``)."""

    name = "backoff"
    extra = "backoff"
    requires = (("backoff", "backoff"),)

    _patches: list[tuple[Any, str, Any]]

    def _instrument(self, **kwargs: Any) -> None:
        from backoff import _async, _sync

        self._patches = []
        for module, builder in ((_sync, _sync_builder), (_async, _async_builder)):
            for attr in ("retry_exception", "retry_predicate"):
                original = module.__dict__.get(attr)
                if original is None:
                    ai.warn_once(
                        "backoff:" + attr,
                        "agentrel: backoff.%s.%s not found (an unknown backoff version): "
                        "its retries are counted only through handlers()",
                        module.__name__,
                        attr,
                    )
                    continue
                setattr(module, attr, builder(original))
                self._patches.append((module, attr, original))

    def _uninstrument(self) -> None:
        while self._patches:
            module, attr, original = self._patches.pop()
            setattr(module, attr, original)


_INSTRUMENTOR = BackoffInstrumentor()


def instrument() -> None:
    """Join or open a call around every backoff retry loop built from now on, with
    agentrel's handlers added (idempotent: a second call warns once; imports backoff,
    ``ImportError`` naming the extra when it is missing)."""
    _INSTRUMENTOR.instrument()


def uninstrument() -> None:
    """Undo ``instrument()`` for loops built from now on (idempotent)."""
    _INSTRUMENTOR.uninstrument()


def instrumented() -> bool:
    """Whether ``instrument()`` is in effect."""
    return _INSTRUMENTOR.is_instrumented()


is_instrumented = instrumented
