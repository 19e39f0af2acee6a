"""LangGraph / LangChain (``pip install 'agentrel[langgraph]'``): agent runs, tool calls, node
retries and model requests counted exactly, with no decorator on any tool.

    from agentrel.integrations import langgraph as agentrel_langgraph
    agentrel_langgraph.instrument()            # once, at start-up (uninstrument() undoes it)

What ``instrument()`` hooks (every patch is a ``wrapt`` wrapper, removed by ``uninstrument()``):

* ``Pregel.invoke`` / ``ainvoke`` / ``stream`` / ``astream`` (every compiled graph, the
  prebuilt ReAct agent included): each graph execution is a run named after the graph
  (``config["run_name"]``, else ``graph.get_name()``); a graph running inside another one's
  node joins that run; a graph running inside a tool is a run of its own (a sub-agent).
* ``BaseTool.run`` / ``arun`` (what ``ToolNode`` and ``tool.invoke`` go through): each tool
  execution is an adoptable call, so an ``@agentrel.tool`` on the tool's function becomes that
  call instead of a second one. An exception leaving the tool is a failed attempt (the same
  exception propagates); a ``ToolMessage(status="error")`` the tool's own
  ``handle_tool_error`` / ``handle_validation_error`` made is a failed attempt whose
  ``error.type`` is the handled exception's class.
* LangGraph's node retry loop (``RetryPolicy``): a node execution with a retry policy is one
  call named after the node whose attempts are the node's attempts; the measured pause between
  them is the retry wait.
* LangChain's callback system (a handler added to every callback manager through
  ``langchain_core.tracers.context.register_configure_hook``): each chat-model (or LLM)
  request is an LLM call with the tokens of its ``usage_metadata``. A model response whose
  tool calls failed is wasted once the failure is known (the model is asked again).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from .. import instrumentation as ai

__all__ = ["callback_handler", "instrument", "instrumented", "uninstrument"]

log = logging.getLogger("agentrel.integrations.langgraph")

LIBRARY = "langgraph"

_lock = threading.Lock()
_installed = False
_llm_on = False
_patches: list[tuple[Any, str, Any]] = []
_remove_hook: Any = None
_hook_registered = False
_handler: Any = None

#: the tool call our BaseTool wrapper opened, for the handled-error hooks in its frame.
_TOOL_CALL: contextvars.ContextVar[ai.CallHandle | None] = contextvars.ContextVar(
    "agentrel_langgraph_tool", default=None
)

#: LLM calls in flight, by LangChain run id: (private context, scope, handle, run).
_llm_calls: dict[Any, tuple[contextvars.Context, Any, ai.CallHandle, Any]] = {}
#: finished model responses by (run, tool call id), wasted if that tool call fails.
_responses: dict[tuple[Any, str], ai.CallHandle] = {}

_MAX_SPECS = 512
_tool_specs: dict[tuple[str, str | None], ai.CallSpec] = {}
_node_specs: dict[str, ai.CallSpec] = {}


# --- specs ------------------------------------------------------------------------------------
def _tool_spec(tool: Any) -> ai.CallSpec:
    name = str(getattr(tool, "name", None) or type(tool).__name__)
    description = getattr(tool, "description", None)
    if not isinstance(description, str):
        description = None
    key = (name, description)
    spec = _tool_specs.get(key)
    if spec is None:
        spec = ai.tool_spec(name, description=description, library=LIBRARY, register=False)
        if len(_tool_specs) < _MAX_SPECS:
            _tool_specs[key] = spec
    return spec


def _node_spec(name: str) -> ai.CallSpec:
    spec = _node_specs.get(name)
    if spec is None:
        spec = ai.tool_spec(name, library=LIBRARY, register=False)
        # A node's attempts are made of the calls inside it (a model request, tools): the run
        # counts a node attempt only when no call ran inside it.
        spec.composite = True
        spec.span_attrs["agentrel.langgraph.node"] = name
        if len(_node_specs) < _MAX_SPECS:
            _node_specs[name] = spec
    return spec


# --- runs: Pregel.invoke / ainvoke / stream / astream ----------------------------------------
def _run_name(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    try:
        config = kwargs.get("config", args[1] if len(args) > 1 else None)
        if isinstance(config, dict):
            name = config.get("run_name")
            if isinstance(name, str) and name:
                return name
        name = instance.get_name()
        if isinstance(name, str) and name:
            return name
    except Exception as exc:
        ai.report_error("langgraph.run_name", exc)
    return "LangGraph"


def _scope(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return ai.run_scope(_run_name(instance, args, kwargs))
    except Exception as exc:
        ai.report_error("langgraph.run", exc)
        return None


def _invoke(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    scope = _scope(instance, args, kwargs)
    if scope is None:
        return wrapped(*args, **kwargs)
    with scope:
        return wrapped(*args, **kwargs)


async def _ainvoke(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    scope = _scope(instance, args, kwargs)
    if scope is None:
        return await wrapped(*args, **kwargs)
    async with scope:
        return await wrapped(*args, **kwargs)


def _open_run(name: str) -> tuple[Any, Any]:
    """Open (or join) a run in a private context: (scope, run) when this scope opened it,
    (None, None) when it joined an enclosing run."""
    try:
        ctx = contextvars.copy_context()
        scope = ai.run_scope(name)
        handle = ctx.run(scope.__enter__)
    except Exception as exc:
        ai.report_error("langgraph.run", exc)
        return None, None
    if not handle.opened or handle.run is None:
        return None, None
    return (ctx, scope), handle.run


def _close_run(opened: Any, exc: BaseException | None) -> None:
    ctx, scope = opened
    ctx.run(scope.__exit__, type(exc) if exc is not None else None, exc, None)


def _stream(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return _stream_run(wrapped(*args, **kwargs), _run_name(instance, args, kwargs))


def _stream_run(gen: Iterator[Any], name: str) -> Iterator[Any]:
    opened, run = _open_run(name)
    if opened is None:
        yield from gen
        return
    exc: BaseException | None = None
    try:
        while True:
            with ai.activate(run):
                try:
                    chunk = next(gen)
                except StopIteration:
                    return
            try:
                yield chunk
            except GeneratorExit:
                with ai.activate(run):
                    gen.close()  # type: ignore[attr-defined]
                raise
    except BaseException as e:
        exc = e
        raise
    finally:
        _close_run(opened, exc)


def _astream(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return _astream_run(wrapped(*args, **kwargs), _run_name(instance, args, kwargs))


async def _astream_run(agen: AsyncIterator[Any], name: str) -> AsyncIterator[Any]:
    opened, run = _open_run(name)
    if opened is None:
        async for chunk in agen:
            yield chunk
        return
    exc: BaseException | None = None
    try:
        while True:
            with ai.activate(run):
                try:
                    chunk = await agen.__anext__()
                except StopAsyncIteration:
                    return
            try:
                yield chunk
            except GeneratorExit:
                with ai.activate(run):
                    await agen.aclose()  # type: ignore[attr-defined]
                raise
    except BaseException as e:
        exc = e
        raise
    finally:
        _close_run(opened, exc)


# --- tools: BaseTool.run / arun -----------------------------------------------------------------
def _is_error(result: Any) -> bool:
    """An error ToolMessage (the tool's own handler turned an exception into it)."""
    try:
        return (
            getattr(result, "status", None) == "error" and getattr(result, "type", None) == "tool"
        )
    except Exception as exc:
        ai.report_error("langgraph.tool", exc)
        return False


def _settle_response(kwargs: dict[str, Any], failed: bool) -> None:
    """A tool call ended: if it failed, the model response that asked for it is wasted."""
    try:
        tcid = kwargs.get("tool_call_id")
        run = ai.current_run()
        if not isinstance(tcid, str) or run is None:
            return
        response = _responses.pop((run, tcid), None)
        if failed and response is not None:
            response.waste()
    except Exception as exc:
        ai.report_error("langgraph.waste", exc)


def _tool_scope(tool: Any) -> Any:
    try:
        return ai.call(_tool_spec(tool), adoptable=True)
    except Exception as exc:
        ai.report_error("langgraph.tool", exc)
        return None


def _tool_run(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if not ai.is_recording():
        return wrapped(*args, **kwargs)
    scope = _tool_scope(instance)
    if scope is None:
        return wrapped(*args, **kwargs)
    handle = scope.__enter__()
    token = _TOOL_CALL.set(handle if handle.recording else None)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        _TOOL_CALL.reset(token)
        scope.finish(exc)
        _settle_response(kwargs, True)
        raise
    _TOOL_CALL.reset(token)
    # An error ToolMessage: the exception the tool's handler saw closed the attempt (the
    # handler hook); "flagged" fails the call without counting that failure again.
    flagged = _is_error(result)
    scope.finish(None, flagged=flagged)
    _settle_response(kwargs, flagged)
    return result


async def _tool_arun(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if not ai.is_recording():
        return await wrapped(*args, **kwargs)
    scope = _tool_scope(instance)
    if scope is None:
        return await wrapped(*args, **kwargs)
    handle = scope.__enter__()
    token = _TOOL_CALL.set(handle if handle.recording else None)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        _TOOL_CALL.reset(token)
        scope.finish(exc)
        _settle_response(kwargs, True)
        raise
    _TOOL_CALL.reset(token)
    flagged = _is_error(result)
    scope.finish(None, flagged=flagged)
    _settle_response(kwargs, flagged)
    return result


def _handled_error(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """langchain_core's ``_handle_tool_error`` / ``_handle_validation_error``: the tool's own
    handler turns an exception into a message; the exception closes the attempt as failed."""
    handle = _TOOL_CALL.get()
    if handle is not None and args and isinstance(args[0], BaseException):
        handle.attempt_failed(args[0])
    return wrapped(*args, **kwargs)


# --- node retries: run_with_retry / arun_with_retry --------------------------------------------
class _Attempts:
    """The attempts of one node execution under a RetryPolicy."""

    __slots__ = ("failed_at", "handle", "started")

    def __init__(self, handle: ai.CallHandle) -> None:
        self.handle = handle
        self.started = False
        self.failed_at: float | None = None

    def begin(self) -> None:
        if self.started:
            if self.failed_at is not None:
                self.handle.retry_wait(time.perf_counter() - self.failed_at)
                self.failed_at = None
            self.handle.next_attempt()
        self.started = True

    def failed(self, exc: BaseException) -> None:
        self.handle.attempt_failed(exc)
        self.failed_at = time.perf_counter()


def _attempt_proc(proc: Any, attempts: _Attempts) -> Any:
    import wrapt

    class AttemptProc(wrapt.ObjectProxy[Any]):
        def invoke(self, *a: Any, **k: Any) -> Any:
            attempts.begin()
            try:
                return self.__wrapped__.invoke(*a, **k)
            except Exception as exc:
                attempts.failed(exc)
                raise

        async def ainvoke(self, *a: Any, **k: Any) -> Any:
            attempts.begin()
            try:
                return await self.__wrapped__.ainvoke(*a, **k)
            except Exception as exc:
                attempts.failed(exc)
                raise

        async def astream(self, *a: Any, **k: Any) -> AsyncIterator[Any]:
            attempts.begin()
            try:
                async for chunk in self.__wrapped__.astream(*a, **k):
                    yield chunk
            except Exception as exc:
                attempts.failed(exc)
                raise

    return AttemptProc(proc)


def _retry_task(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The task when it runs under a retry policy, else None."""
    try:
        task = args[0] if args else kwargs.get("task")
        policy = args[1] if len(args) > 1 else kwargs.get("retry_policy")
        if task is None or not (getattr(task, "retry_policy", None) or policy):
            return None
        return task
    except Exception as exc:
        ai.report_error("langgraph.retry", exc)
        return None


def _with_task(
    task: Any, attempts: _Attempts, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    import dataclasses

    new = dataclasses.replace(task, proc=_attempt_proc(task.proc, attempts))
    if args:
        return (new, *args[1:]), kwargs
    return args, {**kwargs, "task": new}


def _node_scope(task: Any) -> Any:
    try:
        return ai.call(_node_spec(str(task.name)))
    except Exception as exc:
        ai.report_error("langgraph.retry", exc)
        return None


def _run_with_retry(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    task = _retry_task(args, kwargs) if ai.is_recording() else None
    scope = _node_scope(task) if task is not None else None
    if scope is None:
        return wrapped(*args, **kwargs)
    with scope as handle:
        try:
            args, kwargs = _with_task(task, _Attempts(handle), args, kwargs)
        except Exception as exc:
            ai.report_error("langgraph.retry", exc)
        return wrapped(*args, **kwargs)


async def _arun_with_retry(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    task = _retry_task(args, kwargs) if ai.is_recording() else None
    scope = _node_scope(task) if task is not None else None
    if scope is None:
        return await wrapped(*args, **kwargs)
    async with scope as handle:
        try:
            args, kwargs = _with_task(task, _Attempts(handle), args, kwargs)
        except Exception as exc:
            ai.report_error("langgraph.retry", exc)
        return await wrapped(*args, **kwargs)


# --- model requests: LangChain callbacks ------------------------------------------------------
def _model_of(metadata: Any, kwargs: dict[str, Any]) -> tuple[str, str | None]:
    provider, model = None, None
    if isinstance(metadata, dict):
        provider = metadata.get("ls_provider")
        model = metadata.get("ls_model_name")
    params = kwargs.get("invocation_params")
    if not model and isinstance(params, dict):
        model = params.get("model") or params.get("model_name")
    provider = provider if isinstance(provider, str) and provider else "langchain"
    return provider, model if isinstance(model, str) and model else None


def _llm_start(run_id: Any, metadata: Any, kwargs: dict[str, Any]) -> None:
    if not ai.is_recording() or run_id in _llm_calls:
        return
    provider, model = _model_of(metadata, kwargs)
    ctx = contextvars.copy_context()
    scope = ai.call(ai.llm_spec(provider, model))
    handle = ctx.run(scope.__enter__)
    if handle.recording:
        _llm_calls[run_id] = (ctx, scope, handle, ctx.run(ai.current_run))


def _usage(response: Any) -> tuple[int, int, str | None, list[str]]:
    """(input, output, response model, tool call ids) of an LLMResult."""
    inp = out = 0
    model: str | None = None
    ids: list[str] = []
    seen = False
    for gens in getattr(response, "generations", None) or ():
        for gen in gens:
            msg = getattr(gen, "message", None)
            if msg is None:
                continue
            usage = getattr(msg, "usage_metadata", None)
            if usage:
                seen = True
                inp += int(usage.get("input_tokens") or 0)
                out += int(usage.get("output_tokens") or 0)
            meta = getattr(msg, "response_metadata", None) or {}
            m = meta.get("model_name") or meta.get("model")
            if isinstance(m, str) and m:
                model = m
            for tc in getattr(msg, "tool_calls", None) or ():
                tcid = tc.get("id")
                if isinstance(tcid, str):
                    ids.append(tcid)
    if not seen:
        llm_output = getattr(response, "llm_output", None) or {}
        usage = llm_output.get("token_usage") or llm_output.get("usage") or {}
        if isinstance(usage, dict):
            inp = int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0)
            out = int(usage.get("completion_tokens") or usage.get("output_tokens") or 0)
    return inp, out, model, ids


def _llm_end(run_id: Any, response: Any, exc: BaseException | None) -> None:
    entry = _llm_calls.pop(run_id, None)
    if entry is None:
        return
    ctx, scope, handle, run = entry
    ids: list[str] = []
    try:
        if response is not None:
            inp, out, model, ids = _usage(response)
            handle.add_tokens(input=inp, output=out)
            handle.set_response_model(model)
    except Exception as err:
        ai.report_error("langgraph.llm", err)
    ctx.run(scope.finish, exc)
    if exc is None and run is not None:
        for tcid in ids:
            _responses[(run, tcid)] = handle


def _forget_run(run: Any) -> None:
    """Just before a run is classified: end LLM calls nobody ended, drop its responses."""
    for key in list(_responses):
        if key[0] is run:
            _responses.pop(key, None)
    for run_id, entry in list(_llm_calls.items()):
        if entry[3] is run and _llm_calls.pop(run_id, None) is not None:
            entry[0].run(entry[1].finish, None)


def _make_handler() -> Any:
    from langchain_core.callbacks import BaseCallbackHandler

    class AgentrelCallbackHandler(BaseCallbackHandler):
        """agentrel's LangChain callback handler: each model request is an LLM call."""

        run_inline = True  # called in the caller's frame, in order, in async code too
        raise_error = False
        # Only model requests: LangChain skips this handler for every other event.
        ignore_chain = True
        ignore_agent = True
        ignore_retriever = True
        ignore_retry = True
        ignore_custom_event = True

        def on_chat_model_start(
            self, serialized: Any, messages: Any, *, run_id: Any, metadata: Any = None, **kw: Any
        ) -> None:
            try:
                _llm_start(run_id, metadata, kw)
            except Exception as exc:
                ai.report_error("langgraph.llm", exc)

        def on_llm_start(
            self, serialized: Any, prompts: Any, *, run_id: Any, metadata: Any = None, **kw: Any
        ) -> None:
            try:
                _llm_start(run_id, metadata, kw)
            except Exception as exc:
                ai.report_error("langgraph.llm", exc)

        def on_llm_end(self, response: Any, *, run_id: Any, **kw: Any) -> None:
            try:
                _llm_end(run_id, response, None)
            except Exception as exc:
                ai.report_error("langgraph.llm", exc)

        def on_llm_error(self, error: BaseException, *, run_id: Any, **kw: Any) -> None:
            try:
                _llm_end(run_id, None, error)
            except Exception as exc:
                ai.report_error("langgraph.llm", exc)

    return AgentrelCallbackHandler()


def callback_handler() -> Any:
    """agentrel's LangChain callback handler (one per process). ``instrument()`` adds it to
    every callback manager; without ``instrument()`` pass it yourself:
    ``graph.invoke(..., config={"callbacks": [callback_handler()]})``. It is never added
    twice to one manager."""
    global _handler
    with _lock:
        if _handler is None:
            _handler = _make_handler()
        return _handler


class _HookVar:
    """What langchain_core's configure hook reads: the handler while instrumented (and LLM
    counting is on), else ``None`` (then the hook adds nothing)."""

    def get(self) -> Any:
        return _handler if _installed and _llm_on else None


_HOOK = _HookVar()


# --- instrument / uninstrument -----------------------------------------------------------------
def _wrap(owner: Any, name: str, wrapper: Any) -> None:
    import wrapt

    original = owner.__dict__[name]
    wrapt.wrap_function_wrapper(owner, name, wrapper)
    _patches.append((owner, name, original))


def instrument(*, llm: bool = True) -> None:
    """Count LangGraph runs, tool calls, node retries and (``llm=True``) model requests.

    Idempotent: a second call logs and returns. ``llm=False`` leaves model requests to an
    instrumented provider client (``agentrel.instrument(client)``) instead.
    """
    global _installed, _llm_on, _remove_hook, _hook_registered
    import langchain_core.tools.base as tools_base
    from langchain_core.tools import BaseTool
    from langchain_core.tracers.context import register_configure_hook
    from langgraph.pregel import Pregel, _runner

    callback_handler()
    with _lock:
        if _installed:
            log.info("agentrel: LangGraph already instrumented")
            return
        try:
            _wrap(Pregel, "invoke", _invoke)
            _wrap(Pregel, "ainvoke", _ainvoke)
            _wrap(Pregel, "stream", _stream)
            _wrap(Pregel, "astream", _astream)
            _wrap(BaseTool, "run", _tool_run)
            _wrap(BaseTool, "arun", _tool_arun)
            for helper in ("_handle_tool_error", "_handle_validation_error"):
                if helper in vars(tools_base):
                    _wrap(tools_base, helper, _handled_error)
            _wrap(_runner, "run_with_retry", _run_with_retry)
            _wrap(_runner, "arun_with_retry", _arun_with_retry)
        except Exception:
            _unpatch()
            raise
        if not _hook_registered:
            # langchain_core has no way to remove a configure hook: it stays registered and
            # adds nothing while agentrel is not instrumented (``_HookVar.get`` is None).
            register_configure_hook(_HOOK, inheritable=True)  # type: ignore[arg-type]
            _hook_registered = True
        _remove_hook = ai.on_run_finish(_forget_run)
        _llm_on = llm
        _installed = True


def _unpatch() -> None:
    while _patches:
        owner, name, original = _patches.pop()
        setattr(owner, name, original)


def uninstrument() -> None:
    """Remove every wrapper; the callback handler is no longer added to new managers."""
    global _installed, _llm_on, _remove_hook
    with _lock:
        if not _installed:
            return
        _unpatch()
        if _remove_hook is not None:
            _remove_hook()
            _remove_hook = None
        _llm_calls.clear()
        _responses.clear()
        _installed = _llm_on = False


def instrumented() -> bool:
    """Whether ``instrument()`` is in effect."""
    return _installed
