"""agentrel for the OpenAI Agents SDK (``openai-agents``): one line of set-up.

    from agentrel.integrations import openai_agents
    openai_agents.instrument()          # once, at start-up; uninstrument() undoes it

Every ``Runner.run`` / ``run_sync`` / ``run_streamed`` is then an agentrel run named after the
starting agent, each function-tool execution a call (its ``failure_error_function`` message
to the model a failed attempt), each model turn an LLM call whose attempts are the runner's
own model retries (``ModelSettings(retry=...)``), with the tokens of the SDK's ``Usage``.

Why patches and not ``RunHooks`` / a ``TracingProcessor``: the hooks see the failure *string*
a tool returned (``on_tool_end``), never the exception or its type; ``on_llm_end`` is not
called for a failed model request and sees retries only as a request count; hooks run in
tasks of their own, so a ``@agentrel.tool`` inside the tool cannot be adopted (it would be
counted twice); and hooks are per run, not global. Tracing processors see no exception type
(the span error carries a message, redacted by default), see usage only for models that emit
generation spans, and see nothing when tracing is disabled. So the SDK's own execution
functions are wrapped (``wrapt``, reversible) at the few places where a run, a tool
execution, a model request, a retry wait and a handoff happen; the SDK's tracing is left as
it is. The SDK is imported only by ``instrument()``.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any

from .. import instrumentation as ai

__all__ = [
    "LIBRARY",
    "OpenAIAgentsInstrumentor",
    "instrument",
    "instrumented",
    "is_instrumented",
    "uninstrument",
]

LIBRARY = "openai_agents"
_log = logging.getLogger("agentrel")

#: (owner object, attribute name, original attribute) for every patch applied.
_PATCHES: list[tuple[Any, str, Any]] = []


class _RunState:
    """One ``Runner`` invocation: the agent now running, the last model turn's call (to waste
    its tokens when a tool call it asked for fails), the run's span (handoff events)."""

    __slots__ = ("agent", "last_llm", "span")

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.last_llm: ai.CallHandle | None = None
        self.span: Any = None


class _ToolState:
    __slots__ = ("failed", "handle", "tool")

    def __init__(self, handle: ai.CallHandle, tool: Any) -> None:
        self.handle = handle
        self.tool = tool
        self.failed = False


_STATE: ContextVar[_RunState | None] = ContextVar("agentrel.openai_agents.run", default=None)
_TOOL: ContextVar[_ToolState | None] = ContextVar("agentrel.openai_agents.tool", default=None)
_LLM: ContextVar[ai.CallHandle | None] = ContextVar("agentrel.openai_agents.llm", default=None)

_TOOL_SPECS: dict[tuple[str, str], ai.CallSpec] = {}
_SPEC_MAX = 1024


# --- helpers ----------------------------------------------------------------------------------
def _agent_name(agent: Any) -> str:
    name = getattr(agent, "name", None)
    return name if isinstance(name, str) and name else "agent"


def _tool_spec(tool: Any) -> ai.CallSpec:
    name = getattr(tool, "name", None)
    if not isinstance(name, str) or not name:
        name = "tool"
    description = getattr(tool, "description", None)
    description = description if isinstance(description, str) and description else None
    key = (name, description or "")
    spec = _TOOL_SPECS.get(key)
    if spec is None:
        spec = ai.tool_spec(name, description=description, library=LIBRARY, register=False)
        if len(_TOOL_SPECS) < _SPEC_MAX:
            _TOOL_SPECS[key] = spec
    return spec


def _llm_spec(kwargs: dict[str, Any]) -> ai.CallSpec:
    """The model from the bound ``get_retry_advice`` method the runner passes (a ``Model``):
    ``gen_ai.provider.name`` is ``openai`` for the SDK's OpenAI models, else the model class's
    name; the requested model is the instance's ``model`` string when it has one."""
    model = getattr(kwargs.get("get_retry_advice"), "__self__", None)
    cls = type(model)
    provider = "openai" if cls.__module__.startswith("agents.models.openai") else cls.__name__
    name = getattr(model, "model", None)
    return ai.llm_spec(provider, name if isinstance(name, str) and name else None)


def _tokens(handle: ai.CallHandle, usage: Any) -> None:
    if usage is None:
        return
    handle.add_tokens(
        input=getattr(usage, "input_tokens", 0) or 0,
        output=getattr(usage, "output_tokens", 0) or 0,
    )


def _tool_failed() -> None:
    """A tool call failed: the model turn that asked for it is asked again, so its tokens are
    wasted (no extra failure: the tool's is counted)."""
    st = _STATE.get()
    if st is not None and st.last_llm is not None:
        st.last_llm.waste()


