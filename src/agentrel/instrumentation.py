"""The public API for integrations: what agentrel's own integrations (tenacity, stamina,
backoff, the fallback chain, the OpenAI/Anthropic adapters, the agent frameworks) build on,
and what a third-party integration should use. Nothing here needs a private import.

    from agentrel import instrumentation as ai

    SPEC = ai.tool_spec("search", system="kb")         # once, at set-up

    def run_tool(args):
        with ai.call(SPEC) as call:                     # guard and cheap exit built in
            try:
                return search(args)
            except TimeoutError as exc:
                call.attempt_failed(exc)                # attempt 1 failed ...
                call.retry_wait(0.5)                    # ... a backoff wait ...
                call.next_attempt()                     # ... attempt 2
                return search(args)

* ``call(spec)`` opens one logical call (``execute_tool {name}`` or ``chat {model}``) and its
  first attempt, and makes it current; an exception leaving the block fails the call and
  propagates unchanged. With nothing to record (no SDK configured, no run open) it costs one
  check and yields an inert handle whose methods do nothing.
* ``run_scope(name)`` opens a run (``invoke_agent {name}``), or, with ``join=True`` and a run
  already current outside any call, joins that run instead of counting a second one.
* Every method of the handles runs under agentrel's guard: a failure of telemetry is counted
  (``agentrel.telemetry_errors()``) and logged once, never raised into the host.

The counting rules the handles follow are those of shared/DESIGN.md §2 (docs/api.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from . import _catalogue as cat
from ._instrument import CREATE, RAW, STREAM, Adapter, Usage
from ._runtime import telemetry_error, warn_once
from ._scopes import (
    _CALL,
    _RUN,
    Call,
    CallSpec,
    Run,
    _count,
    before_run_finish,
    current_run,
    enter,
    enter_run,
    error_type,
    finish_call,
    finish_run,
    leave,
    leave_run,
    open_run,
    quiet,
    record_tokens,
    reject,
    start_call,
)

__all__ = [
    "CREATE",
    "RAW",
    "STREAM",
    "Adapter",
    "CallHandle",
    "CallSpec",
    "Run",
    "RunHandle",
    "SettleQueue",
    "Usage",
    "call",
    "current_call",
    "current_run",
    "error_type",
    "is_recording",
    "llm_spec",
    "on_run_finish",
    "record_retry_wait",
    "record_tokens",
    "register_llm_adapter",
    "reject",
    "report_error",
    "run_scope",
    "tool_spec",
]


def is_recording() -> bool:
    """Whether there is anything to record: an SDK provider is set (globally, by
    ``configure()`` or ``testing.capture()``) or a run is open. When false, skip all work."""
    return not quiet()


def report_error(site: str, exc: BaseException) -> None:
    """Count a failure of an integration's own telemetry code under ``site`` and log it once
    (what agentrel does for its own). Use it in ``except Exception`` around telemetry."""
    telemetry_error(site, exc)


# --- specs ------------------------------------------------------------------------------------
def tool_spec(
    name: str,
    *,
    system: str | None = None,
    idempotent: bool = True,
    reversible: bool = True,
    owner: str | None = None,
    description: str | None = None,
    library: str | None = None,
    register: bool = True,
) -> CallSpec:
    """The spec of a tool call site: validated metadata, computed once (keep it, reuse it).

    The keywords are ``@agentrel.tool``'s. ``library`` names the integration that opened the
    call (span attribute ``agentrel.integration``). ``register=False`` keeps the tool out of
    ``agentrel inventory`` (for names an integration derives at run time). Bad metadata
    raises ``TypeError`` here.
    """
    from ._decorators import tool_spec as make

    spec = make(
        name,
        system=system,
        idempotent=idempotent,
        reversible=reversible,
        owner=owner,
        description=description,
        register=register,
    )
    if library is not None:
        spec.span_attrs["agentrel.integration"] = library
    return spec


def llm_spec(provider: str, model: str | None) -> CallSpec:
    """The spec of an LLM call (``chat {model}``, a CLIENT span) for ``provider`` (the
    ``gen_ai.provider.name``, e.g. ``"openai"``) and the requested model. Cached per pair and
    bounded: past 256 models, calls are recorded without ``gen_ai.request.model``."""
    from ._instrument import _spec

    return _spec(provider, model)


# --- calls ------------------------------------------------------------------------------------
class CallHandle:
    """The live handle of one call opened by ``call()``. Every method is guarded."""

    __slots__ = ("_call", "outcome")

    def __init__(self, c: Call | None) -> None:
        self._call = c
        #: ``success`` / ``recovered`` / ``exhausted`` / ``failed`` once the call has ended.
        self.outcome: str | None = None

    @property
    def recording(self) -> bool:
        """False for the inert handle of a call that records nothing."""
        return self._call is not None

    @property
    def attempt(self) -> int:
        """The number of the attempt in progress (or the last one), from 1; 0 when inert."""
        return self._call.attempt if self._call is not None else 0

    @property
    def span(self) -> Any:
        """The call's span (``None`` when inert or not recording)."""
        return self._call.span if self._call is not None else None

    def attempt_failed(self, exc: BaseException | None = None, *, error: str | None = None) -> None:
        """Close the attempt in progress as failed, by exception (its ``error.type`` is the
        class name) or by an ``error`` type name (``"result_flagged"``, ``"rejected"``, an
        error an SDK reported without raising). A failure is counted once: closing an attempt
        with the very exception a nested call just failed with does not count it again."""
        c = self._call
        if c is None:
            return
        try:
            c.attempt_failed(exc, error)
        except Exception as err:
            telemetry_error("call.attempt", err)

    def next_attempt(self) -> None:
        """Open the next attempt (a retry). No-op while an attempt is open."""
        c = self._call
        if c is None:
            return
        try:
            c.begin_attempt()
        except Exception as err:
            telemetry_error("call.attempt", err)

    def retry_wait(self, seconds: float) -> None:
        """A backoff wait before the next attempt (``agentrel.retry.delay``, and the run's
        recovery time)."""
        c = self._call
        if c is None:
            return
        try:
            c.record_delay(float(seconds))
        except Exception as err:
            telemetry_error("call.delay", err)

    def add_tokens(self, input: int = 0, output: int = 0, model: str | None = None) -> None:
        """Tokens of the attempt in progress (a failed attempt's are wasted)."""
        if self._call is not None:
            _add_tokens(self._call, input, output, model)

    def set_response_model(self, model: str | None) -> None:
        """The model that answered (LLM calls: ``gen_ai.response.model``)."""
        if self._call is not None and isinstance(model, str) and model:
            self._call.response_model = model

    def set_span_attributes(self, attributes: dict[str, Any]) -> None:
        """Attributes to put on the call's span when it ends (one write with the outcome).
        Never put arguments, results or message text here unless the user opted in."""
        c = self._call
        if c is None:
            return
        if c.span_extra is None:
            c.span_extra = {}
        c.span_extra.update(attributes)

    def reject(self, reason: str | None = None) -> None:
        """The call's output is thrown away: it ends as a failure (``rejected``)."""
        c = self._call
        if c is None:
            return
        try:
            c._rejected = True
            if reason is not None and c.span is not None and c.span.is_recording():
                c.span.add_event("agentrel.reject", {"agentrel.reject.reason": str(reason)})
        except Exception as err:
            telemetry_error("reject", err)

    def waste(self) -> None:
        """After the call ended successfully: its output was thrown away later (a model
        response whose tool calls failed and were retried), so its useful tokens become
        wasted. Counts no failure (the failure that caused it is counted where it happened)."""
        c = self._call
        if c is None or self.outcome is None:
            return
        try:
            waste_finished(c)
        except Exception as err:
            telemetry_error("call.waste", err)


