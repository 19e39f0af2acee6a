"""The metric catalogue: the one place that names agentrel's instruments.

Code, docs (``docs/metrics.md``), dashboards, rules and the consistency tests all read this
module. Changing a name, unit, bucket or attribute here changes the data contract that
dashboards and alerts in users' hands depend on: do it only on purpose, with a CHANGELOG entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# --- attribute keys -------------------------------------------------------------------------
# semconv names where semconv has one, ``agentrel.*`` for ours.
AGENT = "gen_ai.agent.name"
TOOL = "gen_ai.tool.name"
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
TOKEN_TYPE = "gen_ai.token.type"
ERROR_TYPE = "error.type"
OUTCOME = "agentrel.outcome"
COHORT = "agentrel.cohort"
ABSORBED = "agentrel.absorbed"
DISPOSITION = "agentrel.token.disposition"
FALLBACK_CHAIN = "agentrel.fallback.chain"
FALLBACK_FROM = "agentrel.fallback.from_tier"
FALLBACK_TO = "agentrel.fallback.to_tier"
#: Span attribute (not a metric label): true on the first call of a tool or LLM client spec
#: in a process.
COLD_START = "agentrel.cold_start"

# --- span attributes and events (not metric labels) ------------------------------------------
# Every span attribute and event name agentrel writes, beside the metric names above;
# ``SPAN_ATTRIBUTES`` / ``SPAN_EVENTS`` below describe each for docs/metrics.md ("Spans").
SPAN_RUN_RETRY_DEPTH = "agentrel.run.retry_depth"
SPAN_RUN_ATTEMPTS = "agentrel.run.attempts"
RUN_TOKENS = "agentrel.run.tokens"
RUN_WASTED_TOKENS = "agentrel.run.wasted_tokens"
RUN_AMPLIFICATION = "agentrel.run.token_amplification"
RUN_BUDGET_RATIO = "agentrel.run.token_budget_ratio"
RUN_COST = "agentrel.run.cost_usd"
RUN_WASTED_COST = "agentrel.run.wasted_cost_usd"
CALL_ATTEMPTS = "agentrel.call.attempts"
EXCEPTION_MESSAGE = "exception.message"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_DESCRIPTION = "gen_ai.tool.description"
TOOL_IDEMPOTENT = "agentrel.tool.idempotent"
TOOL_REVERSIBLE = "agentrel.tool.reversible"
TOOL_SYSTEM = "agentrel.tool.system"
TOOL_OWNER = "agentrel.tool.owner"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
INTEGRATION = "agentrel.integration"
RETRY_LIBRARY = "agentrel.retry.library"
LANGGRAPH_NODE = "agentrel.langgraph.node"
FALLBACK_TIERS = "agentrel.fallback.tiers"
FALLBACK_TIER = "agentrel.fallback.tier"
FALLBACK_TIER_INDEX = "agentrel.fallback.tier_index"
FALLBACK_SERVED_TIER = "agentrel.fallback.served_tier"
FALLBACK_SERVED_INDEX = "agentrel.fallback.served_index"
USAGE_INPUT = "gen_ai.usage.input_tokens"
USAGE_OUTPUT = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_CREATION = "gen_ai.usage.cache_creation.input_tokens"
USAGE_REASONING = "agentrel.usage.reasoning.output_tokens"
STREAM_ABANDONED = "agentrel.stream.abandoned"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
#: attributes of the events below
ATTEMPT_NUMBER = "agentrel.attempt.number"
ATTEMPT_DURATION = "agentrel.attempt.duration"
ATTEMPT_RETRY_DELAY = "agentrel.retry.delay"
REJECT_REASON = "agentrel.reject.reason"
HANDOFF_FROM = "agentrel.handoff.from"
HANDOFF_TO = "agentrel.handoff.to"
#: span events
EVENT_ATTEMPT = "agentrel.attempt"
EVENT_UNSAFE_RETRY = "agentrel.unsafe_retry"
EVENT_REJECT = "agentrel.reject"
EVENT_HANDOFF = "agentrel.handoff"
#: the GenAI semconv evaluation event (development status) and its attributes, on the span a
#: verdict opens in the run's trace
EVENT_EVALUATION_RESULT = "gen_ai.evaluation.result"
EVALUATION_NAME = "gen_ai.evaluation.name"
EVALUATION_SCORE_VALUE = "gen_ai.evaluation.score.value"
EVALUATION_SCORE_LABEL = "gen_ai.evaluation.score.label"
EVALUATION_EXPLANATION = "gen_ai.evaluation.explanation"
#: the outcome the judged run closed with, on the verdict's span
VERDICT_RUN_OUTCOME = "agentrel.verdict.run_outcome"

# --- attribute values -----------------------------------------------------------------------
SUCCESS = "success"
RECOVERED = "recovered"
EXHAUSTED = "exhausted"
FAILED = "failed"
OUTCOMES = (SUCCESS, RECOVERED, EXHAUSTED, FAILED)

USEFUL = "useful"
WASTED = "wasted"
DISPOSITIONS = (USEFUL, WASTED)

INPUT = "input"
OUTPUT = "output"

NO_COHORT = "none"
OTHER_COHORT = "other"

#: ``error.type`` of a failure that is not an exception.
REJECTED = "rejected"
RESULT_FLAGGED = "result_flagged"

# --- buckets --------------------------------------------------------------------------------
RETRY_DEPTH_BUCKETS = (0, 1, 2, 3, 5, 8, 15)
RUN_ATTEMPTS_BUCKETS = (1, 2, 4, 8, 16, 32)
AMPLIFICATION_BUCKETS = (1, 1.25, 1.5, 2, 4, 8)
TOOL_ATTEMPTS_BUCKETS = (1, 2, 3, 5)
#: GenAI semconv advice for ``gen_ai.invoke_agent.tool_calls`` / ``.inference_calls``.
CALL_COUNT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
#: Every duration agentrel records: a 4x subset of GenAI semconv's advice for
#: ``gen_ai.client.operation.duration``, 1.28 s kept for the recovery-time rule.
DURATION_BUCKETS = (0.04, 0.16, 0.64, 1.28, 2.56, 10.24)
#: One record per tool per process: cold or warm.
FIRST_CALL_BUCKETS = (0.64, 2.56)
#: A 16x subset of GenAI semconv's advice for ``gen_ai.client.token.usage``.
TOKEN_USAGE_BUCKETS = (1, 16, 256, 4096, 65536, 1048576)

Kind = Literal["histogram", "counter"]


@dataclass(frozen=True)
class MetricSpec:
    """One instrument of the contract."""

    name: str
    kind: Kind
    unit: str
    description: str
    attributes: tuple[str, ...]
    buckets: tuple[float, ...] | None = None

    @property
    def slot(self) -> str:
        """The instrument's attribute on the hot-path telemetry object (``T.<slot>``): the
        name without its ``agentrel.`` / ``gen_ai.`` prefix, dots as underscores."""
        base = self.name.removeprefix("agentrel.").removeprefix("gen_ai.")
        return base.replace(".", "_")

    @property
    def prometheus_name(self) -> str:
        """The series name OpenTelemetry's Prometheus translation gives (without suffixes
        such as ``_bucket``)."""
        return prometheus_metric_name(self.name, self.unit, self.kind)

    @property
    def prometheus_labels(self) -> tuple[str, ...]:
        return tuple(prometheus_label(a) for a in self.attributes)


RUN_RETRY_DEPTH = MetricSpec(
    "agentrel.run.retry_depth", "histogram", "{retry}",
    "Failures inside a run (failed attempts and rejections); recorded for every run, 0 "
    "included, so its _count by outcome counts runs.",
    (AGENT, OUTCOME, COHORT), RETRY_DEPTH_BUCKETS,
)  # fmt: skip
RUN_ATTEMPTS = MetricSpec(
    "agentrel.run.attempts", "histogram", "{attempt}",
    "Tool and LLM attempts in a run, failed ones included.",
    (AGENT, OUTCOME, COHORT), RUN_ATTEMPTS_BUCKETS,
)  # fmt: skip
RUN_TOKEN_AMPLIFICATION = MetricSpec(
    "agentrel.run.token_amplification", "histogram", "1",
    "All tokens / useful tokens of a successful run that recorded useful tokens "
    "(1.0 = nothing wasted).",
    (AGENT, COHORT), AMPLIFICATION_BUCKETS,
)  # fmt: skip
RUN_RECOVERY_TIME = MetricSpec(
    "agentrel.run.recovery_time", "histogram", "s",
    "Time a run spent in failed attempts and backoff waits; recorded for runs with at least "
    "one failure.",
    (AGENT, OUTCOME, COHORT), DURATION_BUCKETS,
)  # fmt: skip
TOOL_ATTEMPTS = MetricSpec(
    "agentrel.tool.attempts", "histogram", "{attempt}",
    "Attempts per logical tool or LLM call; its _count by outcome counts calls.",
    (TOOL, OUTCOME), TOOL_ATTEMPTS_BUCKETS,
)  # fmt: skip
TOOL_FAILURES = MetricSpec(
    "agentrel.tool.failures", "counter", "{failure}",
    "Every failed attempt (exception, flagged result or rejection); absorbed is true when the "
    "enclosing run (or, outside a run, the call) still succeeded.",
    (TOOL, ERROR_TYPE, ABSORBED),
)  # fmt: skip
RETRY_DELAY = MetricSpec(
    "agentrel.retry.delay", "histogram", "s",
    "Backoff waits between attempts.",
    (TOOL,), DURATION_BUCKETS,
)  # fmt: skip
FALLBACKS = MetricSpec(
    "agentrel.fallbacks", "counter", "{fallback}",
    "Fallback activations: a chain moving from one tier to the next.",
    (FALLBACK_CHAIN, FALLBACK_FROM, FALLBACK_TO, ERROR_TYPE),
)  # fmt: skip
TOKENS = MetricSpec(
    "agentrel.tokens", "counter", "{token}",
    "Every token recorded, by disposition (useful or wasted).",
    (AGENT, COHORT, TOKEN_TYPE, DISPOSITION, REQUEST_MODEL),
)  # fmt: skip
UNSAFE_RETRIES = MetricSpec(
    "agentrel.unsafe_retries", "counter", "{retry}",
    "Retries of tools declared idempotent=False.",
    (TOOL,),
)  # fmt: skip
EXECUTE_TOOL_DURATION = MetricSpec(
    "gen_ai.execute_tool.duration", "histogram", "s",
    "Duration of a logical tool call, all its attempts included.",
    (TOOL, ERROR_TYPE), DURATION_BUCKETS,
)  # fmt: skip
CLIENT_TOKEN_USAGE = MetricSpec(
    "gen_ai.client.token.usage", "histogram", "{token}",
    "GenAI semconv: tokens per LLM operation, by gen_ai.token.type.",
    (OPERATION, PROVIDER, REQUEST_MODEL, RESPONSE_MODEL, TOKEN_TYPE), TOKEN_USAGE_BUCKETS,
)  # fmt: skip
CLIENT_OPERATION_DURATION = MetricSpec(
    "gen_ai.client.operation.duration", "histogram", "s",
    "GenAI semconv: duration of an LLM operation as the caller saw it.",
    (OPERATION, PROVIDER, REQUEST_MODEL, RESPONSE_MODEL, ERROR_TYPE), DURATION_BUCKETS,
)  # fmt: skip
# --- cost, GenAI per-invocation call counts, cold start (docs/metrics.md) ---------------------
COST = MetricSpec(
    "agentrel.cost", "counter", "usd",
    "Spend in US dollars of the tokens recorded on LLM calls, by disposition (useful or "
    "wasted); only tokens of priced models (agentrel-otel[cost] or configure(prices=...)).",
    (AGENT, COHORT, REQUEST_MODEL, DISPOSITION),
)  # fmt: skip
UNPRICED_TOKENS = MetricSpec(
    "agentrel.cost.unpriced_tokens", "counter", "{token}",
    "Tokens of models with no known price: counted, never guessed.",
    (REQUEST_MODEL,),
)  # fmt: skip
INVOKE_AGENT_TOOL_CALLS = MetricSpec(
    "gen_ai.invoke_agent.tool_calls", "histogram", "{tool_call}",
    "GenAI semconv: tool calls (attempts, failed ones included) made during one run; one "
    "record per run at its end.",
    (AGENT,), CALL_COUNT_BUCKETS,
)  # fmt: skip
INVOKE_AGENT_INFERENCE_CALLS = MetricSpec(
    "gen_ai.invoke_agent.inference_calls", "histogram", "{inference_call}",
    "GenAI semconv: inference (LLM) calls (attempts, failed ones included) made during one "
    "run; one record per run at its end.",
    (AGENT,), CALL_COUNT_BUCKETS,
)  # fmt: skip
FIRST_CALL_DURATION = MetricSpec(
    "agentrel.tool.first_call.duration", "histogram", "s",
    "Duration of the first call of each tool or LLM client spec in a process (cold start); "
    "one record per tool per process.",
    (TOOL,), FIRST_CALL_BUCKETS,
)  # fmt: skip

# --- verdicts after the run (agentrel.verdict; docs/metrics.md) ------------------------------
#: Metric labels of a verdict: the verdict and its source, each after its allowlist.
VERDICT = "agentrel.verdict"
VERDICT_SOURCE = "agentrel.verdict.source"
#: The verdicts every process knows (``configure(verdicts=...)`` adds more).
CORRECT = "correct"
WRONG = "wrong"
BUILTIN_VERDICTS = (CORRECT, WRONG)
NO_SOURCE = "none"
OTHER_VALUE = "other"
VERDICTS = MetricSpec(
    "agentrel.verdicts", "counter", "{verdict}",
    "Verdicts given to finished runs after the fact (agentrel.verdict), by the run's agent, "
    "cohort and outcome at close, the verdict and its source.",
    (AGENT, COHORT, OUTCOME, VERDICT, VERDICT_SOURCE),
)  # fmt: skip

METRICS: tuple[MetricSpec, ...] = (
    RUN_RETRY_DEPTH,
    RUN_ATTEMPTS,
    RUN_TOKEN_AMPLIFICATION,
    RUN_RECOVERY_TIME,
    TOOL_ATTEMPTS,
    TOOL_FAILURES,
    RETRY_DELAY,
    FALLBACKS,
    TOKENS,
    UNSAFE_RETRIES,
    EXECUTE_TOOL_DURATION,
    CLIENT_TOKEN_USAGE,
    CLIENT_OPERATION_DURATION,
    COST,
    UNPRICED_TOKENS,
    INVOKE_AGENT_TOOL_CALLS,
    INVOKE_AGENT_INFERENCE_CALLS,
    FIRST_CALL_DURATION,
    VERDICTS,
)

# --- OpenTelemetry -> Prometheus name translation --------------------------------------------
# The rules of the OpenTelemetry spec (compatibility/prometheus_and_openmetrics.md) as
# opentelemetry-exporter-prometheus and the collector apply them; tests/test_prometheus.py
# checks this against that exporter.
_UNIT_SUFFIX = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
    "us": "microseconds", "ns": "nanoseconds", "By": "bytes", "1": "", "%": "percent",
}  # fmt: skip
_INVALID_NAME = re.compile(r"[^a-zA-Z0-9:]+")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9]+")
_ANNOTATION = re.compile(r"{.*}")


def has_utf8(text: str) -> bool:
    """Whether ``text`` has a UTF-8 form (no lone surrogate): what OTLP and the Prometheus
    text formats can carry as a name or a label value."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def prometheus_unit(unit: str) -> str:
    """The Prometheus unit of a UCUM unit OpenTelemetry translates (``s`` -> ``seconds``),
    ``""`` for annotations, ``1`` and units it has no word for (OpenMetrics ``# UNIT``)."""
    return _UNIT_SUFFIX.get(unit, "")


