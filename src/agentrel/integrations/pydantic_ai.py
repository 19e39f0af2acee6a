"""pydantic-ai (``pip install 'agentrel-otel[pydantic-ai]'``): every agent run counted, no
decorators.

    from agentrel.integrations import pydantic_ai as agentrel_pydantic_ai
    agentrel_pydantic_ai.instrument()       # once, at startup (uninstrument() undoes it)

``instrument()`` adds agentrel's capability (pydantic-ai's documented extension point for
cross-cutting behaviour, ``pydantic_ai.capabilities.AbstractCapability``) to every run, through
the ``capabilities=`` argument of ``Agent.iter`` (which ``run``, ``run_sync`` and
``run_stream`` go through). Without patching anything, pass it yourself:
``Agent(..., capabilities=[agentrel_pydantic_ai.capability()])``; it has the fixed id
``"agentrel"``, so both at once are one capability.

What is counted (docs/integrations.md has the full table):

* a run (``wrap_run``) is an agentrel run named after the agent (``agent.name``, else
  ``"agent"``); an enclosing ``agentrel.run`` is joined;
* a tool execution (``wrap_tool_execute``) is a call ``execute_tool {tool}``; an exception
  leaving it is a failed attempt whose ``error.type`` is what the tool raised (``ModelRetry``,
  ``ToolFailed``, ``ValueError``; pydantic-ai's own wrappers ``ToolRetryError``,
  ``ToolFailedError`` and the "exceeded max retries" ``UnexpectedModelBehavior`` are seen
  through to their cause). A tool exception a capability's ``on_tool_execute_error`` turns into
  a result is a failed call too. Invalid tool arguments (``wrap_tool_validate``) are a failed
  call of one attempt (``ValidationError``/``ModelRetry``);
* a model request (``wrap_model_request``) is a call ``chat {model}`` with the response's
  usage as its tokens; when any tool call of the response failed, the response's tokens become
  wasted (the model is asked again); when its output is rejected (a schema ``ValidationError``
  or an output validator's ``ModelRetry``), that is a rejection: one failure
  (``error.type="rejected"``) and its tokens wasted.

A tool execution still running when the run ends (the run was cancelled; pydantic-ai
cancels the tool task only after the run) is settled just before the run is classified: one
failed attempt ``CancelledError``, the run's failure.

With pydantic-ai's own tracing on (``instrument=True``, ``Agent.instrument_all()``, a user's
``InstrumentedModel``), agentrel writes onto pydantic-ai's ``invoke_agent``, ``chat`` and
``execute_tool`` spans (instrumentation version 2: ``agent run``, ``running tool``) instead of
opening spans of the same name under them.
"""

from __future__ import annotations

import asyncio
import threading
from contextvars import ContextVar
from typing import Any

from agentrel import instrumentation as ai

__all__ = [
    "PydanticAIInstrumentor",
    "capability",
    "instrument",
    "instrumented",
    "is_instrumented",
    "uninstrument",
]

_LIBRARY = "pydantic_ai"  # agentrel.integration on the calls it makes (the module's name)
_SCOPE = "pydantic-ai"  # the instrumentation scope of pydantic-ai's own spans
_lock = threading.Lock()
_cls: Any = None
_tool_specs: dict[tuple[str, str | None], ai.CallSpec] = {}
_TOOL_SPECS_MAX = 1024


class _Tool:
    """The tool execution in progress (for ``on_tool_execute_error``, and for the run's end
    when the run is cancelled while the tool executes)."""

    __slots__ = ("error", "handle", "scope", "settled")

    def __init__(self, scope: ai.CallScope, handle: ai.CallHandle) -> None:
        self.scope = scope
        self.handle = handle
        self.error: BaseException | None = None
        self.settled = False  # ended by the run's end (it was cut off), not by the tool


_TOOL: ContextVar[_Tool | None] = ContextVar("agentrel.pydantic_ai.tool", default=None)


class _RunState:
    """Per-run state of the capability (model requests of one run are sequential)."""

    __slots__ = ("last_llm", "rejected", "run", "tools", "wasted")

    def __init__(self, run: Any = None) -> None:
        self.run = run  # the agentrel run wrap_run opened, if it opened one
        self.last_llm: ai.CallHandle | None = None
        self.wasted = False  # last_llm's tokens already moved to wasted
        self.rejected = False  # last_llm already counted as rejected
        self.tools: set[_Tool] = set()  # tool executions in progress