# --- runs -------------------------------------------------------------------------------------
async def _run(wrapped: Any, agent: Any, args: Any, kwargs: Any, streamed: Any = None) -> Any:
    if not ai.is_recording():
        return await wrapped(*args, **kwargs)
    scope: Any = None
    token: Any = None
    try:
        st = _RunState(_agent_name(agent))
        scope = ai.run_scope(st.agent)
        scope.__enter__()
        token = _STATE.set(st)
        from opentelemetry import trace

        span = trace.get_current_span()
        st.span = span if span.is_recording() else None
    except Exception as exc:
        ai.report_error("openai_agents.run", exc)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        if scope is not None:
            _end_run(scope, token, exc)
        raise
    if scope is not None:
        cancelled: BaseException | None = None
        try:
            # A streamed run stopped by result.cancel(mode="after_turn") returns normally.
            mode = getattr(streamed, "_cancel_mode", "none")
            if streamed is not None and mode != "none" and streamed.final_output is None:
                cancelled = asyncio.CancelledError()
        except Exception as exc:
            ai.report_error("openai_agents.run", exc)
        _end_run(scope, token, cancelled)
    return result


def _end_run(scope: Any, token: Any, exc: BaseException | None) -> None:
    try:
        if exc is not None:
            from agents.exceptions import OutputGuardrailTripwireTriggered

            if isinstance(exc, OutputGuardrailTripwireTriggered):
                # The final output was thrown away by a guardrail: a rejection of the model
                # turn that produced it (a failure of the run, its tokens wasted).
                ai.reject("output_guardrail")
    except Exception as err:
        ai.report_error("openai_agents.run", err)
    try:
        scope.__exit__(type(exc) if exc is not None else None, exc, None)
    except Exception as err:  # pragma: no cover - run_scope guards itself
        ai.report_error("openai_agents.run", err)
    if token is not None:
        try:
            _STATE.reset(token)
        except Exception as err:  # pragma: no cover - context misuse
            ai.report_error("openai_agents.context", err)