def prometheus_metric_name(name: str, unit: str, kind: str) -> str:
    """Translate an OpenTelemetry metric name to its Prometheus series family name."""
    base = _INVALID_NAME.sub("_", name)
    if base[:1].isdigit():
        base = "_" + base
    unit = _ANNOTATION.sub("", unit)
    suffix = _UNIT_SUFFIX.get(unit, _INVALID_NAME.sub("_", unit).strip("_"))
    if suffix and not base.endswith("_" + suffix):
        base = f"{base}_{suffix}"
    if kind == "counter" and not base.endswith("_total"):
        base += "_total"
    return base


def prometheus_label(key: str) -> str:
    """Translate an attribute key to a Prometheus label name."""
    label = _INVALID_LABEL.sub("_", key)
    return "_" + label if label[:1].isdigit() else label


# --- what each span attribute and event means (docs/metrics.md, "Spans") ----------------------
@dataclass(frozen=True)
class SpanName:
    """One span attribute or event: its name, the spans (or event) that carry it, what it
    holds, and whether it is written only with ``configure(capture_content=True)``."""

    name: str
    on: str
    meaning: str
    opt_in: bool = False


_RUN, _CALL, _TOOL, _LLM = "run", "call", "tool call", "LLM call"
SPAN_ATTRIBUTES: tuple[SpanName, ...] = (
    SpanName(OPERATION, "run, call", "`invoke_agent`, `execute_tool` or `chat`"),
    SpanName(AGENT, _RUN, "the run's name, from code"),
    SpanName(COHORT, _RUN, "the run's cohort, after the allowlist"),
    SpanName(OUTCOME, "run, call", "`success`, `recovered`, `exhausted`, `failed`"),
    SpanName(ERROR_TYPE, "run, call, attempt event", "exception class; never a message"),
    SpanName(EXCEPTION_MESSAGE, "run, attempt event", "the exception's message", True),
    SpanName(SPAN_RUN_RETRY_DEPTH, _RUN, "failures inside the run"),
    SpanName(SPAN_RUN_ATTEMPTS, _RUN, "tool and LLM attempts in the run"),
    SpanName(RUN_TOKENS, _RUN, "all tokens of the run"),
    SpanName(RUN_WASTED_TOKENS, _RUN, "tokens of the run that were wasted"),
    SpanName(RUN_AMPLIFICATION, _RUN, "all ÷ useful tokens (successful runs with tokens)"),
    SpanName(RUN_BUDGET_RATIO, _RUN, "tokens ÷ `token_budget`, when a budget was given"),
    SpanName(RUN_COST, _RUN, "US dollars of the run's priced tokens"),
    SpanName(RUN_WASTED_COST, _RUN, "US dollars of the run's wasted priced tokens"),
    SpanName(CALL_ATTEMPTS, _CALL, "attempts of the logical call"),
    SpanName(TOOL, _TOOL, "the tool's name, from code"),
    SpanName(TOOL_TYPE, _TOOL, "`function`"),
    SpanName(TOOL_DESCRIPTION, _TOOL, "the tool's description (docstring's first line)"),
    SpanName(TOOL_IDEMPOTENT, _TOOL, "declared `idempotent=`"),
    SpanName(TOOL_REVERSIBLE, _TOOL, "declared `reversible=`"),
    SpanName(TOOL_SYSTEM, _TOOL, "declared `system=` (what the tool touches)"),
    SpanName(TOOL_OWNER, _TOOL, "declared `owner=` (who to page)"),
    SpanName(TOOL_ARGUMENTS, _TOOL, "the call's arguments, redacted", True),
    SpanName(TOOL_RESULT, _TOOL, "the call's result, redacted", True),
    SpanName(COLD_START, _CALL, "true on the first call of a tool or LLM spec in a process"),
    SpanName(INTEGRATION, _CALL, "the integration that opened the call or run"),
    SpanName(RETRY_LIBRARY, _TOOL, "the retry library whose loop opened the call"),
    SpanName(LANGGRAPH_NODE, _TOOL, "the LangGraph node a node-level retry policy retried"),
    SpanName(FALLBACK_CHAIN, "fallback call, tier call", "the fallback chain's name, from code"),
    SpanName(FALLBACK_TIERS, "fallback call", "how many tiers the chain has"),
    SpanName(FALLBACK_SERVED_TIER, "fallback call", "the tier that served"),
    SpanName(FALLBACK_SERVED_INDEX, "fallback call", "its position in the chain, from 0"),
    SpanName(FALLBACK_TIER, "tier call", "the tier's name"),
    SpanName(FALLBACK_TIER_INDEX, "tier call", "the tier's position, from 0"),
    SpanName(PROVIDER, _LLM, "`openai`, `anthropic`, ..."),
    SpanName(REQUEST_MODEL, _LLM, "the model the request named"),
    SpanName(RESPONSE_MODEL, _LLM, "the model that answered"),
    SpanName(USAGE_INPUT, _LLM, "input tokens of the call, every attempt"),
    SpanName(USAGE_OUTPUT, _LLM, "output tokens of the call, every attempt"),
    SpanName(USAGE_CACHE_READ, _LLM, "input tokens read from the provider's cache"),
    SpanName(USAGE_CACHE_CREATION, _LLM, "input tokens written to the provider's cache"),
    SpanName(USAGE_REASONING, _LLM, "output tokens spent on reasoning"),
    SpanName(STREAM_ABANDONED, _LLM, "true when a stream was not read to its end"),
    SpanName(INPUT_MESSAGES, _LLM, "the prompt, redacted", True),
    SpanName(OUTPUT_MESSAGES, _LLM, "the completion, redacted", True),
    SpanName(ATTEMPT_NUMBER, "attempt, unsafe-retry events", "the attempt's number, from 1"),
    SpanName(ATTEMPT_DURATION, "attempt event", "seconds the attempt took"),
    SpanName(ATTEMPT_RETRY_DELAY, "attempt event", "seconds of backoff before the attempt"),
    SpanName(REJECT_REASON, "reject event", "the `reason` given to `agentrel.reject`"),
    SpanName(HANDOFF_FROM, "handoff event", "the agent that handed off"),
    SpanName(HANDOFF_TO, "handoff event", "the agent handed to"),
    SpanName(VERDICT_RUN_OUTCOME, "verdict", "the outcome the judged run closed with"),
    SpanName(EVALUATION_NAME, "evaluation event", "the verdict's source, after its allowlist"),
    SpanName(EVALUATION_SCORE_LABEL, "evaluation event", "the verdict, after its allowlist"),
    SpanName(EVALUATION_SCORE_VALUE, "evaluation event", "the `score=` given, if any"),
    SpanName(EVALUATION_EXPLANATION, "evaluation event", "the `explanation=`, redacted", True),
)
SPAN_EVENTS: tuple[SpanName, ...] = (
    SpanName(
        EVENT_ATTEMPT,
        f"call: `{ATTEMPT_NUMBER}`, `{ATTEMPT_DURATION}`, `{ERROR_TYPE}`, `{ATTEMPT_RETRY_DELAY}`",
        "one attempt of a call that had a failure (kept after the call recovers)",
    ),
    SpanName(EVENT_UNSAFE_RETRY, f"call: `{ATTEMPT_NUMBER}`", "a retry of a non-idempotent tool"),
    SpanName(
        EVENT_REJECT,
        f"call or run: `{REJECT_REASON}`, `{TOOL}` (on the run)",
        "an output thrown away (`agentrel.reject`)",
    ),
    SpanName(
        EVENT_HANDOFF,
        f"run: `{HANDOFF_FROM}`, `{HANDOFF_TO}`",
        "an OpenAI Agents SDK handoff between agents",
    ),
    SpanName(
        EVENT_EVALUATION_RESULT,
        f"verdict: `{EVALUATION_NAME}`, `{EVALUATION_SCORE_LABEL}`, `{EVALUATION_SCORE_VALUE}`, "
        f"`{EVALUATION_EXPLANATION}`",
        "a verdict on a finished run (`agentrel.verdict`), GenAI semconv",
    ),
)
