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

Thin handles over the core's call and run scopes; every name in ``__all__``:

* Specs: ``tool_spec``, ``llm_spec``, ``fallback_spec`` build a ``CallSpec``.
* Calls: ``call`` / ``call_on_span`` (a ``CallScope``), ``start``, ``leave``,
  ``current_call``, all yielding or returning a ``CallHandle``; ``reject_finished``.
* Runs: ``run_scope`` / ``run_scope_on_span`` (a ``RunScope``, the core's one run scope
  type, yielding a ``RunHandle``), ``activate``, ``current_run``, ``on_run_finish``, ``Run``.
* Recording: ``record_retry_wait``, ``record_fallback``, ``record_tokens`` and ``reject`` (as
  ``agentrel.record_tokens`` / ``agentrel.reject``), ``is_recording``.
* The guard: ``report_error``, ``warn_once``, ``logger`` (the ``agentrel`` logger),
  ``flags`` (a guarded ``failure_when``), ``error_type`` (the ``error.type`` rules),
  ``tracer``, ``SettleQueue`` (GC-safe queue of abandoned work); ``RESULT_FLAGGED`` and
  ``REJECTED``, two ``error.type`` values.
* LLM adapters: ``register_llm_adapter``; ``Adapter``, ``Usage`` and the call shapes
  ``CREATE``, ``RAW``, ``STREAM`` are what an adapter is made of (see
  ``agentrel.integrations.openai``).

Every method of the handles is guarded (a telemetry failure is counted and logged once,
never raised into the host); with nothing to record a call costs one check and its handle
is inert. The counting rules are in docs/api.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _call, _record, _run
from . import _catalogue as cat
from ._call import Call, enter, finish_call, start_call
from ._current import CALL, RUN, current_run, quiet
from ._decorators import ToolMeta, check_run_args
from ._guard import flags, logger, telemetry_error, warn_once
from ._instrumentor import BaseInstrumentor, JoinedCall, join_call, join_or_start, qualified_name
from ._llm import ADAPTERS, CREATE, RAW, STREAM, Adapter, Usage
from ._marks import record_tokens, reject
from ._run import Run, activate, before_run_finish
from ._runtime import T
from ._settle import SettleQueue
from ._spec import CallSpec, error_type
from ._tokens import count

#: ``error.type`` of a failed attempt whose result was flagged (``failure_when``, a retry on
#: the result), and of a rejected output.
RESULT_FLAGGED = cat.RESULT_FLAGGED
REJECTED = cat.REJECTED

__all__ = [
    "CREATE",
    "RAW",
    "REJECTED",
    "RESULT_FLAGGED",
    "STREAM",
    "Adapter",
    "BaseInstrumentor",
    "CallHandle",
    "CallScope",
    "CallSpec",
    "JoinedCall",
    "Run",
    "RunHandle",
    "RunScope",
    "SettleQueue",
    "Usage",
    "activate",
    "call",
    "call_on_span",
    "current_call",
    "current_run",
    "error_type",
    "fallback_spec",
    "flags",
    "is_recording",
    "join_call",
    "join_or_start",
    "leave",
    "llm_spec",
    "logger",
    "on_run_finish",
    "qualified_name",
    "record_fallback",
    "record_retry_wait",
    "record_tokens",
    "register_llm_adapter",
    "reject",
    "reject_finished",
    "report_error",
    "run_scope",
    "run_scope_on_span",
    "start",
    "tool_spec",
    "tracer",
    "warn_once",
]


def is_recording() -> bool:
    """Whether there is anything to record: an SDK provider is set (globally, by
    ``configure()`` or ``testing.capture()``) or a run is open. When false, skip all work."""
    return not quiet()


def report_error(site: str, exc: BaseException) -> None:
    """Count a failure of an integration's own telemetry code under ``site`` and log it once
    (what agentrel does for its own). Use it in ``except Exception`` around telemetry."""
    telemetry_error(site, exc)


def tracer() -> Any:
    """agentrel's tracer (a no-op one until a provider is set), for an integration's own
    spans inside a call (a fallback tier, a framework step)."""
    return T.tracer


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
    attributes: dict[str, Any] | None = None,
) -> CallSpec:
    """The spec of a tool call site: validated metadata, computed once (keep it, reuse it).

    The keywords are ``@agentrel.tool``'s. ``library`` names the integration that opened the
    call (span attribute ``agentrel.integration``); ``attributes``: more span attributes
    (constants only: never arguments or results). ``register=False`` keeps the tool out of
    ``agentrel inventory`` (for names an integration derives at run time). Bad metadata
    raises ``TypeError`` here.
    """
    meta = ToolMeta(
        name,
        system=system,
        idempotent=idempotent,
        reversible=reversible,
        owner=owner,
        description=description,
    )
    extra = dict(attributes or {})
    if library is not None:
        extra["agentrel.integration"] = library
    return meta.spec(register=register, extra_attrs=extra)


