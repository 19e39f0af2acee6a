"""The only module that records into instruments. Every function takes plain values, and the
OpenTelemetry context of the scope being recorded (``ctx``: its span in a context, or ``None``
for the current one) so that histogram exemplars carry that scope's trace id whatever is
current at the time.

Attribute dicts are built once per label combination and cached: the label values come from
code (tool, agent and model names, outcomes, error types), never from data; the one open-ended
key, the response model of an LLM call, is bounded.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import _catalogue as cat
from ._cost import PRICING
from ._guard import telemetry_error
from ._outcome import absorbed
from ._runtime import T
from ._tokens import SUBSETS, Tokens

if TYPE_CHECKING:
    from ._spec import CallSpec

Failures = dict[tuple[str, str], int]  # (tool, error.type) -> failed attempts


# --- calls --------------------------------------------------------------------------------------
def tool_call(
    spec: CallSpec, outcome: str, attempts: int, duration: float, etype: str | None, ctx: Any
) -> None:
    """A logical call ended: ``agentrel.tool.attempts`` and, for tools,
    ``gen_ai.execute_tool.duration``."""
    T.tool_attempts.record(attempts, spec.outcome_attrs[outcome], ctx)
    if spec.kind == "tool":
        attrs = spec.name_attrs if etype is None else spec.error_attrs(etype)
        T.execute_tool_duration.record(duration, attrs, ctx)


def unsafe_retry(spec: CallSpec) -> None:
    T.unsafe_retries.add(1, spec.name_attrs)


def retry_delay(seconds: float, spec: CallSpec | None, tool: str | None, ctx: Any) -> None:
    """A backoff wait, for a call's spec or, with no call around it, for a tool name."""
    attrs = spec.name_attrs if spec is not None else _tool_attrs(tool or "")
    T.retry_delay.record(seconds, attrs, ctx)


_tool_attr_cache: dict[str, dict[str, str]] = {}


def _tool_attrs(tool: str) -> dict[str, str]:
    attrs = _tool_attr_cache.get(tool)
    if attrs is None:
        attrs = {cat.TOOL: tool}
        if len(_tool_attr_cache) < 4096:
            _tool_attr_cache[tool] = attrs
    return attrs


def fallback_moved(attrs: dict[str, str]) -> None:
    T.fallbacks.add(1, attrs)


# --- LLM calls (GenAI semconv) ------------------------------------------------------------------
#: (provider, request model, response model) -> semconv attributes: the operation's, and per
#: token type.
_LlmAttrs = tuple[dict[str, Any], dict[str, dict[str, Any]]]
#: keyed by what the attributes are made of (never by the spec, which holds the function)
_llm_attr_cache: dict[tuple[str | None, str | None, str | None], _LlmAttrs] = {}
_LLM_ATTR_CACHE_MAX = 1024


def _llm_attrs(spec: CallSpec, response_model: str | None) -> _LlmAttrs:
    key = (spec.provider, spec.model, response_model)
    found = _llm_attr_cache.get(key)
    if found is not None:
        return found
    base: dict[str, Any] = {cat.OPERATION: "chat"}
    if spec.provider:
        base[cat.PROVIDER] = spec.provider
    if spec.model:
        base[cat.REQUEST_MODEL] = spec.model
    if response_model:
        base[cat.RESPONSE_MODEL] = response_model
    by_type = {t: {**base, cat.TOKEN_TYPE: t} for t in (cat.INPUT, cat.OUTPUT)}
    if len(_llm_attr_cache) < _LLM_ATTR_CACHE_MAX:  # bounded: response models are open-ended
        _llm_attr_cache[key] = (base, by_type)
    return base, by_type


def llm_call(
    spec: CallSpec,
    response_model: str | None,
    duration: float,
    etype: str | None,
    usage: dict[str, int],
    ctx: Any,
) -> None:
    """``gen_ai.client.operation.duration`` and ``gen_ai.client.token.usage`` (per token type
    in ``usage``) of an LLM call that ended (``etype``: its ``error.type`` if it failed)."""
    base, by_type = _llm_attrs(spec, response_model)
    if etype is not None:
        T.client_operation_duration.record(duration, {**base, cat.ERROR_TYPE: etype}, ctx)
    else:
        T.client_operation_duration.record(duration, base, ctx)
    for ttype, n in usage.items():
        attrs = by_type.get(ttype)
        T.client_token_usage.record(
            n, attrs if attrs is not None else {**base, cat.TOKEN_TYPE: ttype}, ctx
        )


# --- runs ---------------------------------------------------------------------------------------
_run_attr_cache: dict[tuple[str, str, str], dict[str, str]] = {}
_amp_attr_cache: dict[tuple[str, str], dict[str, str]] = {}


