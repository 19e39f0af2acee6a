"""tenacity (``pip install 'agentrel-otel[tenacity]'``): every tenacity retry made visible.

    from agentrel.integrations import tenacity as agentrel_tenacity
    agentrel_tenacity.instrument()

After ``instrument()``, every tenacity retry (``@retry`` on functions and coroutines,
``Retrying`` / ``AsyncRetrying`` called or iterated) is the attempts of one logical call:

* inside an ``@agentrel.tool`` (or another agentrel call) the retries are attempts of *that*
  call;
* otherwise agentrel opens a call named ``module.qualname`` of the retried function (for the
  iterator forms: the ``name=`` given to tenacity, else the function running the loop), and an
  ``@agentrel.tool`` running inside it *becomes* that call, so ``@retry`` outside
  ``@agentrel.tool`` and inside it give the same metrics.

Each failed attempt is a failure (``error.type`` of its exception; ``result_flagged`` when
``retry_if_result`` asked for the retry), each wait is ``agentrel.retry.delay`` with the very
value tenacity computed. With ``reraise=False`` the ``RetryError`` is not one more failure: the
last attempt's own error is. A ``retry_error_callback`` that returns a value serves a substitute
answer: the call is ``recovered``, like a fallback.

agentrel keeps its own state per retry (``RetryCallState``), never tenacity's ``statistics``,
so its counts stay exact when threads and tasks share a ``Retrying`` object.
"""

from __future__ import annotations

import sys
import threading
import weakref
from contextvars import ContextVar
from typing import Any

import wrapt

from .. import instrumentation as ai
from ..instrumentation import CallHandle, error_type

__all__ = [
    "TenacityInstrumentor",
    "instrument",
    "instrumented",
    "is_instrumented",
    "uninstrument",
]

_ATTR = "_agentrel_tracker"  # our per-retry state, kept on tenacity's RetryCallState
_SAVED = "_agentrel_saved"  # the saved context of an iterated attempt, on its AttemptManager
_CALL_MODE, _ITER_MODE = 0, 1

#: The tracker of a ``Retrying.__call__`` in progress whose first ``iter`` has not run yet.
_PENDING: ContextVar[_Tracker | None] = ContextVar("agentrel.tenacity.pending", default=None)
#: The tracker whose ``iter`` is running (hooks called by tenacity, e.g. stamina's, read it).
IN_ITER: ContextVar[_Tracker | None] = ContextVar("agentrel.tenacity.in_iter", default=None)

_lock = threading.Lock()
_users: set[str] = set()  # "tenacity" (all retries) and/or "stamina" (stamina's only)
_patched: list[tuple[type, str, Any]] = []  # (class, attribute, original)
_unhook: Any = None  # removes the run-finish hook


# --- naming ---------------------------------------------------------------------------------------
#: Re-exported: other integrations and users imported it from here.
qualified_name = ai.qualified_name

_SKIP_MODULES = ("tenacity", "stamina", "wrapt", "agentrel.integrations", "contextlib")


def _loop_owner(stamina: Any) -> Any:
    """The frame of the function that runs an iterated retry loop, or ``None``: for a
    stamina retry, the outermost frame of the innermost run of stamina frames (the wrapper
    stamina made around the retried function); else the first frame outside tenacity,
    stamina and agentrel (the function running ``for attempt in Retrying()``)."""
    frame: Any = sys._getframe(1)
    if stamina is not None:
        owner = None
        while frame is not None:
            if (frame.f_globals.get("__name__") or "").startswith("stamina"):
                owner = frame
            elif owner is not None:
                break
            frame = frame.f_back
        return owner
    while frame is not None:
        module = frame.f_globals.get("__name__") or "?"
        if not module.startswith(_SKIP_MODULES):
            return frame
        frame = frame.f_back
    return None


def _frame_name(frame: Any) -> str:
    if frame is None:
        return "<unknown>"
    code = frame.f_code
    return f"{frame.f_globals.get('__name__') or '?'}.{getattr(code, 'co_qualname', code.co_name)}"


def _stamina_context(retrying: Any) -> Any:
    """stamina's retry context behind a tenacity object it created, else ``None``."""
    owner = getattr(getattr(retrying, "before", None), "__self__", None)
    if owner is not None and type(owner).__module__.startswith("stamina"):
        return owner
    return None


def _iter_name(retrying: Any, stamina: Any) -> str | None:
    """The name of an iterated retry: stamina's name for the function it retries, the
    ``name=`` given to tenacity, else ``None`` (the function running the loop)."""
    if stamina is not None:
        name = getattr(stamina, "_name", None)
        if isinstance(name, str) and not name.startswith("<"):
            return name
    name = getattr(retrying, "_name", None)
    if isinstance(name, str) and name:
        return name
    return None


