"""The LangGraph integration's model requests, seen through LangChain's callback system
(``agentrel.integrations.langgraph`` adds the handler made here to every callback manager)."""

from __future__ import annotations

import contextvars
from typing import Any

from .. import instrumentation as ai

#: LLM calls in flight, by LangChain run id: (private context, scope, handle, run).
llm_calls: dict[Any, tuple[contextvars.Context, Any, ai.CallHandle, Any]] = {}
#: finished model responses by (run, tool call id), wasted if that tool call fails.
responses: dict[tuple[Any, str], ai.CallHandle] = {}


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
    if not ai.is_recording() or run_id in llm_calls:
        return
    provider, model = _model_of(metadata, kwargs)
    ctx = contextvars.copy_context()
    scope = ai.call(ai.llm_spec(provider, model))
    handle = ctx.run(scope.__enter__)
    if handle.recording:
        llm_calls[run_id] = (ctx, scope, handle, ctx.run(ai.current_run))


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
    entry = llm_calls.pop(run_id, None)
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
            responses[(run, tcid)] = handle


def forget_run(run: Any) -> None:
    """Just before a run is classified: end LLM calls nobody ended, drop its responses."""
    for key in list(responses):
        if key[0] is run:
            responses.pop(key, None)
    for run_id, entry in list(llm_calls.items()):
        if entry[3] is run and llm_calls.pop(run_id, None) is not None:
            entry[0].run(entry[1].finish, None)


def make_handler() -> Any:
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