#: The state of the run in progress, set by ``wrap_run``. Not kept on the capability: one
#: capability serves every run of an agent, and a ``for_run`` handing pydantic-ai a copy per
#: run makes it treat the model as changed (a user's ``InstrumentedModel`` is then used
#: wrapped, under pydantic-ai's own instrumentation: two ``chat`` spans, tokens counted twice).
_RUN: ContextVar[_RunState | None] = ContextVar("agentrel.pydantic_ai.run", default=None)


def _run_state() -> _RunState:
    st = _RUN.get()
    return st if st is not None else _RunState()  # a hook outside a run: state of its own


#: The state of each run wrap_run opened, by ``id`` of the agentrel run, until it ends.
_RUNS: dict[int, _RunState] = {}


def _settle_run(run: Any) -> None:
    """Just before the run is classified (``ai.on_run_finish``): a tool still executing was
    cut off by the run's end (the run was cancelled, and pydantic-ai cancels its tool tasks
    only after the run has ended): it is one failed attempt of the run, ``CancelledError``,
    as LangGraph's and the Agents SDK's are."""
    st = _RUNS.pop(id(run), None)
    if st is None or st.run is not run:
        return
    for tool in list(st.tools):
        tool.settled = True
        # Ended here, in the run's context; the tool's own frame leaves the call's context
        # when the cancellation reaches it.
        tool.handle.finish(asyncio.CancelledError())
    st.tools.clear()


#: The names pydantic-ai's instrumentation version 2 gives its run and tool spans (version 3
#: and later: ``invoke_agent {agent}`` / ``execute_tool {tool}``, as agentrel's own).
_V2_RUN, _V2_TOOL = "agent run", "running tool"


def _framework_span(*names: str) -> Any:
    """pydantic-ai's own recording span for this operation, when it is the current span."""
    from opentelemetry import trace

    span = trace.get_current_span()
    if not span.is_recording() or getattr(span, "name", None) not in names:
        return None
    scope = getattr(span, "instrumentation_scope", None)
    if getattr(scope, "name", None) != _SCOPE:
        return None
    return span


def _tool_spec(name: str, description: str | None) -> ai.CallSpec:
    key = (name, description)
    spec = _tool_specs.get(key)
    if spec is None:
        spec = ai.tool_spec(name, description=description, library=_LIBRARY, register=False)
        if len(_tool_specs) < _TOOL_SPECS_MAX:  # names come from code; bounded all the same
            _tool_specs[key] = spec
    return spec


def _open_call(spec: ai.CallSpec, *span_names: str) -> tuple[ai.CallScope, ai.CallHandle]:
    span = _framework_span(*span_names)
    scope = (
        ai.call_on_span(spec, span, adoptable=spec.kind == "tool")
        if span is not None
        else ai.call(spec, adoptable=spec.kind == "tool")
    )
    return scope, scope.__enter__()


def _cause(exc: BaseException, wrappers: tuple[type[BaseException], ...]) -> BaseException:
    """What the tool raised, seen through pydantic-ai's wrappers of it."""
    if isinstance(exc, wrappers):
        cause = exc.__cause__
        if isinstance(cause, Exception):
            return cause
    return exc


def _client_is_instrumented(model: Any) -> bool:
    """The model's SDK client is an ``agentrel.instrument(...)`` proxy: it records the
    request's tokens (and its HTTP retries) in a call of its own."""
    client = getattr(model, "client", None)
    return client is not None and type(client).__module__.startswith("agentrel.")


def _attempt_error(attempt: Any) -> str:
    """``error.type`` of a ``ModelRequestAttempt``: the exception class it names, or
    ``rejected`` (a ``fallback_on`` handler or a hook refused its response)."""
    if getattr(attempt, "outcome", None) == "rejected":
        return "rejected"
    name = str(getattr(attempt, "error", None) or "").partition(":")[0].strip()
    return name if name.isidentifier() and len(name) <= 64 else "unknown"


def _failed_attempts(handle: ai.CallHandle, attempts: Any, *, last_failed: bool) -> None:
    """The attempts a ``FallbackModel`` or the ``ModelFallback`` capability moved on from,
    recorded as failed attempts of the request's call (their usage wasted). ``last_failed``:
    every model failed (a ``FallbackExceptionGroup``): the last attempt is the call's last."""
    if not attempts:
        return
    try:
        attempts = list(attempts)
        for i, attempt in enumerate(attempts):
            usage = attempt.usage
            if usage is not None:
                handle.add_tokens(input=usage.input_tokens or 0, output=usage.output_tokens or 0)
            handle.attempt_failed(error=_attempt_error(attempt))
            if not (last_failed and i == len(attempts) - 1):
                handle.next_attempt()
    except Exception as exc:
        ai.report_error("pydantic_ai.model", exc)


