"""LangGraph / LangChain (``pip install 'agentrel-otel[langgraph]'``): agent runs, tool calls, node
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
from ._langgraph_llm import forget_run, llm_calls, make_handler, responses

__all__ = [
    "LangGraphInstrumentor",
    "callback_handler",
    "instrument",
    "instrumented",
    "is_instrumented",
    "uninstrument",
]

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
        spec.span_attrs[ai.LANGGRAPH_NODE] = name
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
        response = responses.pop((run, tcid), None)
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


def callback_handler() -> Any:
    """agentrel's LangChain callback handler (one per process). ``instrument()`` adds it to
    every callback manager; without ``instrument()`` pass it yourself:
    ``graph.invoke(..., config={"callbacks": [callback_handler()]})``. It is never added
    twice to one manager."""
    global _handler
    with _lock:
        if _handler is None:
            _handler = make_handler()
        return _handler


class _HookVar:
    """What langchain_core's configure hook reads: the handler while instrumented (and LLM
    counting is on), else ``None`` (then the hook adds nothing)."""

    def get(self) -> Any:
        return _handler if _installed and _llm_on else None


_HOOK = _HookVar()


# --- instrument / uninstrument -----------------------------------------------------------------
#: (module, attribute path, wrapper) of every hook. LangGraph's node retry loop and
#: langchain_core's handled-error helpers are private: a version that moved one is
#: instrumented without it, with one warning naming what is missing.
_TARGETS: tuple[tuple[str, str, Any], ...] = (
    ("langgraph.pregel", "Pregel.invoke", _invoke),
    ("langgraph.pregel", "Pregel.ainvoke", _ainvoke),
    ("langgraph.pregel", "Pregel.stream", _stream),
    ("langgraph.pregel", "Pregel.astream", _astream),
    ("langchain_core.tools", "BaseTool.run", _tool_run),
    ("langchain_core.tools", "BaseTool.arun", _tool_arun),
    ("langchain_core.tools.base", "_handle_tool_error", _handled_error),
    ("langchain_core.tools.base", "_handle_validation_error", _handled_error),
    ("langgraph.pregel._runner", "run_with_retry", _run_with_retry),
    ("langgraph.pregel._runner", "arun_with_retry", _arun_with_retry),
)


def _resolve(module: str, path: str) -> tuple[Any, str, Any] | None:
    """(owner, attribute, original) of a hook target, or ``None`` when this version lacks it."""
    import importlib

    try:
        owner: Any = importlib.import_module(module)
        *parents, attr = path.split(".")
        for p in parents:
            owner = getattr(owner, p)
        original = vars(owner).get(attr)
    except (ImportError, AttributeError, TypeError):
        return None
    return (owner, attr, original) if callable(original) else None


def _register_hook() -> bool:
    """Add agentrel's handler to every new callback manager (once per process: langchain_core
    cannot remove a configure hook; it adds nothing while not instrumented)."""
    global _hook_registered
    if _hook_registered:
        return True
    try:
        from langchain_core.tracers.context import register_configure_hook
    except ImportError:
        return False
    register_configure_hook(_HOOK, inheritable=True)  # type: ignore[arg-type]
    _hook_registered = True
    return True


class LangGraphInstrumentor(ai.BaseInstrumentor):
    """agentrel's LangGraph instrumentor (``LangGraphInstrumentor().instrument(llm=True)`` is
    ``instrument()``)."""

    name = "LangGraph"
    extra = "langgraph"
    requires = (("langgraph", "langgraph"), ("langchain_core", "langchain-core"))
    options = frozenset({"llm"})

    def _instrument(self, **kwargs: Any) -> None:
        global _installed, _llm_on, _remove_hook
        import wrapt

        llm = bool(kwargs.get("llm", True))
        callback_handler()
        missing: list[str] = []
        resolved = []
        for module, path, wrapper in _TARGETS:
            found = _resolve(module, path)
            if found is None:
                missing.append(f"{module}.{path}")
            else:
                resolved.append((*found, wrapper))
        if llm and not _register_hook():
            missing.append("langchain_core.tracers.context.register_configure_hook")
        if missing:
            ai.warn_once(
                "langgraph:missing",
                "agentrel: this LangGraph/LangChain version is not fully supported (%s not "
                "found): the rest is instrumented, those hooks are not",
                ", ".join(missing),
            )
        with _lock:
            try:
                for owner, attr, original, wrapper in resolved:
                    setattr(owner, attr, wrapt.FunctionWrapper(original, wrapper))
                    _patches.append((owner, attr, original))
            except Exception:
                _unpatch()
                raise
            _remove_hook = ai.on_run_finish(forget_run)
            _llm_on = llm
            _installed = True

    def _uninstrument(self) -> None:
        global _installed, _llm_on, _remove_hook
        with _lock:
            _unpatch()
            if _remove_hook is not None:
                _remove_hook()
                _remove_hook = None
            llm_calls.clear()
            responses.clear()
            _installed = _llm_on = False

    def _reset_for_tests(self) -> None:
        llm_calls.clear()
        responses.clear()


def _unpatch() -> None:
    while _patches:
        owner, name, original = _patches.pop()
        setattr(owner, name, original)


_INSTRUMENTOR = LangGraphInstrumentor()


def instrument(*, llm: bool = True) -> None:
    """Count LangGraph runs, tool calls, node retries and (``llm=True``) model requests.

    Idempotent: a second call warns once and returns (``uninstrument()`` first to change
    ``llm``). ``llm=False`` leaves model requests to an instrumented provider client
    (``agentrel.instrument(client)``) instead. A LangGraph or LangChain version without one
    of the private functions hooked is instrumented without it, with one warning.
    """
    _INSTRUMENTOR.instrument(llm=llm)


def uninstrument() -> None:
    """Remove every wrapper; the callback handler is no longer added to new managers."""
    _INSTRUMENTOR.uninstrument()


def instrumented() -> bool:
    """Whether ``instrument()`` is in effect."""
    return _INSTRUMENTOR.is_instrumented()


is_instrumented = instrumented
