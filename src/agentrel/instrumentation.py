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
  ``REJECTED``, two ``error.type`` values; ``AGENT_NAME``, ``LANGGRAPH_NODE``,
  ``HANDOFF_EVENT``, ``HANDOFF_FROM``, ``HANDOFF_TO``: span names integrations write.
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
from ._call import start_call
from ._current import CALL, RUN, current_run, quiet
from ._decorators import ToolMeta, check_run_args
from ._guard import flags, logger, telemetry_error, warn_once
from ._handles import CallHandle, reject_finished
from ._instrumentor import BaseInstrumentor, JoinedCall, join_call, join_or_start, qualified_name
from ._llm import ADAPTERS, CREATE, RAW, STREAM, Adapter, Usage
from ._marks import record_tokens, reject
from ._run import Run, activate, before_run_finish
from ._runtime import T
from ._settle import SettleQueue
from ._spec import CallSpec, error_type

#: ``error.type`` of a failed attempt whose result was flagged (``failure_when``, a retry on
#: the result), and of a rejected output.
RESULT_FLAGGED = cat.RESULT_FLAGGED
REJECTED = cat.REJECTED
#: Span attribute and event names the framework integrations write (docs/metrics.md, "Spans").
AGENT_NAME, LANGGRAPH_NODE = cat.AGENT, cat.LANGGRAPH_NODE
HANDOFF_EVENT, HANDOFF_FROM, HANDOFF_TO = cat.EVENT_HANDOFF, cat.HANDOFF_FROM, cat.HANDOFF_TO

__all__ = [
    "AGENT_NAME",
    "CREATE",
    "HANDOFF_EVENT",
    "HANDOFF_FROM",
    "HANDOFF_TO",
    "LANGGRAPH_NODE",
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
        extra[cat.INTEGRATION] = library
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