_INERT = CallHandle(None)


def _add_tokens(c: Call, input: int, output: int, model: str | None) -> None:
    try:
        c.add_tokens(model, _count(input, "input"), _count(output, "output"))
    except Exception as err:
        telemetry_error("record_tokens", err)


def waste_finished(c: Call) -> None:
    """Move a finished call's useful tokens to wasted in the run that holds them."""
    useful = c._useful
    run = c.run
    if not useful or run is None or c.parent is not None:
        return
    with run._lock:
        for k, v in useful.items():
            have = run._useful.get(k, 0)
            moved = min(have, v)
            if moved:
                run._useful[k] = have - moved
                run._wasted[k] = run._wasted.get(k, 0) + moved
        if run._last_call is not None and run._last_call[1] is useful:
            run._last_call = None
    c._useful = None


class CallScope:
    """``with call(spec) as handle:`` / ``async with``: see ``call``."""

    __slots__ = ("_adoptable", "_handle", "_spec", "_tokens")

    def __init__(self, spec: CallSpec, adoptable: bool) -> None:
        self._spec = spec
        self._adoptable = adoptable
        self._handle: CallHandle = _INERT
        self._tokens: Any = None

    def __enter__(self) -> CallHandle:
        if quiet():
            return _INERT
        try:
            c = start_call(self._spec)
            c.adoptable = self._adoptable
            self._tokens = enter(c)
        except Exception as exc:
            telemetry_error("call.start", exc)
            return _INERT
        handle = self._handle = CallHandle(c)
        return handle

    def finish(self, exc: BaseException | None = None, *, flagged: bool = False) -> None:
        """End the call now (``__exit__`` does this); ``flagged``: the result is a failure."""
        handle, tokens = self._handle, self._tokens
        self._handle, self._tokens = _INERT, None
        c = handle._call
        if c is None:
            return
        try:
            # An adopted call whose last attempt a decorated tool already closed as flagged.
            handle.outcome = finish_call(c, exc, flagged)
        except Exception as err:
            telemetry_error("call.finish", err)
        finally:
            if tokens is not None:
                try:
                    leave(tokens)
                except Exception as err:  # pragma: no cover - context misuse
                    telemetry_error("call.context", err)

    def __exit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        self.finish(exc)

    async def __aenter__(self) -> CallHandle:
        return self.__enter__()

    async def __aexit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        self.finish(exc)