def _build() -> Any:
    """The capability class (built on first use: pydantic-ai is imported lazily)."""
    from dataclasses import dataclass, field

    from pydantic import ValidationError
    from pydantic_ai.capabilities import AbstractCapability
    from pydantic_ai.exceptions import (
        ApprovalRequired,
        CallDeferred,
        ModelRetry,
        SkipToolExecution,
        ToolFailedError,
        ToolRetryError,
        UnexpectedModelBehavior,
    )

    wrappers = (ToolRetryError, ToolFailedError, UnexpectedModelBehavior)
    not_failures = (SkipToolExecution, CallDeferred, ApprovalRequired)
    rejections = (ModelRetry, ValidationError, ToolRetryError)

    @dataclass
    class AgentrelCapability(AbstractCapability[Any]):
        """agentrel's pydantic-ai capability: runs, tool calls, model requests, rejections."""

        id: str | None = field(default="agentrel", kw_only=True)

        @classmethod
        def get_serialization_name(cls) -> str | None:
            return None  # not built from agent specs

        # -- runs --------------------------------------------------------------------------
        async def wrap_run(self, ctx: Any, *, handler: Any) -> Any:
            try:
                agent = ctx.agent
                name = (getattr(agent, "name", None) if agent is not None else None) or "agent"
                span = _framework_span(f"invoke_agent {name}", _V2_RUN)
                scope = ai.run_scope_on_span(name, span) if span is not None else ai.run_scope(name)
            except Exception as exc:
                ai.report_error("pydantic_ai.run", exc)
                return await handler()
            st = _RunState()
            try:
                with scope as opened:
                    if opened.opened and opened.run is not None:
                        st.run = opened.run
                        _RUNS[id(st.run)] = st  # until the run's end settles it
                    token = _RUN.set(st)
                    try:
                        return await handler()
                    finally:
                        _RUN.reset(token)
            finally:
                if st.run is not None and _RUNS.get(id(st.run)) is st:
                    del _RUNS[id(st.run)]

        # -- model requests ----------------------------------------------------------------
        async def wrap_model_request(self, ctx: Any, *, request_context: Any, handler: Any) -> Any:
            st = _run_state()
            try:
                model = request_context.model
                model_name = model.model_name
                scope, handle = _open_call(
                    ai.llm_spec(model.system, model_name), f"chat {model_name}"
                )
            except Exception as exc:
                ai.report_error("pydantic_ai.model", exc)
                return await handler(request_context)
            try:
                response = await handler(request_context)
            except BaseException as exc:
                _failed_attempts(handle, getattr(exc, "attempts", None), last_failed=True)
                scope.finish(exc)
                raise
            try:
                _failed_attempts(handle, response.failed_attempts, last_failed=False)
                if not _client_is_instrumented(model):  # else its own call, inside, has them
                    usage = response.usage
                    handle.add_tokens(
                        input=usage.input_tokens or 0, output=usage.output_tokens or 0
                    )
                handle.set_response_model(response.model_name)
            except Exception as exc:
                ai.report_error("pydantic_ai.model", exc)
            scope.finish()
            st.last_llm, st.wasted, st.rejected = handle, False, False
            return response

        def _waste_last(self) -> None:
            st = _run_state()
            if st.last_llm is not None and not st.wasted:
                st.wasted = True
                st.last_llm.waste()

        def _reject_last(self, ctx: Any, exc: BaseException) -> None:
            st = _run_state()
            if getattr(ctx, "partial_output", False) or not isinstance(exc, rejections):
                return
            if st.last_llm is not None and not st.rejected:
                st.rejected = st.wasted = True
                ai.reject_finished(st.last_llm, "output_validation")

        # -- tools -------------------------------------------------------------------------
        async def wrap_tool_execute(
            self, ctx: Any, *, call: Any, tool_def: Any, args: Any, handler: Any
        ) -> Any:
            try:
                name = call.tool_name
                spec = _tool_spec(name, tool_def.description)
                scope, handle = _open_call(spec, f"execute_tool {name}", _V2_TOOL)
            except Exception as exc:
                ai.report_error("pydantic_ai.tool", exc)
                return await handler(args)
            state = _Tool(scope, handle)
            st = _run_state()
            st.tools.add(state)
            token = _TOOL.set(state)
            try:
                result = await handler(args)
            except BaseException as exc:
                _TOOL.reset(token)
                st.tools.discard(state)
                if state.settled:  # cut off: the run's end already counted it
                    scope.finish(exc)
                    raise
                if isinstance(exc, not_failures):
                    scope.finish()
                else:
                    handle.attempt_failed(_cause(exc, wrappers))
                    scope.finish(exc)
                    self._waste_last()
                raise
            _TOOL.reset(token)
            st.tools.discard(state)
            if state.settled:
                scope.finish()
                return result
            if state.error is not None:  # recovered into a result for the model
                handle.attempt_failed(state.error)
                scope.finish(state.error)
                self._waste_last()
            else:
                scope.finish()
            return result

        async def on_tool_execute_error(
            self, ctx: Any, *, call: Any, tool_def: Any, args: Any, error: Exception
        ) -> Any:
            state = _TOOL.get()
            if state is not None and state.error is None:
                state.error = error
            try:
                raise error
            finally:
                del error

        async def wrap_tool_validate(
            self, ctx: Any, *, call: Any, tool_def: Any, args: Any, handler: Any
        ) -> Any:
            try:
                return await handler(args)
            except (ValidationError, ModelRetry, ToolRetryError) as exc:
                try:
                    with ai.call(_tool_spec(call.tool_name, tool_def.description)) as handle:
                        handle.attempt_failed(_cause(exc, wrappers))
                    self._waste_last()
                except Exception as err:
                    ai.report_error("pydantic_ai.tool", err)
                raise

        # -- outputs -----------------------------------------------------------------------
        async def wrap_output_validate(
            self, ctx: Any, *, output_context: Any, output: Any, handler: Any
        ) -> Any:
            try:
                return await handler(output)
            except BaseException as exc:
                self._reject_last(ctx, exc)
                raise

        async def wrap_output_process(
            self, ctx: Any, *, output_context: Any, output: Any, handler: Any
        ) -> Any:
            try:
                return await handler(output)
            except BaseException as exc:
                self._reject_last(ctx, exc)
                raise

    ai.on_run_finish(_settle_run)
    return AgentrelCapability