def llm_spec(provider: str, model: str | None) -> CallSpec:
    """The spec of an LLM call (``chat {model}``, a CLIENT span) for ``provider`` (the
    ``gen_ai.provider.name``, e.g. ``"openai"``) and the requested model. Cached per pair and
    bounded: past 256 models, calls are recorded without ``gen_ai.request.model``."""
    from ._llm import llm_spec as spec

    return spec(provider, model)


def fallback_spec(name: str, attributes: dict[str, Any] | None = None) -> CallSpec:
    """The spec of a composite call whose attempts are made of other work (a fallback
    chain's tiers, span ``fallback {name}``): a tier attempt counts as a run attempt only when
    no decorated call ran inside it (that call counted its own), and a retry loop inside a
    tier belongs to the tier's work."""
    return CallSpec(name, "fallback", span_name=f"fallback {name}", span_attrs=attributes)


# --- calls ------------------------------------------------------------------------------------
class CallHandle:
    """The live handle of one call (``call()``, ``start()``, ``current_call()``). Every
    method is guarded; on the inert handle (nothing to record) every method does nothing."""

    __slots__ = ("_call", "_guarded", "outcome")

    def __init__(self, c: Call | None, guarded: bool = True) -> None:
        self._call = c
        #: False: a telemetry error raises into the integration's own guard (see ``start``).
        self._guarded = guarded
        #: ``success`` / ``recovered`` / ``exhausted`` / ``failed`` once the call has ended.
        self.outcome: str | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CallHandle) and other._call is self._call

    def __hash__(self) -> int:
        return id(self._call)

    def __repr__(self) -> str:
        c = self._call
        if c is None:
            return "<agentrel call (inert)>"
        return f"<agentrel call {c.spec.name!r} attempt={c.attempt} outcome={self.outcome}>"

    def _failed(self, site: str, err: Exception) -> None:
        """A telemetry error in a method: counted under ``site``, or raised (``guarded=False``)
        into the integration's own guard."""
        if not self._guarded:
            raise err
        telemetry_error(site, err)

    # -- what it is ------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        """False for the inert handle of a call that records nothing."""
        return self._call is not None

    @property
    def name(self) -> str | None:
        """The call's name (its spec's); ``None`` when inert."""
        return self._call.spec.name if self._call is not None else None

    @property
    def attempt(self) -> int:
        """The number of the attempt in progress (or the last one), from 1; 0 when inert."""
        return self._call.attempt if self._call is not None else 0

    @property
    def attempt_open(self) -> bool:
        """Whether an attempt is in progress (not yet closed as failed or successful)."""
        return self._call is not None and self._call.attempt_open

    @property
    def span(self) -> Any:
        """The call's span (``None`` when inert or not recording)."""
        return self._call.span if self._call is not None else None

    @property
    def target(self) -> Any:
        """The function the decorator that opened this call wraps (``None`` for calls an
        integration or an instrumented client opened): lets a retry integration tell
        whether the current call is the tool around the very function it retries."""
        return self._call.spec.target if self._call is not None else None

    @property
    def adoptable(self) -> bool:
        """Whether an ``@agentrel.tool`` running inside will become this call."""
        return self._call is not None and self._call.adoptable

    @property
    def composite(self) -> bool:
        """Whether its attempts are made of other work (a fallback chain)."""
        return self._call is not None and self._call.spec.composite

    # -- attempts --------------------------------------------------------------------------
    def attempt_failed(self, exc: BaseException | None = None, *, error: str | None = None) -> None:
        """Close the attempt in progress as failed, by exception (its ``error.type`` is the
        class name) or by an ``error`` type name (``"result_flagged"``, ``"rejected"``, an
        error an SDK reported without raising). A failure is counted once: closing an attempt
        with the very exception a nested call just failed with does not count it again. No-op
        when no attempt is open."""
        c = self._call
        if c is None:
            return
        try:
            c.attempt_failed(exc, error)
        except Exception as err:
            self._failed("call.attempt", err)

    def next_attempt(self, *, starts_in: float = 0.0) -> None:
        """Open the next attempt (a retry); ``starts_in``: seconds from now at which it really
        starts (a hook called before the library sleeps). No-op while an attempt is open."""
        c = self._call
        if c is None:
            return
        try:
            c.begin_attempt()
            if starts_in:
                c.shift_attempt_start(starts_in)
        except Exception as err:
            self._failed("call.attempt", err)

    def retry_wait(self, seconds: float) -> None:
        """A backoff wait before the next attempt (``agentrel.retry.delay``, and the run's
        recovery time)."""
        c = self._call
        if c is None:
            return
        try:
            c.record_delay(float(seconds))
        except Exception as err:
            self._failed("call.delay", err)

    # -- what it produced ------------------------------------------------------------------
    def add_tokens(self, input: int = 0, output: int = 0, model: str | None = None) -> None:
        """Tokens of the attempt in progress (a failed attempt's are wasted). ``model``
        defaults to the spec's."""
        c = self._call
        if c is None:
            return
        try:
            c.add_tokens(model, count(input, "input"), count(output, "output"))
        except Exception as err:
            self._failed("record_tokens", err)

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
        """The call's output is thrown away: it ends as a failure (``rejected``); ``reason``
        (a short constant) goes on the span only."""
        c = self._call
        if c is None:
            return
        try:
            c.reject(reason)
        except Exception as err:
            self._failed("reject", err)

    def waste(self) -> None:
        """After the call ended successfully: its output was thrown away later (a model
        response whose tool calls failed and were retried), so its useful tokens become
        wasted. Counts no failure (the failure that caused it is counted where it happened).
        Works for a call made directly in a run (not nested in another call)."""
        c = self._call
        if c is None or self.outcome is None:
            return
        try:
            _call.waste(c)
        except Exception as err:
            self._failed("call.waste", err)

    # -- lower level: making it current, ending it -----------------------------------------
    def enter(self) -> Any:
        """Make the call current (and its span the current span); pass the result to
        ``leave``. Returns ``None`` on the inert handle."""
        c = self._call
        if c is None:
            return None
        try:
            return enter(c)
        except Exception as err:
            self._failed("call.context", err)
            return None

    def finish(self, exc: BaseException | None = None, *, flagged: bool = False) -> str | None:
        """End the call (once): with ``exc`` an open attempt fails; ``flagged``: the result is
        a failure. Records its metrics and span; returns (and sets) ``outcome``."""
        c = self._call
        if c is None or self.outcome is not None:
            return self.outcome
        try:
            self.outcome = finish_call(c, exc, flagged)
        except Exception as err:
            self._failed("call.finish", err)
        return self.outcome