def call(spec: CallSpec, *, adoptable: bool = False) -> CallScope:
    """Open one logical call for ``spec`` (see the module docstring).

    ``adoptable=True``: the first ``@agentrel.tool`` that runs directly inside *becomes* this
    call (it names it and its exception closes the attempt) instead of opening a nested call;
    an integration that wraps a framework's tool execution passes it so that a tool the user
    also decorated is counted once.
    """
    if not isinstance(spec, CallSpec):
        raise TypeError(f"call() takes a CallSpec (tool_spec(), llm_spec()), got {spec!r}")
    return CallScope(spec, adoptable)


def current_call() -> CallHandle | None:
    """A handle on the call this code runs in, or ``None``."""
    c = _CALL.get()
    return CallHandle(c) if c is not None else None


def record_retry_wait(seconds: float, *, tool: str) -> None:
    """A backoff wait seen by a retry library: an attempt of the current call when there is
    one, else ``agentrel.retry.delay`` for ``tool`` and the current run's recovery time."""
    try:
        c = _CALL.get()
        if c is not None:
            c.record_delay(float(seconds))
            return
        if quiet():
            return
        from ._runtime import T

        wait = float(seconds)
        T.retry_delay.record(wait, {cat.TOOL: tool})
        r = _RUN.get()
        if r is not None:
            with r._lock:
                r.recovery_time += wait
    except Exception as exc:
        telemetry_error("retry.delay", exc)


# --- runs -------------------------------------------------------------------------------------
class RunHandle:
    """What ``run_scope`` yields: the run (``run``) and whether this scope opened it."""

    __slots__ = ("opened", "run")

    def __init__(self, run: Run | None, opened: bool) -> None:
        self.run = run
        self.opened = opened


class RunScope:
    """``with run_scope(name) as handle:`` / ``async with``: see ``run_scope``."""

    __slots__ = ("_budget", "_cohort", "_join", "_name", "_run", "_tokens")

    def __init__(self, name: str, cohort: str | None, budget: int | None, join: bool) -> None:
        self._name, self._cohort, self._budget, self._join = name, cohort, budget, join
        self._run: Run | None = None
        self._tokens: Any = None

    def __enter__(self) -> RunHandle:
        current = _RUN.get()
        if self._join and current is not None and _CALL.get() is None:
            return RunHandle(current, False)
        try:
            r = self._run = open_run(self._name, self._cohort, self._budget)
            self._tokens = enter_run(r)
        except Exception as exc:
            telemetry_error("run.start", exc)
            self._run = None
            return RunHandle(None, False)
        return RunHandle(r, True)

    def __exit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        r, tokens = self._run, self._tokens
        self._run = self._tokens = None
        if r is not None:
            finish_run(r, exc)
            leave_run(tokens)

    async def __aenter__(self) -> RunHandle:
        return self.__enter__()

    async def __aexit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(et, exc, tb)


