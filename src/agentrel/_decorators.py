"""``@agentrel.tool``, ``@agentrel.llm`` and ``@agentrel.agent``.

The wrappers keep the wrapped function's value, exception object, signature, docstring and
async-ness. Telemetry failures are caught by the guard (``_guard.telemetry_error``); the
tool's own exceptions always propagate unchanged. Every host callback agentrel calls
(``failure_when``, ``usage=``, ``redact``) runs inside the call's scope: an ``Exception`` from
it is a counted telemetry error, a ``BaseException`` ends the scope and propagates unchanged
(docs/reliability.md, "Host callbacks"). Generators: ``_genwrap``; argument checks and names:
``_checks``.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, overload

from . import _catalogue as cat
from ._call import Call, enter, finish_call, leave, start_call
from ._checks import check_bool, check_callable, check_str, check_target, code_name, first_line
from ._checks import mark as _mark
from ._content import holding, set_content
from ._current import CALL, RUN
from ._genwrap import (
    call_lifecycle,
    close_scope,
    end_span,
    open_scope,
    run_lifecycle,
    wrap_async_gen,
    wrap_gen,
)
from ._guard import OwnMessage, flags, telemetry_error
from ._marks import record_tokens
from ._registry import ToolInfo
from ._registry import register as register_tool
from ._run import RunScope
from ._runtime import T
from ._spec import CallSpec

F = TypeVar("F", bound=Callable[..., Any])

# Names other modules import from here (``_llm.tools``, ``instrumentation``).
_check_callable, _first_line = check_callable, first_line

#: Stack frames a call needs left to start and finish its telemetry: a call that starts
#: closer to the recursion limit runs straight through, unrecorded (counted in
#: ``telemetry_errors()["call.depth"]``), so that no span is started that cannot be ended.
#: (The check walks the stack once per recorded call: about 1 µs, under 1% of a recorded call.)
ROOM = 80


def _no_room() -> bool:
    """Whether fewer than ``ROOM`` frames are left below the recursion limit."""
    try:
        sys._getframe(max(sys.getrecursionlimit() - ROOM, 1))
    except ValueError:
        return False
    return True


class _TooDeep(OwnMessage, RecursionError):
    """A call started too close to the recursion limit to be recorded."""


# --- shared wrapper machinery --------------------------------------------------------------------
def _begin(spec: CallSpec) -> tuple[Call, Any] | None:
    if _no_room():
        telemetry_error("call.depth", _TooDeep(f"fewer than {ROOM} frames left: not recorded"))
        return None
    try:
        call = start_call(spec)
    except Exception as exc:
        telemetry_error("call.start", exc)
        return None
    try:
        return call, enter(call)
    except Exception as exc:
        telemetry_error("call.start", exc)
        end_span(call)
        return None


def _end(call: Call, saved: Any, exc: BaseException | None, flagged: bool) -> None:
    """Finish the call and restore the context. A ``BaseException`` the host's ``redact``
    raised meanwhile is raised here, once the call is finished, its span ended, and left."""
    held = None
    try:
        if exc is not None and T.redact is not None:
            held = holding("call.finish", finish_call, call, exc, flagged)
        else:
            finish_call(call, exc, flagged)
    except Exception as err:
        telemetry_error("call.finish", err)
        end_span(call)
    except BaseException:  # from the host's SDK hooks (a span processor): end what we started
        end_span(call)
        raise
    finally:
        try:
            leave(saved)
        except Exception as err:  # pragma: no cover - context misuse by the application
            telemetry_error("call.context", err)
    if held is not None:
        end_span(call)  # ended already, unless finishing failed after the hold
        raise held


def _capture_args(call: Call, args: Any, kwargs: Any) -> None:
    try:
        if call.spec.kind == "tool":
            set_content(call.span, cat.TOOL_ARGUMENTS, {"args": args, "kwargs": kwargs})
    except Exception as exc:
        telemetry_error("capture", exc)


def _capture_result(call: Call, result: Any) -> None:
    try:
        if call.spec.kind == "tool":
            set_content(call.span, cat.TOOL_RESULT, result)
    except Exception as exc:
        telemetry_error("capture", exc)


def _adopted(parent: Call, spec: CallSpec) -> Call | None:
    """The enclosing call, when this tool's invocation is that call's attempt (a retry
    integration's call, or this very tool retried inside its own call)."""
    if parent.adoptable or parent.spec is spec:
        try:
            return parent if parent.adopt(spec) else None
        except Exception as exc:
            telemetry_error("call.adopt", exc)
    return None


def _wrap_call(
    fn: Callable[..., Any],
    spec: CallSpec,
    pred: Callable[[Any], Any] | None,
    hook: str = "failure_when",
) -> Any:
    """Wrap ``fn`` so each invocation is one call scope (functions, coroutines, generators).

    A ``BaseException`` from a host callback (``redact`` on the arguments or the result,
    ``pred``) leaves the call as one from ``fn`` would: a failed attempt with its class name,
    the call finished and left, and the exception propagated unchanged. ``pred`` (the
    ``hook=`` callback) reads a returned value: a generator function has none to give it,
    which is a ``TypeError`` here rather than a callback that is never called."""
    if pred is not None and (inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn)):
        raise TypeError(
            f"{hook}= reads the value a call returns, and {spec.name!r} is a generator "
            f"function (its items are yielded): raise inside it to fail an attempt instead"
        )
    spec.target = fn
    if inspect.isasyncgenfunction(fn):
        return _mark(wrap_async_gen(fn, call_lifecycle(spec)), fn)
    if inspect.isgeneratorfunction(fn):
        return _mark(wrap_gen(fn, call_lifecycle(spec)), fn)
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            if not T.armed or (not T.active and RUN.get() is None):
                return await fn(*args, **kwargs)
            parent = CALL.get()
            adopted = _adopted(parent, spec) if parent is not None else None
            if adopted is not None:
                return await _run_adopted_async(adopted, fn, args, kwargs, pred)
            begun = _begin(spec)
            if begun is None:
                return await fn(*args, **kwargs)
            call, saved = begun
            try:
                if T.capture_content:
                    _capture_args(call, args, kwargs)
                result = await fn(*args, **kwargs)
                if T.capture_content:
                    _capture_result(call, result)
                flagged = pred is not None and flags(pred, result, "failure_when")
            except BaseException as exc:
                _end(call, saved, exc, False)
                raise
            _end(call, saved, None, flagged)
            return result

        return _mark(async_wrapper, fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not T.armed or (not T.active and RUN.get() is None):
            return fn(*args, **kwargs)
        parent = CALL.get()
        adopted = _adopted(parent, spec) if parent is not None else None
        if adopted is not None:
            return _run_adopted(adopted, fn, args, kwargs, pred)
        begun = _begin(spec)
        if begun is None:
            return fn(*args, **kwargs)
        call, saved = begun
        try:
            if T.capture_content:
                _capture_args(call, args, kwargs)
            result = fn(*args, **kwargs)
            if T.capture_content:
                _capture_result(call, result)
            flagged = pred is not None and flags(pred, result, "failure_when")
        except BaseException as exc:
            _end(call, saved, exc, False)
            raise
        _end(call, saved, None, flagged)
        return result

    return _mark(wrapper, fn)


def _attempt_outcome(call: Call, exc: BaseException | None, flagged: bool) -> None:
    try:
        if exc is not None:
            call.attempt_failed(exc)
        elif flagged:
            call.attempt_failed(None, cat.RESULT_FLAGGED)
    except Exception as err:
        telemetry_error("call.attempt", err)


def _run_adopted(call: Call, fn: Callable[..., Any], args: Any, kwargs: Any, pred: Any) -> Any:
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        _attempt_outcome(call, exc, False)
        raise
    _attempt_outcome(call, None, flags(pred, result, "failure_when"))
    return result


async def _run_adopted_async(
    call: Call, fn: Callable[..., Awaitable[Any]], args: Any, kwargs: Any, pred: Any
) -> Any:
    try:
        result = await fn(*args, **kwargs)
    except BaseException as exc:
        _attempt_outcome(call, exc, False)
        raise
    _attempt_outcome(call, None, flags(pred, result, "failure_when"))
    return result


def _decorate(obj: Any, make: Callable[[Callable[..., Any]], Any], what: str) -> Any:
    """Apply ``make`` to a function, or to the function inside a staticmethod/classmethod;
    refuse a class, a non-callable and (for calls) a function agentrel already wraps."""
    if isinstance(obj, (staticmethod, classmethod)):
        return type(obj)(_decorate(obj.__func__, make, what))
    check_target(obj, what)
    return make(obj)


# --- @agentrel.tool ------------------------------------------------------------------------------
class ToolMeta:
    """A tool's metadata, validated once (``TypeError`` for bad values), and the call spec it
    makes (which registers the tool in the inventory)."""

    __slots__ = ("description", "idempotent", "name", "owner", "reversible", "system")

    def __init__(
        self,
        name: str | None,
        *,
        system: str | None = None,
        idempotent: bool = True,
        reversible: bool = True,
        owner: str | None = None,
        description: str | None = None,
        name_required: bool = True,
    ) -> None:
        check_str(name, "tool name", optional=not name_required)
        check_str(system, "system")
        check_str(owner, "owner")
        check_bool(idempotent, "idempotent")
        check_bool(reversible, "reversible")
        if description is not None and not isinstance(description, str):
            raise TypeError(f"description must be a str, got {description!r}")
        self.name, self.system, self.owner = name, system, owner
        self.idempotent, self.reversible, self.description = idempotent, reversible, description

    def spec(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        where: tuple[str | None, str | None, str | None, int | None] = (None, None, None, None),
        register: bool = True,
        extra_attrs: dict[str, Any] | None = None,
    ) -> CallSpec:
        """The call spec; ``name``/``description`` fill in what the metadata left open (the
        function's name and docstring). Registers the tool unless ``register=False``."""
        tool_name = self.name or name
        check_str(tool_name, "tool name", optional=False)
        assert tool_name is not None
        desc = self.description if self.description is not None else description
        attrs: dict[str, Any] = {
            cat.OPERATION: "execute_tool",
            cat.TOOL: tool_name,
            cat.TOOL_TYPE: "function",
            cat.TOOL_IDEMPOTENT: self.idempotent,
            cat.TOOL_REVERSIBLE: self.reversible,
        }
        if desc:
            attrs[cat.TOOL_DESCRIPTION] = desc
        if self.system:
            attrs[cat.TOOL_SYSTEM] = self.system
        if self.owner:
            attrs[cat.TOOL_OWNER] = self.owner
        if extra_attrs:
            attrs.update(extra_attrs)
        if register:
            module, qualname, file, line = where
            register_tool(
                ToolInfo(
                    tool_name, self.system, self.idempotent, self.reversible, self.owner, desc,
                    module, qualname, file, line,
                )
            )  # fmt: skip
        return CallSpec(
            tool_name,
            "tool",
            span_attrs=attrs,
            idempotent=self.idempotent,
            system=self.system,
        )


def _where(fn: Callable[..., Any]) -> tuple[str | None, str | None, str | None, int | None]:
    inner = inspect.unwrap(fn)
    try:
        file = inspect.getsourcefile(inner)
        line = inner.__code__.co_firstlineno
    except (TypeError, AttributeError):
        file, line = None, None
    return getattr(fn, "__module__", None), getattr(fn, "__qualname__", None), file, line


@overload
def tool(wrapped: F, /) -> F: ...
@overload
def tool(
    wrapped: str | None = None,
    /,
    *,
    name: str | None = None,
    system: str | None = None,
    idempotent: bool = True,
    reversible: bool = True,
    owner: str | None = None,
    description: str | None = None,
    failure_when: Callable[[Any], object] | None = None,
) -> Callable[[F], F]: ...
def tool(
    wrapped: Any = None,
    /,
    *,
    name: str | None = None,
    system: str | None = None,
    idempotent: bool = True,
    reversible: bool = True,
    owner: str | None = None,
    description: str | None = None,
    failure_when: Callable[[Any], object] | None = None,
) -> Any:
    """Make a function an agent tool: each call is a logical call with attempts, outcome,
    failures and duration (``execute_tool {name}`` span).

    Use bare (``@agentrel.tool``), with a name (``@agentrel.tool("search")``) or with metadata:
    ``system`` (what it touches), ``idempotent`` (False: a retry may duplicate side effects,
    counted in ``agentrel.unsafe_retries``), ``reversible``, ``owner`` (who to page),
    ``description`` (default: the docstring's first line) and ``failure_when`` (a predicate on
    the return value that flags it as a failure, e.g. ``lambda r: "error" in r``; the value is
    still returned unchanged). Works on functions, methods, async functions, generators and
    async generators (the call spans the whole iteration).
    """
    if isinstance(wrapped, str):
        if name is not None:
            raise TypeError("give the tool name once: positionally or as name=")
        name, wrapped = wrapped, None
    meta = ToolMeta(
        name,
        system=system,
        idempotent=idempotent,
        reversible=reversible,
        owner=owner,
        description=description,
        name_required=False,
    )
    check_callable(failure_when, "failure_when")

    def make(fn: Callable[..., Any]) -> Any:
        spec = meta.spec(
            name=None if meta.name is not None else code_name(fn, "tool"),
            description=first_line(fn.__doc__),
            where=_where(fn),
        )
        return _wrap_call(fn, spec, failure_when)

    if wrapped is None:
        return lambda fn: _decorate(fn, make, "tool")
    return _decorate(wrapped, make, "tool")


# --- @agentrel.llm -------------------------------------------------------------------------------
class UsageShapeError(OwnMessage, TypeError):
    """What a ``usage=`` callback returned is no token pair (its message names the type only)."""


def _usage_pair(usage: object) -> tuple[int, int]:
    if isinstance(usage, Mapping):
        return usage.get("input", 0) or 0, usage.get("output", 0) or 0
    if isinstance(usage, tuple) and len(usage) == 2:
        return usage[0] or 0, usage[1] or 0
    raise UsageShapeError(
        "usage= must return (input, output) or a mapping with 'input'/'output', got "
        + type(usage).__name__  # not the value: it may be the call's result
    )


@overload
def llm(wrapped: F, /) -> F: ...
@overload
def llm(
    wrapped: None = None,
    /,
    *,
    model: str | None = None,
    provider: str | None = None,
    name: str | None = None,
    usage: Callable[[Any], object] | None = None,
) -> Callable[[F], F]: ...
def llm(
    wrapped: Any = None,
    /,
    *,
    model: str | None = None,
    provider: str | None = None,
    name: str | None = None,
    usage: Callable[[Any], object] | None = None,
) -> Any:
    """Make an application's own LLM-calling function a ``chat {model}`` call scope.

    Tokens come from ``agentrel.record_tokens(...)`` inside it, or from ``usage``, a function
    of the return value giving ``(input_tokens, output_tokens)`` or a mapping with ``input``
    and ``output``. Records ``gen_ai.client.operation.duration`` and
    ``gen_ai.client.token.usage`` as the GenAI conventions say.
    """
    check_str(model, "model")
    check_str(provider, "provider")
    check_str(name, "name")
    check_callable(usage, "usage")

    def make(fn: Callable[..., Any]) -> Any:
        call_name = name or (f"chat {model}" if model else f"chat {code_name(fn, 'llm')}")
        attrs: dict[str, Any] = {cat.OPERATION: "chat"}
        if model:
            attrs[cat.REQUEST_MODEL] = model
        if provider:
            attrs[cat.PROVIDER] = provider
        spec = CallSpec(call_name, "llm", span_attrs=attrs, model=model, provider=provider)
        if usage is None:
            return _wrap_call(fn, spec, None)

        def pred(result: Any) -> bool:  # records usage on the way out, never flags
            try:
                i, o = _usage_pair(usage(result))
                record_tokens(input=i, output=o, model=model)
            except Exception as exc:
                telemetry_error("llm.usage", exc)
            return False

        return _wrap_call(fn, spec, pred, "usage")

    if wrapped is None:
        return lambda fn: _decorate(fn, make, "llm")
    return _decorate(wrapped, make, "llm")


# --- @agentrel.agent / agentrel.run ---------------------------------------------------------------
def check_run_args(name: object, cohort: object, token_budget: object) -> None:
    check_str(name, "agent name", optional=False)
    check_str(cohort, "cohort", utf8=False)
    if token_budget is not None and (
        isinstance(token_budget, bool) or not isinstance(token_budget, int) or token_budget <= 0
    ):
        raise ValueError(f"token_budget must be a positive int, got {token_budget!r}")


@overload
def agent(name: F, /) -> F: ...
@overload
def agent(
    name: str | None = None, /, *, cohort: str | None = None, token_budget: int | None = None
) -> Callable[[F], F]: ...
def agent(
    name: Any = None, /, *, cohort: str | None = None, token_budget: int | None = None
) -> Any:
    """Make each call of the decorated function one run (``invoke_agent {name}``).

    ``@agentrel.agent("support")``, or bare ``@agentrel.agent`` (named after the function).
    Works on functions, async functions, generators and async generators.
    """
    if callable(name) and not isinstance(name, str):
        fn = name
        if inspect.isclass(fn):
            check_target(fn, "agent")
        return agent(code_name(fn, "agent"), cohort=cohort, token_budget=token_budget)(fn)
    if name is None:
        raise TypeError("@agentrel.agent(...) needs a name: @agentrel.agent('support')")
    check_run_args(name, cohort, token_budget)

    def make(fn: Callable[..., Any]) -> Any:
        lc = run_lifecycle(name, cohort, token_budget)
        if inspect.isasyncgenfunction(fn):
            return wrap_async_gen(fn, lc)
        if inspect.isgeneratorfunction(fn):
            return wrap_gen(fn, lc)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_run(*args: Any, **kwargs: Any) -> Any:
                state, saved = open_scope(lc)
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    close_scope(lc, state, saved, exc)
                    raise
                close_scope(lc, state, saved, None)
                return result

            return async_run

        @functools.wraps(fn)
        def sync_run(*args: Any, **kwargs: Any) -> Any:
            state, saved = open_scope(lc)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                close_scope(lc, state, saved, exc)
                raise
            close_scope(lc, state, saved, None)
            return result

        return sync_run

    return lambda fn: _decorate(fn, make, "agent")


def run(name: str, /, *, cohort: str | None = None, token_budget: int | None = None) -> RunScope:
    """Open a run: ``with agentrel.run("support", cohort="smb") as run:`` (or ``async with``).

    The handle exposes live figures (``run.attempts``, ``run.retry_depth``, ``run.tokens``,
    ``run.wasted_tokens``, ``run.token_amplification``) and, after the block, ``run.outcome``.
    An exception leaving the block fails the run and propagates unchanged.
    """
    key = (name, cohort, token_budget, type(token_budget))
    try:
        checked = key in _checked_runs
    except Exception:  # unhashable (or a hostile __hash__/__eq__): check_run_args decides
        checked = False
    if not checked:
        check_run_args(name, cohort, token_budget)
        if len(_checked_runs) < 1024:
            _checked_runs.add(key)
    return RunScope(name, cohort, token_budget)


#: the (name, cohort, token_budget) arguments ``run`` has found valid (bounded), so that a run
#: opened in a loop checks them once
_checked_runs: set[tuple[Any, ...]] = set()