def _capability_class() -> Any:
    global _cls
    if _cls is None:
        with _lock:
            if _cls is None:
                _cls = _build()
    return _cls


def capability() -> Any:
    """A new agentrel capability, for ``Agent(capabilities=[...])`` or ``run(capabilities=...)``
    (``instrument()`` adds one to every run by itself)."""
    return _capability_class()()


def __getattr__(name: str) -> Any:
    if name == "AgentrelCapability":
        return _capability_class()
    raise AttributeError(name)


def _iter_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    try:
        cls = _capability_class()
        given = kwargs.get("capabilities")
        if not any(isinstance(c, cls) for c in (given or ())):
            kwargs = dict(kwargs)
            kwargs["capabilities"] = [*(given or ()), cls()]
    except Exception as exc:
        ai.report_error("pydantic_ai.instrument", exc)
    return wrapped(*args, **kwargs)


class PydanticAIInstrumentor(ai.BaseInstrumentor):
    """agentrel's pydantic-ai instrumentor (``PydanticAIInstrumentor().instrument()`` is
    ``instrument()``)."""

    name = "pydantic-ai"
    extra = "pydantic-ai"
    requires = (("pydantic_ai", "pydantic-ai-slim"),)

    _original_iter: Any = None

    def _instrument(self, **kwargs: Any) -> None:
        import wrapt
        from pydantic_ai import Agent

        _capability_class()
        self._original_iter = Agent.__dict__["iter"]
        Agent.iter = wrapt.FunctionWrapper(self._original_iter, _iter_wrapper)  # type: ignore[method-assign]

    def _uninstrument(self) -> None:
        from pydantic_ai import Agent

        Agent.iter = self._original_iter  # type: ignore[method-assign]
        self._original_iter = None


_INSTRUMENTOR = PydanticAIInstrumentor()


def instrument() -> None:
    """Count every pydantic-ai agent run (idempotent: a second call warns once; imports
    pydantic-ai, ``ImportError`` naming the extra when it is missing)."""
    _INSTRUMENTOR.instrument()


def uninstrument() -> None:
    """Restore ``Agent.iter`` exactly (runs already started keep their capability)."""
    _INSTRUMENTOR.uninstrument()


def instrumented() -> bool:
    """Whether ``instrument()`` is in effect."""
    return _INSTRUMENTOR.is_instrumented()


is_instrumented = instrumented