def run_scope(
    name: str,
    *,
    cohort: str | None = None,
    token_budget: int | None = None,
    join: bool = True,
) -> RunScope:
    """Open a run named ``name`` (a framework's agent name), as ``agentrel.run`` does.

    ``join=True`` (the default for integrations): when a run is already current and no call
    is (the application wrapped the framework call in its own ``agentrel.run``), join it, so
    one user-visible operation is one run. Inside a tool call a new, independent run opens
    (a sub-agent), as nested ``agentrel.run`` blocks do.
    """
    from ._decorators import _check_run_args

    _check_run_args(name, cohort, token_budget)
    return RunScope(name, cohort, token_budget, join)


def on_run_finish(hook: Callable[[Run], None]) -> Callable[[], None]:
    """Call ``hook(run)`` (guarded) just before every run is classified, to settle work the
    integration could not end at the time. Returns a function that removes the hook."""
    if hook not in before_run_finish:
        before_run_finish.append(hook)

    def remove() -> None:
        if hook in before_run_finish:
            before_run_finish.remove(hook)

    return remove


class SettleQueue:
    """Work abandoned without an end (a stream nobody read, a retry loop left with
    ``return``), noticed by the garbage collector, ended later at a safe point.

    The collector can run inside any allocation, even one made under a lock the work's end
    takes, so ``push`` (for ``weakref.finalize``) only appends (atomic), and ``drain(fn)``
    calls ``fn`` on each item at a safe point: the next call the integration makes, and just
    before a run is classified.
    """

    __slots__ = ("_items", "_lock")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._lock = threading.Lock()

    def push(self, item: Any) -> None:
        self._items.append(item)

    def __bool__(self) -> bool:
        return bool(self._items)

    def drain(self, fn: Callable[[Any], None]) -> None:
        while self._items:
            try:
                item = self._items.pop()
            except IndexError:  # another thread drained it
                return
            try:
                fn(item)
            except Exception as exc:
                telemetry_error("settle", exc)

    def clear(self) -> None:
        self._items.clear()


# --- LLM adapters ---------------------------------------------------------------------------------
def register_llm_adapter(module: str, factory: Callable[[Any], Any]) -> None:
    """Teach ``agentrel.instrument(client)`` a new SDK: for a client whose class lives in the
    top-level package ``module``, ``factory(client)`` returns an ``Adapter`` (see
    ``agentrel.integrations.openai``) or ``None`` when it is not a client it knows."""
    if not isinstance(module, str) or not module:
        raise TypeError(f"module must be a package name, got {module!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {factory!r}")
    from ._instrument import _ADAPTERS

    if module in _ADAPTERS and _ADAPTERS[module] is not factory:
        warn_once("adapter:" + module, "agentrel: LLM adapter for %r replaced", module)
    _ADAPTERS[module] = factory


# === Added for the agent-framework integrations (issue 11, pydantic-ai) ==========================
# A framework with its own OpenTelemetry spans (pydantic-ai's ``instrument=True``) opens
# ``invoke_agent``/``chat``/``execute_tool`` spans of its own; agentrel then writes its
# attributes and attempt events onto that span instead of opening a second one of the same name.
# Port note: ``_start_call_on`` mirrors ``_scopes.start_call`` without the span creation, and
# ``RunOnSpan.__enter__`` mirrors ``_scopes.open_run``.
import wrapt  # noqa: E402

__all__ += ["call_on_span", "reject_finished", "run_scope_on_span"]


class _BorrowedSpan(wrapt.ObjectProxy[Any]):
    """Somebody else's span: agentrel sets attributes, status and events on it, and leaves its
    name and its end to its owner."""

    def end(self, end_time: Any = None) -> None:
        return None

    def update_name(self, name: str) -> None:
        return None


def _start_call_on(spec: CallSpec, span: Any) -> Call:
    parent = _CALL.get()
    c = Call(spec, _RUN.get(), parent)
    if parent is not None:
        parent._child_started = True
        if parent.failed_attempts + parent.inner_failures:
            parent.retried = True
    try:
        span.set_attributes(spec.span_attrs)
        c.span = _BorrowedSpan(span)  # type: ignore[assignment]
    except Exception as exc:
        telemetry_error("call.span", exc)
    c.begin_attempt()
    return c


class CallOnSpan(CallScope):
    """``call_on_span(spec, span)``: a call recorded onto an existing span."""

    __slots__ = ("_on",)

    def __init__(self, spec: CallSpec, span: Any, adoptable: bool) -> None:
        super().__init__(spec, adoptable)
        self._on = span

    def __enter__(self) -> CallHandle:
        if quiet():
            return _INERT
        try:
            c = _start_call_on(self._spec, self._on)
            c.adoptable = self._adoptable
            self._tokens = enter(c)  # the span is already current: no context is attached
        except Exception as exc:
            telemetry_error("call.start", exc)
            return _INERT
        handle = self._handle = CallHandle(c)
        return handle