def run(
    name: str,
    cohort: str,
    outcome: str,
    retry_depth: int,
    attempts: int,
    recovery_time: float,
    amplification: float | None,
    ctx: Any,
) -> None:
    """A run ended: retry depth (every run), attempts, recovery time (runs with a failure),
    token amplification (successful runs with useful tokens: ``amplification`` not None)."""
    key = (name, outcome, cohort)
    attrs = _run_attr_cache.get(key)
    if attrs is None:
        attrs = _run_attr_cache[key] = {cat.AGENT: name, cat.OUTCOME: outcome, cat.COHORT: cohort}
    # each point on its own: one failing instrument costs its point, not the others
    try:
        T.run_retry_depth.record(retry_depth, attrs, ctx)
    except Exception as exc:
        telemetry_error("run.metrics", exc)
    try:
        T.run_attempts.record(attempts, attrs, ctx)
    except Exception as exc:
        telemetry_error("run.metrics", exc)
    if retry_depth:
        try:
            T.run_recovery_time.record(recovery_time, attrs, ctx)
        except Exception as exc:
            telemetry_error("run.metrics", exc)
    if amplification is not None:
        akey = (name, cohort)
        aattrs = _amp_attr_cache.get(akey)
        if aattrs is None:
            aattrs = _amp_attr_cache[akey] = {cat.AGENT: name, cat.COHORT: cohort}
        T.run_token_amplification.record(amplification, aattrs, ctx)  # its caller guards it


def failures(failed: Failures, run_failed: bool) -> None:
    """``agentrel.tool.failures`` once the fate of the run (or of a call outside any run)
    that holds them is known."""
    absorbed_value = absorbed(run_failed)
    for (tool, et), n in failed.items():
        T.tool_failures.add(n, {cat.TOOL: tool, cat.ERROR_TYPE: et, cat.ABSORBED: absorbed_value})


_token_attr_cache: dict[tuple[str | None, str | None, str | None, str, str], dict[str, str]] = {}


def tokens(
    agent: str | None, cohort: str | None, useful: Tokens | None, wasted: Tokens | None
) -> tuple[Decimal, Decimal] | None:
    """``agentrel.tokens`` by disposition, once the scope that holds them has ended, and,
    with prices, ``agentrel.cost`` and ``agentrel.cost.unpriced_tokens`` (priced by
    ``_cost.PRICING``). Returns the exact (all, wasted) dollars when priced, for the run's
    span."""
    usd = None
    if PRICING.enabled and (useful or wasted):
        try:
            priced = PRICING.priced(agent, cohort, useful, wasted)
            usd = priced.usd
            for dollars, cattrs in priced.spent:
                T.cost.add(dollars, cattrs)
            for n, uattrs in priced.unpriced:
                T.cost_unpriced_tokens.add(n, uattrs)
        except Exception as exc:  # a broken price table costs the dollars, not the tokens
            telemetry_error("cost.emit", exc)
    for disposition, tally in ((cat.USEFUL, useful), (cat.WASTED, wasted)):
        if not tally:
            continue
        for (model, ttype), n in tally.items():
            if not n or ttype in SUBSETS:
                continue
            key = (agent, cohort, model, ttype, disposition)
            attrs = _token_attr_cache.get(key)
            if attrs is None:
                attrs = {cat.TOKEN_TYPE: ttype, cat.DISPOSITION: disposition}
                if agent is not None:
                    attrs[cat.AGENT] = agent
                if cohort is not None:
                    attrs[cat.COHORT] = cohort
                if model is not None:
                    attrs[cat.REQUEST_MODEL] = model
                _token_attr_cache[key] = attrs
            T.tokens.add(n, attrs)
    return usd


# --- GenAI per-invocation call counts, cold starts -----------------------------------------------
def call_counts(tool_calls: int, inference_calls: int, attrs: dict[str, str], ctx: Any) -> None:
    """``gen_ai.invoke_agent.tool_calls`` / ``.inference_calls`` of a finished run."""
    T.invoke_agent_tool_calls.record(tool_calls, attrs, ctx)
    T.invoke_agent_inference_calls.record(inference_calls, attrs, ctx)


def first_call(duration: float, attrs: dict[str, str], ctx: Any) -> None:
    """``agentrel.tool.first_call.duration``: a tool's first call in this process."""
    T.tool_first_call_duration.record(duration, attrs, ctx)


# --- verdicts after the run ---------------------------------------------------------------------
def verdict(attrs: dict[str, str], ctx: Any) -> None:
    """A verdict on a finished run (``agentrel.verdict``): one ``agentrel.verdicts`` point;
    the labels were bounded by their allowlists before they got here."""
    T.verdicts.add(1, attrs, ctx)