_INERT = CallHandle(None)


def leave(saved: Any) -> None:
    """Undo ``CallHandle.enter()`` (``None`` is ignored)."""
    if saved is None:
        return
    try:
        _call.leave(saved)
    except Exception as err:  # pragma: no cover - context misuse
        telemetry_error("call.context", err)


def start(
    spec: CallSpec, *, adoptable: bool = False, guarded: bool = True, on_span: Any = None
) -> CallHandle:
    """Open a call and its first attempt without making it current (see ``call`` for
    ``adoptable``); the inert handle when there is nothing to record.

    ``guarded=False`` is for an integration whose hooks already run under a guard of their
    own (``except Exception: report_error(site, exc)``): the handle's methods then let a
    telemetry error propagate to that guard, so it is counted under the integration's site.
    Opening the call is guarded either way. ``on_span``: see ``call_on_span``."""
    if not isinstance(spec, CallSpec):
        raise TypeError(f"start() takes a CallSpec (tool_spec(), llm_spec()), got {spec!r}")
    if quiet():
        return _INERT
    try:
        c = start_call(spec, on_span)
        c.adoptable = adoptable
    except Exception as exc:
        telemetry_error("call.start", exc)
        return _INERT
    return CallHandle(c, guarded)


class CallScope:
    """``with call(spec) as handle:`` / ``async with``: see ``call``."""

    __slots__ = ("_adoptable", "_handle", "_on", "_saved", "_spec")

    def __init__(self, spec: CallSpec, adoptable: bool, on_span: Any = None) -> None:
        self._spec = spec
        self._adoptable = adoptable
        self._on = on_span
        self._handle: CallHandle = _INERT
        self._saved: Any = None

    def __enter__(self) -> CallHandle:
        handle = self._handle = start(self._spec, adoptable=self._adoptable, on_span=self._on)
        self._saved = handle.enter()
        return handle

    def finish(self, exc: BaseException | None = None, *, flagged: bool = False) -> None:
        """End the call now, before the block ends (``__exit__`` then does nothing more):
        with ``exc`` an open attempt fails; ``flagged``: the result is a failure."""
        handle, saved = self._handle, self._saved
        self._handle, self._saved = _INERT, None
        try:
            handle.finish(exc, flagged=flagged)
        finally:
            leave(saved)

    def __exit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        self.finish(exc)

    async def __aenter__(self) -> CallHandle:
        return self.__enter__()

    async def __aexit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        self.finish(exc)


def call(spec: CallSpec, *, adoptable: bool = False) -> CallScope:
    """Open one logical call for ``spec`` and make it current for the block.

    ``adoptable=True``: the first ``@agentrel.tool`` that runs directly inside *becomes* this
    call (it names it and its exception closes the attempt) instead of opening a nested call;
    an integration that wraps a framework's tool execution passes it so that a tool the user
    also decorated is counted once.
    """
    if not isinstance(spec, CallSpec):
        raise TypeError(f"call() takes a CallSpec (tool_spec(), llm_spec()), got {spec!r}")
    return CallScope(spec, adoptable)