def call_on_span(spec: CallSpec, span: Any, *, adoptable: bool = False) -> CallScope:
    """Like ``call(spec)``, but the call's span is ``span``, a recording span another tracer
    opened for the very same operation and made current (a framework's own ``execute_tool``
    span): agentrel sets its attributes, status and ``agentrel.attempt`` events on it, and
    neither renames nor ends it. Use it only while ``span`` is the current span."""
    if not isinstance(spec, CallSpec):
        raise TypeError(f"call_on_span() takes a CallSpec, got {spec!r}")
    return CallOnSpan(spec, span, adoptable)


class RunOnSpan(RunScope):
    """``run_scope_on_span(name, span)``: a run recorded onto an existing span."""

    __slots__ = ("_on",)

    def __init__(
        self, name: str, span: Any, cohort: str | None, budget: int | None, join: bool
    ) -> None:
        super().__init__(name, cohort, budget, join)
        self._on = span

    def __enter__(self) -> RunHandle:
        current = _RUN.get()
        if self._join and current is not None and _CALL.get() is None:
            return RunHandle(current, False)
        try:
            r = self._run = Run(self._name, self._cohort, self._budget)
            try:
                self._on.set_attributes(
                    {cat.OPERATION: "invoke_agent", cat.AGENT: r.name, cat.COHORT: r.cohort}
                )
                r._span = _BorrowedSpan(self._on)  # type: ignore[assignment]
            except Exception as exc:
                telemetry_error("run.start", exc)
            self._tokens = enter_run(r)
        except Exception as exc:
            telemetry_error("run.start", exc)
            self._run = None
            return RunHandle(None, False)
        return RunHandle(r, True)


def run_scope_on_span(
    name: str,
    span: Any,
    *,
    cohort: str | None = None,
    token_budget: int | None = None,
    join: bool = True,
) -> RunScope:
    """Like ``run_scope(name)``, but the run's span is ``span``, the framework's own current
    ``invoke_agent`` span (see ``call_on_span``): the run's outcome, retry depth, attempts and
    tokens go on it as attributes; agentrel does not end it."""
    from ._decorators import _check_run_args

    _check_run_args(name, cohort, token_budget)
    return RunOnSpan(name, span, cohort, token_budget, join)


def reject_finished(handle: CallHandle, reason: str | None = None) -> None:
    """After the call ended successfully, its output was rejected (an output validator made
    the framework ask the model again): its useful tokens become wasted and the run counts one
    failure, ``error.type="rejected"`` under the call's name, as ``agentrel.reject()`` does for
    the run's last call. The call's recorded outcome is not rewritten."""
    c = handle._call
    if c is None or handle.outcome is None:
        return
    try:
        waste_finished(c)
        run = c.run
        if run is None or c.parent is not None:
            return
        run._failure(c.spec.name, cat.REJECTED, 0.0)
        span = run._span
        if span is not None and span.is_recording():
            attrs = {cat.TOOL: c.spec.name}
            if reason is not None:
                attrs["agentrel.reject.reason"] = str(reason)
            span.add_event("agentrel.reject", attrs)
    except Exception as err:
        telemetry_error("call.reject", err)


# --- added for the LangGraph integration (issue 11): make an open run current for a block ----
class _RunActivation:
    __slots__ = ("_run", "_tokens")

    def __init__(self, run: Run | None) -> None:
        self._run = run
        self._tokens: Any = None

    def __enter__(self) -> None:
        if self._run is not None:
            try:
                self._tokens = enter_run(self._run)
            except Exception as exc:
                telemetry_error("run.context", exc)

    def __exit__(self, *exc_info: object) -> None:
        tokens, self._tokens = self._tokens, None
        if tokens is not None:
            leave_run(tokens)


def activate(run: Run | None) -> _RunActivation:
    """``with activate(run):`` makes ``run`` (opened by ``run_scope`` and not yet finished)
    the current run, with no current call, for the block only; ``None`` does nothing.

    For integrations whose run spans the steps of a generator (a framework's ``stream()``):
    open the run once, and activate it around each step, so the run is current while the
    framework works and not in the consumer's code between chunks."""
    return _RunActivation(run)