# --- the per-retry tracker ------------------------------------------------------------------------
class _Tracker:
    """agentrel's view of one tenacity retry: the call its attempts belong to."""

    __slots__ = ("__weakref__", "bound", "call", "done", "eager", "mode", "owned", "substituted")

    def __init__(self, call: CallHandle, owned: bool, mode: int) -> None:
        self.call = call
        self.owned = owned  # opened by us (we finish it) or an enclosing call's (its owner does)
        self.mode = mode
        self.bound = False
        self.done = False
        self.eager = False  # iterated, exception-only strategy: a clean attempt is the last
        self.substituted = False  # a retry_error_callback answered instead of the last attempt

    def fail(self, outcome: Any, exc: BaseException | None = None) -> None:
        """Close the open attempt as failed, with the error of tenacity's outcome."""
        if outcome is None:
            return
        if outcome.failed:
            self.call.attempt_failed(outcome.exception())
        elif exc is None or isinstance(exc, _RetryError):
            self.call.attempt_failed(error=ai.RESULT_FLAGGED)
        else:  # a strategy or callback raised after a returned value
            self.call.attempt_failed(error=error_type(exc))

    def decided(self, retrying: Any, rs: Any, outcome: Any, do: Any) -> None:
        """tenacity's ``iter`` returned ``do``: account for what it decided."""
        call = self.call
        if outcome is None:  # about to make an attempt
            call.next_attempt()
            return
        if isinstance(do, _DoSleep):
            self.fail(outcome)
            action = getattr(rs, "next_action", None)
            call.retry_wait(action.sleep if action is not None else float(do))
            return
        # The retry is over and returned a value: the outcome's result, or a
        # retry_error_callback's substitute after the last attempt failed.
        if outcome.failed or _retried_on_result(retrying):
            self.fail(outcome)
            self.substituted = True
        if self.mode == _ITER_MODE:
            self.finish(None)

    def raised(self, outcome: Any, exc: BaseException) -> None:
        """tenacity's ``iter`` raised ``exc``: a non-retried error, or it gave up."""
        self.fail(outcome, exc)
        if self.mode == _ITER_MODE:
            self.finish(exc)

    def finish(self, exc: BaseException | None) -> None:
        """End the call if we opened it (its owner ends an enclosing call)."""
        if self.done:
            return
        self.done = True
        if self.owned:
            # Without an exception, a closed attempt means the last attempt was flagged (an
            # adopted tool's failure_when): the call failed, as the tool alone would have.
            flagged = exc is None and not self.call.attempt_open and not self.substituted
            self.call.finish(exc, flagged=flagged)

    def abandon(self) -> None:
        """The loop was left without tenacity deciding (``return`` inside ``with attempt``)."""
        try:
            self.finish(None)
        except Exception as err:
            ai.report_error("tenacity.abandon", err)


#: trackers whose retry state was collected before tenacity decided (see ``_bind``).
_abandoned = ai.SettleQueue()


def _abandon(tracker: _Tracker) -> None:
    tracker.abandon()


def _drain_abandoned(_run: object = None) -> None:
    """End the calls of abandoned iterated retries; runs at safe points only (a new retry
    starting, a run about to be classified), never from the garbage collector."""
    _abandoned.drain(_abandon)


def _retried_on_result(retrying: Any) -> bool:
    state = getattr(getattr(retrying, "_local", None), "iter_state", None)
    return bool(state is not None and (state.retry_run_result or state.is_explicit_retry))


def _exception_only(strategy: Any) -> bool:
    """Whether a retry strategy can only ask for a retry after an exception (so a returned
    value ends the retry, and an iterated attempt that did not raise is the last one)."""
    if type(strategy) in _EXC_ONLY:
        return True
    inner = getattr(strategy, "retries", None)
    if type(strategy).__name__ in ("retry_any", "retry_all") and inner is not None:
        return all(_exception_only(s) for s in inner)
    return type(strategy).__module__.startswith("stamina")


def _wanted(retrying: Any) -> tuple[bool, Any]:
    stamina = _stamina_context(retrying)
    return ("tenacity" in _users or (stamina is not None and "stamina" in _users)), stamina