async def _runner_run(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    agent = args[0] if args else kwargs.get("starting_agent")
    return await _run(wrapped, agent, args, kwargs)


async def _start_streaming(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    agent = kwargs.get("starting_agent", args[2] if len(args) > 2 else None)
    streamed = kwargs.get("streamed_result", args[1] if len(args) > 1 else None)
    return await _run(wrapped, agent, args, kwargs, streamed)


# --- tools ------------------------------------------------------------------------------------
async def _invoke_tool(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    tool = kwargs.get("function_tool")
    if tool is None or not ai.is_recording():
        return await wrapped(*args, **kwargs)
    scope: Any = None
    ts: _ToolState | None = None
    token: Any = None
    try:
        scope = ai.call(_tool_spec(tool), adoptable=True)
        ts = _ToolState(scope.__enter__(), tool)
        token = _TOOL.set(ts)
    except Exception as exc:
        ai.report_error("openai_agents.tool", exc)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        _end_tool(scope, ts, token, exc, False)
        raise
    _end_tool(scope, ts, token, None, result)
    return result


def _end_tool(scope: Any, ts: _ToolState | None, token: Any, exc: Any, result: Any) -> None:
    if token is not None:
        try:
            _TOOL.reset(token)
        except Exception as err:  # pragma: no cover - context misuse
            ai.report_error("openai_agents.context", err)
    if scope is None or ts is None:
        return
    try:
        failed = exc is not None or ts.failed
        if not failed and getattr(result, "is_sdk_generated_error", False):
            # The SDK's own timeout message ("Tool 'x' timed out after ...") handed to the
            # model (timeout_behavior="error_as_result"): a failed attempt.
            ts.handle.attempt_failed(error="ToolTimeoutError")
            failed = True
        if exc is not None:
            scope.finish(exc)
        else:
            scope.finish(flagged=failed)
        if failed:
            _tool_failed()
    except Exception as err:
        ai.report_error("openai_agents.tool", err)


async def _failure_message(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``failure_error_function``: the tool's exception became a message for the model."""
    result = await wrapped(*args, **kwargs)
    if result is not None:
        try:
            ts = _TOOL.get()
            if ts is not None and not ts.failed and ts.tool is kwargs.get("function_tool"):
                error = kwargs.get("error")
                ts.handle.attempt_failed(error if isinstance(error, BaseException) else None)
                ts.failed = True
        except Exception as exc:
            ai.report_error("openai_agents.tool", exc)
    return result


# --- model requests -----------------------------------------------------------------------------
class _Attempts:
    """The attempts of one model turn: each request the runner sends is one."""

    __slots__ = ("handle", "open", "started")

    def __init__(self, handle: ai.CallHandle) -> None:
        self.handle = handle
        self.started = False
        self.open = False

    def begin(self) -> None:
        if self.started:
            if self.open:  # a request abandoned by the runner (its timeout): failed
                self.handle.attempt_failed(error="ModelTimeoutError")
            self.handle.next_attempt()
        self.started = True
        self.open = True

    def failed(self, exc: BaseException) -> None:
        if self.open and isinstance(exc, Exception):
            self.open = False
            self.handle.attempt_failed(exc)


def _open_llm(kwargs: dict[str, Any]) -> tuple[Any, _Attempts, Any] | None:
    try:
        scope = ai.call(_llm_spec(kwargs))
        handle = scope.__enter__()
        st = _STATE.get()
        if st is not None:
            handle.set_span_attributes({ai.AGENT_NAME: st.agent})
        return scope, _Attempts(handle), _LLM.set(handle)
    except Exception as exc:
        ai.report_error("openai_agents.llm", exc)
        return None


def _close_llm(opened: tuple[Any, _Attempts, Any], exc: BaseException | None) -> None:
    scope, att, token = opened
    try:
        _LLM.reset(token)
    except Exception as err:  # a stream closed from another context
        ai.report_error("openai_agents.context", err)
    try:
        scope.finish(exc)
        st = _STATE.get()
        if st is not None and exc is None:
            st.last_llm = att.handle
    except Exception as err:
        ai.report_error("openai_agents.llm", err)


async def _get_response(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    get_response = kwargs.get("get_response")
    if get_response is None or not ai.is_recording():
        return await wrapped(*args, **kwargs)
    opened = _open_llm(kwargs)
    if opened is None:
        return await wrapped(*args, **kwargs)
    att = opened[1]

    async def attempt() -> Any:
        try:
            att.begin()
        except Exception as exc:
            ai.report_error("openai_agents.llm", exc)
        try:
            response = await get_response()
        except BaseException as exc:
            att.failed(exc)
            raise
        try:
            _tokens(att.handle, getattr(response, "usage", None))
            att.open = False
        except Exception as exc:
            ai.report_error("openai_agents.llm", exc)
        return response

    try:
        result = await wrapped(*args, **{**kwargs, "get_response": attempt})
    except BaseException as exc:
        _close_llm(opened, exc)
        raise
    _close_llm(opened, None)
    return result


def _stream_response(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    if kwargs.get("get_stream") is None or not ai.is_recording():
        return wrapped(*args, **kwargs)
    return _stream(wrapped, args, kwargs)


async def _stream(wrapped: Any, args: Any, kwargs: Any) -> AsyncIterator[Any]:
    opened = _open_llm(kwargs)
    if opened is None:
        async for event in wrapped(*args, **kwargs):
            yield event
        return
    att = opened[1]
    get_stream = kwargs["get_stream"]

    def stream() -> AsyncIterator[Any]:
        try:
            att.begin()
        except Exception as exc:
            ai.report_error("openai_agents.llm", exc)
        return _attempt_stream(get_stream(), att)

    completed = False
    inner = wrapped(*args, **{**kwargs, "get_stream": stream})
    try:
        async for event in inner:
            if getattr(event, "type", None) == "response.completed":
                try:
                    response = getattr(event, "response", None)
                    _tokens(att.handle, getattr(response, "usage", None))
                    att.handle.set_response_model(getattr(response, "model", None))
                    att.open = False
                    completed = True
                except Exception as exc:
                    ai.report_error("openai_agents.llm", exc)
            yield event
    except GeneratorExit:
        await inner.aclose()
        # The runner stopped reading (a failed/incomplete terminal event it raises on).
        if completed:
            _close_llm(opened, None)
        else:
            att.handle.attempt_failed(error="stream_closed")
            _close_flagged(opened)
        raise
    except BaseException as exc:
        _close_llm(opened, exc)
        raise
    _close_llm(opened, None)


def _close_flagged(opened: tuple[Any, _Attempts, Any]) -> None:
    scope, _, token = opened
    try:
        _LLM.reset(token)
    except Exception as err:
        ai.report_error("openai_agents.context", err)
    try:
        scope.finish(flagged=True)
    except Exception as err:
        ai.report_error("openai_agents.llm", err)


async def _attempt_stream(stream: Any, att: _Attempts) -> AsyncIterator[Any]:
    """One streamed request: an exception out of it fails the attempt."""
    try:
        async for event in stream:
            yield event
    except BaseException as exc:
        att.failed(exc)
        raise
    finally:
        aclose = getattr(stream, "aclose", None)
        if callable(aclose):
            await aclose()


async def _sleep_for_retry(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """The runner's model-retry backoff: a retry wait of the model turn."""
    handle = _LLM.get()
    if handle is not None:
        try:
            delay = args[0] if args else kwargs.get("delay", 0.0)
            if isinstance(delay, (int, float)) and delay > 0:
                handle.retry_wait(float(delay))
        except Exception as exc:
            ai.report_error("openai_agents.llm", exc)
    return await wrapped(*args, **kwargs)


# --- handoffs ---------------------------------------------------------------------------------
async def _execute_handoffs(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = await wrapped(*args, **kwargs)
    st = _STATE.get()
    if st is not None:
        try:
            to = getattr(getattr(result, "next_step", None), "new_agent", None)
            if to is not None:
                frm = _agent_name(kwargs.get("public_agent"))
                st.agent = _agent_name(to)
                if st.span is not None:
                    st.span.add_event(
                        ai.HANDOFF_EVENT,
                        {ai.HANDOFF_FROM: frm, ai.HANDOFF_TO: st.agent},
                    )
        except Exception as exc:
            ai.report_error("openai_agents.handoff", exc)
    return result


# --- set-up -----------------------------------------------------------------------------------
#: (module, attribute path, wrapper, required). These are the SDK's private execution
#: functions: a version that moved one is instrumented without it, with one warning naming
#: what is missing (``required``: without it a part of what is counted is missing; the others
#: are alternatives or refinements, skipped quietly).
_TARGETS: tuple[tuple[str, str, Callable[..., Any], bool], ...] = (
    ("agents.run", "AgentRunner.run", _runner_run, True),
    ("agents.run", "start_streaming", _start_streaming, True),
    (
        "agents.run_internal.tool_execution",
        "_invoke_function_tool_with_metadata",
        _invoke_tool,
        True,
    ),
    ("agents.tool", "_invoke_function_tool_with_metadata", _invoke_tool, False),
    ("agents.tool", "maybe_invoke_function_tool_failure_error_function", _failure_message, True),
    (
        "agents.run_internal.tool_execution",
        "maybe_invoke_function_tool_failure_error_function",
        _failure_message,
        False,
    ),
    ("agents.run_internal.run_loop", "get_response_with_retry", _get_response, True),
    ("agents.run_internal.run_loop", "stream_response_with_retry", _stream_response, True),
    ("agents.run_internal.model_retry", "_sleep_for_retry", _sleep_for_retry, False),
    ("agents.run_internal.turn_resolution", "execute_handoffs", _execute_handoffs, False),
)


def _resolve(module_name: str, path: str) -> tuple[Any, str, Any] | None:
    """(owner, attribute, original) of a hook target, or ``None`` when this SDK lacks it."""
    try:
        owner: Any = importlib.import_module(module_name)
        *parents, attr = path.split(".")
        for p in parents:
            owner = getattr(owner, p)
    except (ImportError, AttributeError):
        return None
    original = owner.__dict__.get(attr) if isinstance(owner, type) else getattr(owner, attr, None)
    return (owner, attr, original) if callable(original) else None


class OpenAIAgentsInstrumentor(ai.BaseInstrumentor):
    """agentrel's OpenAI Agents SDK instrumentor (``OpenAIAgentsInstrumentor().instrument()``
    is ``instrument()``)."""

    name = "OpenAI Agents SDK"
    extra = "openai-agents"
    requires = (("agents", "openai-agents"),)

    def _instrument(self, **kwargs: Any) -> None:
        import wrapt

        resolved: list[tuple[Any, str, Any, Callable[..., Any]]] = []
        missing: list[str] = []
        for module_name, path, wrapper, required in _TARGETS:
            found = _resolve(module_name, path)
            if found is None:
                if required:
                    missing.append(f"{module_name}.{path}")
                continue
            resolved.append((*found, wrapper))
        if missing:
            ai.warn_once(
                "openai_agents:missing",
                "agentrel: this openai-agents version is not fully supported (%s not found; "
                ">= 0.24 is): the rest is instrumented, those hooks are not",
                ", ".join(missing),
            )
        try:
            for owner, attr, original, wrapper in resolved:
                setattr(owner, attr, wrapt.FunctionWrapper(original, wrapper))
                _PATCHES.append((owner, attr, original))
        except Exception:
            self._uninstrument()
            raise

    def _uninstrument(self) -> None:
        while _PATCHES:
            owner, attr, original = _PATCHES.pop()
            setattr(owner, attr, original)


_INSTRUMENTOR = OpenAIAgentsInstrumentor()


def instrumented() -> bool:
    """Whether ``instrument()`` is in effect."""
    return _INSTRUMENTOR.is_instrumented()


is_instrumented = instrumented


def instrument() -> None:
    """Hook the OpenAI Agents SDK (idempotent: a second call warns once and returns).
    Requires ``openai-agents`` >= 0.24 (``pip install 'agentrel-otel[openai-agents]'``; without it,
    an ``ImportError`` says so); a version without one of the private functions hooked is
    instrumented without it, with one warning."""
    _INSTRUMENTOR.instrument()


def uninstrument() -> None:
    """Remove every hook ``instrument()`` set (the SDK's functions are its own again)."""
    _INSTRUMENTOR.uninstrument()