def call_on_span(spec: CallSpec, span: Any, *, adoptable: bool = False) -> CallScope:
    """Like ``call(spec)``, but the call's span is ``span``, a recording span another tracer
    opened for the very same operation and made current (a framework's own ``execute_tool``
    span): agentrel sets its attributes, status and ``agentrel.attempt`` events on it, and
    neither renames nor ends it. Use it only while ``span`` is the current span."""
    if not isinstance(spec, CallSpec):
        raise TypeError(f"call_on_span() takes a CallSpec, got {spec!r}")
    return CallScope(spec, adoptable, span)


def reject_finished(handle: CallHandle, reason: str | None = None) -> None:
    """After the call ended successfully, its output was rejected (an output validator made
    the framework ask the model again): its useful tokens become wasted and the run counts one
    failure, ``error.type="rejected"`` under the call's name, as ``agentrel.reject()`` does for
    the run's last call. The call's recorded outcome is not rewritten."""
    c = handle._call
    if c is None or handle.outcome is None:
        return
    try:
        _call.reject_finished(c, reason)
    except Exception as err:
        telemetry_error("call.reject", err)


def current_call(*, guarded: bool = True) -> CallHandle | None:
    """A handle on the call this code runs in, or ``None`` (``guarded``: see ``start``)."""
    c = CALL.get()
    return CallHandle(c, guarded) if c is not None else None


def record_retry_wait(seconds: float, *, tool: str) -> None:
    """A backoff wait seen by a retry library: a wait of the current call when there is
    one, else ``agentrel.retry.delay`` for ``tool`` and the current run's recovery time."""
    try:
        wait = float(seconds)
        c = CALL.get()
        if c is not None:
            c.record_delay(wait)
            return
        if quiet():
            return
        r = RUN.get()
        _record.retry_delay(wait, None, tool, r.context if r is not None else None)
        if r is not None:
            r.add_recovery_time(wait)
    except Exception as exc:
        telemetry_error("retry.delay", exc)


def record_fallback(attributes: dict[str, str]) -> None:
    """One fallback activation (``agentrel.fallbacks``): ``attributes`` holds the chain, the
    tier it left, the tier it moved to and the ``error.type`` (build it once per combination
    and reuse it)."""
    try:
        if not quiet():
            _record.fallback_moved(attributes)
    except Exception as exc:
        telemetry_error("fallback.move", exc)


# --- runs -------------------------------------------------------------------------------------
class RunHandle:
    """What ``run_scope`` yields: the run (``None`` if it could not open) and whether this
    scope opened it (``False`` when it joined the application's run)."""

    __slots__ = ("opened", "run")

    def __init__(self, run: Run | None, opened: bool) -> None:
        self.run = run
        self.opened = opened


class RunScope(_run.RunScope):
    """``with run_scope(name) as handle:`` / ``async with``: the core's run scope (each entry
    its own run), yielding a :class:`RunHandle`; see ``run_scope``."""

    __slots__ = ()

    def __enter__(self) -> RunHandle:  # type: ignore[override]
        return RunHandle(*self.open())

    async def __aenter__(self) -> RunHandle:  # type: ignore[override]
        return RunHandle(*self.open())


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
    check_run_args(name, cohort, token_budget)
    return RunScope(name, cohort, token_budget, join=join)


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
    check_run_args(name, cohort, token_budget)
    return RunScope(name, cohort, token_budget, join=join, on_span=span)


def on_run_finish(hook: Callable[[Run], None]) -> Callable[[], None]:
    """Call ``hook(run)`` (guarded) just before every run is classified, to settle work the
    integration could not end at the time. Returns a function that removes the hook."""
    if hook not in before_run_finish:
        before_run_finish.append(hook)

    def remove() -> None:
        if hook in before_run_finish:
            before_run_finish.remove(hook)

    return remove


# --- LLM adapters ---------------------------------------------------------------------------------
def register_llm_adapter(module: str, factory: Callable[[Any], Adapter | None]) -> None:
    """Teach ``agentrel.instrument(client)`` a new SDK: for a client whose class lives in the
    top-level package ``module``, ``factory(client)`` returns an ``Adapter`` (see
    ``agentrel.integrations.openai``) or ``None`` when it is not a client it knows."""
    if not isinstance(module, str) or not module:
        raise TypeError(f"module must be a package name, got {module!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {factory!r}")
    if module in ADAPTERS and ADAPTERS[module] is not factory:
        warn_once("adapter:" + module, "agentrel: LLM adapter for %r replaced", module)
    ADAPTERS[module] = factory