def _bind(rs: Any, retrying: Any) -> _Tracker | None:
    """Find or create the tracker of a retry whose first ``iter`` is running."""
    if _abandoned:
        _drain_abandoned()
    pending = _PENDING.get()
    if pending is not None and not pending.bound:
        pending.bound = True
        rs.__dict__[_ATTR] = pending
        return pending
    if rs.fn is not None or rs.outcome is not None:
        return None  # a form we do not drive (tornado), or started before instrument()
    wanted, stamina = _wanted(retrying)
    if not wanted or not ai.is_recording():
        return None
    try:
        library = "tenacity" if stamina is None else "stamina"
        owner = _loop_owner(stamina)
        handle, owned = ai.join_or_start(
            library=library,
            name=_iter_name(retrying, stamina) or _frame_name(_loop_owner(None)),
            code=owner.f_code if owner is not None else None,
            guarded=False,
        )
        tracker = _Tracker(handle, owned, _ITER_MODE)
        if tracker.owned:
            tracker.eager = _exception_only(getattr(retrying, "retry", None))
            if not tracker.eager:
                # The GC may run this inside any allocation, even one made under a lock the
                # call's end needs: only queue it (append is atomic); it is ended at the next
                # safe point (``_drain_abandoned``).
                weakref.finalize(rs, _abandoned.push, tracker)
    except Exception as exc:
        ai.report_error("tenacity.start", exc)
        return None
    rs.__dict__[_ATTR] = tracker
    return tracker


def _state(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return kwargs["retry_state"] if "retry_state" in kwargs else args[0]


# --- wrappers -----------------------------------------------------------------------------------
def _iter_sync(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    rs = _state(args, kwargs)
    tracker = rs.__dict__.get(_ATTR)
    if tracker is None:
        tracker = _bind(rs, instance)
        if tracker is None:
            return wrapped(*args, **kwargs)
    if tracker.done:
        return wrapped(*args, **kwargs)
    outcome = rs.outcome
    token = IN_ITER.set(tracker)
    try:
        do = wrapped(*args, **kwargs)
    except BaseException as exc:
        IN_ITER.reset(token)
        _guard(tracker.raised, outcome, exc)
        raise
    IN_ITER.reset(token)
    _guard(tracker.decided, instance, rs, outcome, do)
    return do


async def _iter_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    rs = _state(args, kwargs)
    tracker = rs.__dict__.get(_ATTR)
    if tracker is None:
        tracker = _bind(rs, instance)
        if tracker is None:
            return await wrapped(*args, **kwargs)
    if tracker.done:
        return await wrapped(*args, **kwargs)
    outcome = rs.outcome
    token = IN_ITER.set(tracker)
    try:
        do = await wrapped(*args, **kwargs)
    except BaseException as exc:
        IN_ITER.reset(token)
        _guard(tracker.raised, outcome, exc)
        raise
    IN_ITER.reset(token)
    _guard(tracker.decided, instance, rs, outcome, do)
    return do


def _guard(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception as exc:
        ai.report_error("tenacity.iter", exc)


def _begin_call(instance: Any, args: Any, kwargs: Any) -> tuple[_Tracker, Any, Any] | None:
    """Before ``Retrying.__call__``: the tracker its first ``iter`` will bind, made current."""
    if not getattr(instance, "enabled", True) or "tenacity" not in _users or not ai.is_recording():
        return None
    try:
        fn = args[0] if args else kwargs.get("fn")
        handle, owned = ai.join_or_start(fn, library="tenacity", guarded=False)
        tracker = _Tracker(handle, owned, _CALL_MODE)
        saved = tracker.call.enter() if tracker.owned else None
    except Exception as exc:
        ai.report_error("tenacity.start", exc)
        return None
    return tracker, saved, _PENDING.set(tracker)


def _end_call(begun: tuple[_Tracker, Any, Any], exc: BaseException | None) -> None:
    tracker, saved, pending = begun
    try:
        _PENDING.reset(pending)
        tracker.finish(exc)
    except Exception as err:
        ai.report_error("tenacity.finish", err)
    finally:
        ai.leave(saved)


def _call_sync(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    begun = _begin_call(instance, args, kwargs)
    if begun is None:
        return wrapped(*args, **kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        _end_call(begun, exc)
        raise
    _end_call(begun, None)
    return result


async def _call_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    begun = _begin_call(instance, args, kwargs)
    if begun is None:
        return await wrapped(*args, **kwargs)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        _end_call(begun, exc)
        raise
    _end_call(begun, None)
    return result


def _attempt_enter(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``with attempt:`` in an iterated retry: the call we opened is current in the block."""
    try:
        tracker = instance.retry_state.__dict__.get(_ATTR)
        if (
            tracker is not None
            and tracker.owned
            and tracker.mode == _ITER_MODE
            and not tracker.done
        ):
            instance.__dict__[_SAVED] = tracker.call.enter()
    except Exception as exc:
        ai.report_error("tenacity.attempt", exc)
    return wrapped(*args, **kwargs)


async def _attempt_aenter(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    _attempt_enter(_noop, instance, (), {})
    return await wrapped(*args, **kwargs)


def _noop() -> None:
    return None


def _attempt_left(instance: Any, exc: BaseException | None) -> None:
    saved = instance.__dict__.pop(_SAVED, None)
    if saved is None:
        return
    try:
        tracker = instance.retry_state.__dict__.get(_ATTR)
        if exc is None and tracker is not None and tracker.eager:
            # The block did not raise and the strategy retries on exceptions only: this was
            # the last attempt. Finish now: the loop is often left with ``return``.
            tracker.finish(None)
    except Exception as err:
        ai.report_error("tenacity.attempt", err)
    finally:
        ai.leave(saved)


def _attempt_exit(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    try:
        return wrapped(*args, **kwargs)
    finally:
        _attempt_left(instance, args[1] if len(args) > 1 else kwargs.get("exc_value"))


async def _attempt_aexit(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _attempt_left(instance, args[1] if len(args) > 1 else kwargs.get("exc_value"))


# --- instrument / uninstrument --------------------------------------------------------------------
_DoSleep: Any = None
_RetryError: Any = None
_EXC_ONLY: frozenset[type] = frozenset()


def _patch(cls: type, attr: str, wrapper: Any) -> None:
    original = cls.__dict__.get(attr)
    if original is None:
        return
    setattr(cls, attr, wrapt.FunctionWrapper(original, wrapper))
    _patched.append((cls, attr, original))


def _install() -> None:
    global _DoSleep, _RetryError, _EXC_ONLY
    import inspect

    import tenacity

    tretry = sys.modules["tenacity.retry"]  # the module (``tenacity.retry`` is the decorator)

    _DoSleep, _RetryError = tenacity.DoSleep, tenacity.RetryError
    _EXC_ONLY = frozenset(
        getattr(tretry, n)
        for n in (
            "retry_if_exception",
            "retry_if_exception_type",
            "retry_if_not_exception_type",
            "retry_if_exception_cause_type",
            "retry_if_exception_message",
            "_retry_never",
        )
        if hasattr(tretry, n)
    )
    base, sync_cls, async_cls = tenacity.BaseRetrying, tenacity.Retrying, tenacity.AsyncRetrying
    _patch(base, "iter", _iter_sync)
    if "iter" in async_cls.__dict__:
        it = async_cls.__dict__["iter"]
        _patch(async_cls, "iter", _iter_async if inspect.iscoroutinefunction(it) else _iter_sync)
    _patch(sync_cls, "__call__", _call_sync)
    _patch(async_cls, "__call__", _call_async)
    am = tenacity.AttemptManager
    _patch(am, "__enter__", _attempt_enter)
    _patch(am, "__exit__", _attempt_exit)
    _patch(am, "__aenter__", _attempt_aenter)
    _patch(am, "__aexit__", _attempt_aexit)


def _unpatch() -> None:
    while _patched:
        cls, attr, original = _patched.pop()
        setattr(cls, attr, original)


def acquire(user: str) -> None:
    """Turn the tenacity machinery on for ``user`` ("tenacity" or "stamina")."""
    global _unhook
    with _lock:
        if user in _users:
            ai.logger.debug("agentrel: %s already instrumented", user)
            return
        if not _patched:
            try:
                _install()
            except BaseException:
                _unpatch()  # nothing half-patched is left behind
                raise
            _unhook = ai.on_run_finish(_drain_abandoned)
        _users.add(user)


def release(user: str) -> None:
    """Turn it off for ``user``; the patches go when no user is left."""
    global _unhook
    with _lock:
        _users.discard(user)
        if _users:
            return
        _unpatch()
        if _unhook is not None:
            _unhook()
            _unhook = None
        _drain_abandoned()


class TenacityInstrumentor(ai.BaseInstrumentor):
    """agentrel's tenacity instrumentor (``TenacityInstrumentor().instrument()`` is
    ``instrument()``)."""

    name = "tenacity"
    extra = "tenacity"
    requires = (("tenacity", "tenacity"),)

    def _instrument(self, **kwargs: Any) -> None:
        acquire("tenacity")

    def _uninstrument(self) -> None:
        release("tenacity")

    def _reset_for_tests(self) -> None:
        _abandoned.clear()  # retry loops abandoned before a reset are never recorded


_INSTRUMENTOR = TenacityInstrumentor()


def instrument() -> None:
    """Make every tenacity retry visible (idempotent: a second call warns once; imports
    tenacity, ``ImportError`` naming the extra when it is missing)."""
    _INSTRUMENTOR.instrument()


def uninstrument() -> None:
    """Undo ``instrument()`` (idempotent). Retries already running finish unrecorded."""
    _INSTRUMENTOR.uninstrument()


def instrumented() -> bool:
    """Whether ``instrument()`` is in effect."""
    return _INSTRUMENTOR.is_instrumented()


is_instrumented = instrumented
