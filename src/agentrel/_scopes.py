"""The scope model of DESIGN §2: runs, calls and attempts, held in contextvars.

Every scope keeps O(1) state: counters, sums and small dicts keyed by bounded label values
(tool name × error type, model × token type), never lists of events.

Counting rules (each one pinned by tests/test_semantics.py):

* A failure is an exception leaving an attempt, a result flagged by ``failure_when=``, or a
  rejection. It is counted once, in the innermost scope it left: the same exception object
  propagating through enclosing calls is not counted again there (so a fallback is counted
  through the failed attempt that caused it, not twice).
* Retry depth of a run = failures counted inside it. ``agentrel.tool.failures`` summed over a
  run equals its retry depth.
* A call or run is ``recovered`` when it succeeded and a failure happened inside it, and
  ``exhausted`` when it failed after a failure inside it had been followed by more attempts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from . import _callcounts, _coldstart, _cost  # issue 13 hooks (cost, call counts, cold start)
from . import _catalogue as cat
from ._content import content
from ._runtime import T, telemetry_error, warn_once

_RUN: ContextVar[Run | None] = ContextVar("agentrel.run", default=None)
_CALL: ContextVar[Call | None] = ContextVar("agentrel.call", default=None)

TokenKey = tuple[str | None, str]  # (model, gen_ai.token.type)
Tokens = dict[TokenKey, int]

_now = time.perf_counter
CallKind = Literal["tool", "llm", "fallback"]


def error_type(exc: BaseException) -> str:
    """``error.type`` of an exception: its class's qualified name, never its message."""
    return type(exc).__qualname__


def _merge(into: Tokens, src: Tokens) -> None:
    for k, v in src.items():
        into[k] = into.get(k, 0) + v


class CallSpec:
    """What is known about a call site before it runs: computed once, at decoration."""

    __slots__ = (
        "_error_attrs",
        "_name_attrs",
        "_outcome_attrs",
        "composite",
        "idempotent",
        "kind",
        "model",
        "name",
        "provider",
        "span_attrs",
        "span_kind",
        "span_name",
        "system",
        "target",
    )

    def __init__(
        self,
        name: str,
        kind: CallKind = "tool",
        *,
        span_name: str | None = None,
        span_attrs: dict[str, Any] | None = None,
        idempotent: bool = True,
        system: str | None = None,
        model: str | None = None,
        provider: str | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.span_name = span_name or (
            f"chat {model}" if kind == "llm" and model else f"execute_tool {name}"
        )
        self.span_attrs = dict(span_attrs or {})
        # GenAI semconv: an inference span is CLIENT; tools and chains are INTERNAL.
        self.span_kind = SpanKind.CLIENT if kind == "llm" else SpanKind.INTERNAL
        #: the function a decorator wrapped (lets a retry integration tell whether the
        #: current call is the tool around the very function it retries).
        self.target: Any = None
        #: its attempts are made of other work (a fallback chain's tiers): the run counts an
        #: attempt only when no decorated call ran inside it (that call counted itself), and
        #: a retry loop inside a tier belongs to the tier's work, not to this call.
        self.composite = kind == "fallback"
        self.idempotent = idempotent
        self.system = system
        self.model = model
        self.provider = provider
        self._name_attrs = {cat.TOOL: name}
        self._outcome_attrs = {o: {cat.TOOL: name, cat.OUTCOME: o} for o in cat.OUTCOMES}
        self._error_attrs: dict[str | None, dict[str, str]] = {None: self._name_attrs}

    def error_attrs(self, etype: str | None) -> dict[str, str]:
        attrs = self._error_attrs.get(etype)
        if attrs is None:
            attrs = self._error_attrs[etype] = {cat.TOOL: self.name, cat.ERROR_TYPE: etype or ""}
        return attrs


class Run:
    """The live handle of one run (``with agentrel.run(...) as run``).

    Read-only for application code: ``name``, ``cohort``, ``attempts``, ``retry_depth``,
    ``tokens``, ``useful_tokens``, ``wasted_tokens``, ``token_amplification``,
    ``budget_ratio``, ``recovery_time``, ``cost_usd``, ``wasted_cost_usd`` (US dollars, issue
    13: see docs/metrics.md) and, once the run has finished, ``outcome``.
    """

    __slots__ = (
        "_ctx",
        "_failed_tools",
        "_failures",
        "_kinds",  # issue 13: attempts by call kind (semconv call counts)
        "_last_call",
        "_lock",
        "_retried",
        "_span",
        "_start",
        "_useful",
        "_wasted",
        "attempts",
        "cohort",
        "name",
        "outcome",
        "recovery_time",
        "retry_depth",
        "token_budget",
    )

    def __init__(self, name: str, cohort: str | None, token_budget: int | None) -> None:
        self.name = name
        self.cohort = T.cohort(cohort)
        self.token_budget = token_budget
        self.attempts = 0
        self.retry_depth = 0
        self.recovery_time = 0.0
        self.outcome: str | None = None
        self._retried = False
        self._failures: dict[tuple[str, str], int] = {}
        self._failed_tools: set[str] = set()
        self._kinds: dict[str, int] = {}  # issue 13
        self._useful: Tokens = {}
        self._wasted: Tokens = {}
        self._last_call: tuple[str, Tokens] | None = None
        self._lock = threading.Lock()
        self._span: Span | None = None
        self._ctx: Any = None
        self._start = _now()

    # -- live figures ------------------------------------------------------------------------
    @property
    def useful_tokens(self) -> int:
        """Tokens on the path that produced the answer so far (all of them wasted if the run
        fails)."""
        return _cost.total(self._useful)  # issue 13: cache subsets are not counted again

    @property
    def wasted_tokens(self) -> int:
        """Tokens spent on failed, rejected or thrown-away work."""
        return _cost.total(self._wasted)  # issue 13: cache subsets are not counted again

    @property
    def tokens(self) -> int:
        """All tokens recorded in this run."""
        return self.useful_tokens + self.wasted_tokens

    @property
    def token_amplification(self) -> float | None:
        """All tokens ÷ useful tokens (1.0 = nothing wasted); ``None`` with no useful tokens."""
        useful = self.useful_tokens
        return (useful + self.wasted_tokens) / useful if useful else None

    @property
    def budget_ratio(self) -> float | None:
        """Tokens spent ÷ ``token_budget``, when a budget was given."""
        return self.tokens / self.token_budget if self.token_budget else None

    # issue 13: dollars (see _cost.py)
    @property
    def cost_usd(self) -> float | None:
        """US dollars of all tokens so far (priced models only; ``None`` without prices)."""
        return _cost.run_cost(self, wasted_only=False)

    @property
    def wasted_cost_usd(self) -> float | None:
        """US dollars of the wasted tokens so far (``None`` without prices)."""
        return _cost.run_cost(self, wasted_only=True)

    def __repr__(self) -> str:
        return (
            f"<agentrel.Run {self.name!r} outcome={self.outcome} attempts={self.attempts} "
            f"retry_depth={self.retry_depth} tokens={self.tokens}>"
        )

    # -- bookkeeping -------------------------------------------------------------------------
    def _attempt_started(self, spec: CallSpec, first_of_call: bool) -> bool:
        """Count an attempt; return True when it is a retry of a non-idempotent tool that
        already failed in this run (the agent loop calling it again)."""
        with self._lock:
            self.attempts += 1
            self._kinds[spec.kind] = self._kinds.get(spec.kind, 0) + 1  # issue 13
            if self.retry_depth:
                self._retried = True
            return first_of_call and not spec.idempotent and spec.name in self._failed_tools

    def _failure(self, name: str, etype: str, wasted_time: float) -> None:
        with self._lock:
            self.retry_depth += 1
            self.recovery_time += wasted_time
            key = (name, etype)
            self._failures[key] = self._failures.get(key, 0) + 1
            self._failed_tools.add(name)


def current_run() -> Run | None:
    """The run this code executes in, or ``None`` outside any run."""
    return _RUN.get()


def quiet() -> bool:
    """Nothing to record: no SDK anywhere and no run to count into (the cheap exit). The
    function decorators inline this test on their hot path."""
    return not T.active and not T.refresh() and _RUN.get() is None


class Call:
    """One logical tool or LLM call; attempts are counted inside it."""

    __slots__ = (
        "_adopted",
        "_attempt_start",
        "_child_exc",
        "_child_started",
        "_ctx",
        "_cur",
        "_delay",
        "_failures",
        "_open",
        "_rejected",
        "_start",
        "_useful",
        "_wasted",
        "adoptable",
        "attempt",
        "counted",
        "error_type",
        "failed_attempts",
        "inner_failures",
        "parent",
        "response_model",
        "retried",
        "run",
        "span",
        "span_extra",
        "spec",
    )

    def __init__(self, spec: CallSpec, run: Run | None, parent: Call | None) -> None:
        self.spec = spec
        self.run = run
        self.parent = parent
        self.span: Span | None = None
        self.attempt = 0
        self.failed_attempts = 0
        self.counted = 0
        self.inner_failures = 0
        self.retried = False
        self.error_type: str | None = None
        self.adoptable = False
        #: the model that answered (LLM calls; set by instrumented clients), for semconv.
        self.response_model: str | None = None
        #: attributes to set on the span when the call ends (one write with the outcome).
        self.span_extra: dict[str, Any] | None = None
        self._adopted = False
        self._open = False
        self._attempt_start = 0.0
        self._start = _now()
        self._rejected = False
        self._useful: Tokens | None = None  # tokens of successful attempts
        self._wasted: Tokens | None = None
        self._cur: Tokens | None = None  # tokens of the attempt in progress
        self._child_started = False
        self._failures: dict[tuple[str, str], int] | None = None
        self._child_exc: BaseException | None = None
        self._delay: float | None = None
        self._ctx: Any = None

    # -- attempts ----------------------------------------------------------------------------
    def begin_attempt(self) -> None:
        """Open the next attempt (retry integrations call this before each retry)."""
        if self._open:
            return
        self.attempt += 1
        self._open = True
        self._attempt_start = _now()
        first = self.attempt == 1
        if not first and self.failed_attempts:
            self.retried = True
        unsafe = False
        self._child_started = False
        if self.run is not None and not self.spec.composite:
            unsafe = self.run._attempt_started(self.spec, first)
        if not first and not self.spec.idempotent:
            unsafe = True
        if unsafe:
            self._unsafe_retry()

    def _unsafe_retry(self) -> None:
        spec = self.spec
        T.unsafe_retries.add(1, spec._name_attrs)
        if self.span is not None:
            self.span.add_event("agentrel.unsafe_retry", {"agentrel.attempt.number": self.attempt})
        warn_once(
            "unsafe:" + spec.name,
            "agentrel: tool %r (system %r) is declared idempotent=False and was retried: "
            "duplicate side effects are possible (counted in agentrel.unsafe_retries; "
            "logged once per tool)",
            spec.name,
            spec.system,
        )

    def attempt_failed(self, exc: BaseException | None = None, etype: str | None = None) -> None:
        """Close the open attempt as failed (no-op when no attempt is open)."""
        if not self._open:
            return
        self._close_attempt(failed=True)
        duration = _now() - self._attempt_start
        et = etype or (error_type(exc) if exc is not None else "unknown")
        self.failed_attempts += 1
        self.error_type = et
        if exc is None or exc is not self._child_exc:
            self.counted += 1
            if self.run is not None:
                self.run._failure(self.spec.name, et, duration)
            else:
                f = self._failures
                if f is None:
                    f = self._failures = {}
                key = (self.spec.name, et)
                f[key] = f.get(key, 0) + 1
        self._attempt_event(duration, et, exc)

    def attempt_succeeded(self) -> None:
        """Close the open attempt as successful."""
        if not self._open:
            return
        self._close_attempt(failed=False)
        if self.attempt > 1:
            self._attempt_event(_now() - self._attempt_start, None)

    def _close_attempt(self, failed: bool) -> None:
        """Settle the attempt's tokens (a failed attempt's are wasted even if the call later
        recovers); a composite call's attempt (a fallback tier) counts as a run attempt only
        when no decorated call ran inside it (whose own attempts are counted)."""
        self._open = False
        cur = self._cur
        if cur:
            self._cur = None
            if failed:
                if self._wasted is None:
                    self._wasted = {}
                _merge(self._wasted, cur)
            elif self._useful is None:
                self._useful = cur
            else:
                _merge(self._useful, cur)
        if self.spec.composite and not self._child_started and self.run is not None:
            self.run._attempt_started(self.spec, False)

    def record_delay(self, seconds: float) -> None:
        """A backoff wait before the next attempt."""
        T.retry_delay.record(seconds, self.spec._name_attrs)
        self._delay = seconds
        if self.run is not None:
            with self.run._lock:
                self.run.recovery_time += seconds

    def _attempt_event(
        self, duration: float, etype: str | None, exc: BaseException | None = None
    ) -> None:
        span = self.span
        if span is None or not span.is_recording():
            return
        attrs: dict[str, Any] = {
            "agentrel.attempt.number": self.attempt,
            "agentrel.attempt.duration": duration,
        }
        if etype is not None:
            attrs[cat.ERROR_TYPE] = etype
        if exc is not None and T.capture_content:
            message = content(str(exc))
            if message is not None:
                attrs["exception.message"] = message
        if self._delay is not None:
            attrs["agentrel.retry.delay"] = self._delay
            self._delay = None
        span.add_event("agentrel.attempt", attrs)

    def adopt(self, spec: CallSpec) -> bool:
        """Let a decorated tool running inside a retry integration's call act as that call's
        attempt (so ``@retry`` outside ``@agentrel.tool`` gives the same metrics as inside).

        Only calls opened by an integration are ``adoptable``; the first tool to run inside
        names the call, later attempts must be the same tool.
        """
        if not self._open:
            return False
        if self.spec is spec:
            return self._adopted
        if not self.adoptable:
            return False
        self.adoptable = False
        self._adopted = True
        self.spec = spec
        if self.span is not None and self.span.is_recording():
            self.span.update_name(spec.span_name)
            self.span.set_attributes(spec.span_attrs)
        return True

    # -- tokens ------------------------------------------------------------------------------
    def add_tokens(self, model: str | None, input: int, output: int) -> None:
        model = model or self.spec.model
        d = self._cur
        if d is None:
            d = self._cur = {}
        if input:
            d[(model, cat.INPUT)] = d.get((model, cat.INPUT), 0) + input
        if output:
            d[(model, cat.OUTPUT)] = d.get((model, cat.OUTPUT), 0) + output


# --- calls ------------------------------------------------------------------------------------
def start_call(spec: CallSpec) -> Call:
    """Open a call and its first attempt. The caller must ``enter`` it and ``finish_call``."""
    parent = _CALL.get()
    call = Call(spec, _RUN.get(), parent)
    if parent is not None:
        parent._child_started = True
        if parent.failed_attempts + parent.inner_failures:
            parent.retried = True
    if T.active:
        try:
            span = T.tracer.start_span(
                spec.span_name, kind=spec.span_kind, attributes=spec.span_attrs
            )
            call.span = span
            call._ctx = trace.set_span_in_context(span)
        except Exception as exc:  # a broken tracer costs the span, not the counts
            telemetry_error("call.span", exc)
    call.begin_attempt()
    return call


def enter(call: Call) -> tuple[Token[Call | None], object | None]:
    """Make ``call`` the current call (and its span the current span)."""
    return _CALL.set(call), (otel_context.attach(call._ctx) if call._ctx is not None else None)


def leave(tokens: tuple[Token[Call | None], object | None]) -> None:
    var_token, ctx_token = tokens
    if ctx_token is not None:
        otel_context.detach(ctx_token)  # type: ignore[arg-type]
    _CALL.reset(var_token)


def finish_call(call: Call, exc: BaseException | None, flagged: bool = False) -> str:
    """End a call: close its attempt, record its metrics and span, hand its tokens and
    failures to the enclosing scope. Returns the call's outcome."""
    if exc is not None:
        call.attempt_failed(exc)
        failed = True
    elif call._rejected or flagged:
        call.attempt_failed(None, cat.REJECTED if call._rejected else cat.RESULT_FLAGGED)
        failed = True
    else:
        call.attempt_succeeded()
        failed = False
    if failed:
        outcome = cat.EXHAUSTED if (call.attempt > 1 or call.retried) else cat.FAILED
    else:
        outcome = cat.RECOVERED if (call.failed_attempts or call.inner_failures) else cat.SUCCESS
    spec = call.spec
    duration = _now() - call._start
    span = call.span
    recording = span is not None and span.is_recording()
    attrs: dict[str, Any] | None = (
        {cat.OUTCOME: outcome, "agentrel.call.attempts": call.attempt} if recording else None
    )
    try:
        T.tool_attempts.record(call.attempt, spec._outcome_attrs[outcome])
        if spec.kind == "tool":
            T.execute_tool_duration.record(
                duration, spec.error_attrs(call.error_type if failed else None)
            )
        elif spec.kind == "llm":
            _record_llm_semconv(call, duration, failed, attrs)
        if spec.name not in _coldstart.SEEN:  # issue 13: the first call of this tool
            _coldstart.first_call(spec.name, duration, attrs)
    except Exception as err:  # a broken meter must not cost the run its bookkeeping
        telemetry_error("call.metrics", err)
    _hand_over(call, exc, failed)
    if span is not None:
        if attrs is not None:
            if call.span_extra:
                attrs.update(call.span_extra)
            if failed:
                attrs[cat.ERROR_TYPE] = call.error_type
                span.set_status(Status(StatusCode.ERROR, call.error_type))
            span.set_attributes(attrs)
        span.end()
    return outcome


def _hand_over(call: Call, exc: BaseException | None, failed: bool) -> None:
    """Move a finished call's failures and tokens to its parent, run, or the exporter."""
    useful, wasted = call._useful, call._wasted
    if call._cur:  # recorded after the last attempt closed: the call's fate decides
        if useful is None:
            useful = {}
        _merge(useful, call._cur)
        call._cur = None
    if failed and useful:
        if wasted is None:
            wasted = {}
        _merge(wasted, useful)
        useful = None
    parent = call.parent
    if parent is not None:
        parent.inner_failures += call.counted + call.inner_failures
        if exc is not None:
            parent._child_exc = exc
        if useful:  # part of the parent's attempt in progress
            if parent._cur is None:
                parent._cur = {}
            _merge(parent._cur, useful)
        if wasted:
            if parent._wasted is None:
                parent._wasted = {}
            _merge(parent._wasted, wasted)
        if call._failures:
            if parent._failures is None:
                parent._failures = {}
            for k, v in call._failures.items():
                parent._failures[k] = parent._failures.get(k, 0) + v
        return
    run = call.run
    if run is not None:
        with run._lock:
            if useful:
                _merge(run._useful, useful)
            if wasted:
                _merge(run._wasted, wasted)
            run._last_call = None if failed else (call.spec.name, useful or {})
        return
    # A call outside any run: its own fate decides absorption and dispositions.
    if call._failures:
        absorbed = "false" if failed else "true"
        for (tool, et), n in call._failures.items():
            T.tool_failures.add(n, {cat.TOOL: tool, cat.ERROR_TYPE: et, cat.ABSORBED: absorbed})
    _emit_tokens(None, None, useful, wasted)


#: (spec, response model) -> semconv attributes: the operation's, and per token type.
_LlmAttrs = tuple[dict[str, Any], dict[str, dict[str, Any]]]
_llm_attr_cache: dict[tuple[CallSpec, str | None], _LlmAttrs] = {}
_LLM_ATTR_CACHE_MAX = 1024


def _llm_attrs(spec: CallSpec, response_model: str | None) -> _LlmAttrs:
    key = (spec, response_model)
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


def _record_llm_semconv(
    call: Call, duration: float, failed: bool, span_attrs: dict[str, Any] | None
) -> None:
    """gen_ai.client.* for an LLM call; its usage and response model go into ``span_attrs``
    (the span's final attributes, None when the span is not recording)."""
    base, by_type = _llm_attrs(call.spec, call.response_model)
    totals: dict[str, int] = {}
    for src in (call._useful, call._wasted):
        if src:
            for (_, ttype), n in src.items():
                if ttype not in _cost.SUBSETS:  # issue 13: cache parts of the input
                    totals[ttype] = totals.get(ttype, 0) + n
    if span_attrs is not None:  # first: a failing meter below must not cost the span these
        if call.response_model:
            span_attrs[cat.RESPONSE_MODEL] = call.response_model
        if totals:
            span_attrs["gen_ai.usage.input_tokens"] = totals.get(cat.INPUT, 0)
            span_attrs["gen_ai.usage.output_tokens"] = totals.get(cat.OUTPUT, 0)
    if failed:
        T.client_operation_duration.record(duration, {**base, cat.ERROR_TYPE: call.error_type})
    else:
        T.client_operation_duration.record(duration, base)
    for ttype, n in totals.items():
        attrs = by_type.get(ttype)
        T.client_token_usage.record(
            n, attrs if attrs is not None else {**base, cat.TOKEN_TYPE: ttype}
        )


_token_attr_cache: dict[tuple[str | None, str | None, str | None, str, str], dict[str, str]] = {}


def _emit_tokens(
    agent: str | None, cohort: str | None, useful: Tokens | None, wasted: Tokens | None
) -> None:
    if _cost.ENABLED and (useful or wasted):  # issue 13: agentrel.cost (guarded inside)
        _cost.emit(agent, cohort, useful, wasted)
    for disposition, tokens in ((cat.USEFUL, useful), (cat.WASTED, wasted)):
        if not tokens:
            continue
        for (model, ttype), n in tokens.items():
            if not n or ttype in _cost.SUBSETS:  # issue 13: cache parts of the input
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


# --- runs -------------------------------------------------------------------------------------
class RunScope:
    """``with agentrel.run(name) as run:`` / ``async with``: opens a run, yields its handle."""

    __slots__ = ("_budget", "_cohort", "_name", "_run", "_tokens")

    def __init__(self, name: str, cohort: str | None, token_budget: int | None) -> None:
        self._name = name
        self._cohort = cohort
        self._budget = token_budget
        self._run: Run | None = None
        self._tokens: Any = None

    def __enter__(self) -> Run:
        run = self._run = open_run(self._name, self._cohort, self._budget)
        self._tokens = enter_run(run)
        return run

    def __exit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        run, tokens = self._run, self._tokens
        self._run = self._tokens = None
        if run is not None:
            finish_run(run, exc)
            leave_run(tokens)

    async def __aenter__(self) -> Run:
        return self.__enter__()

    async def __aexit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(et, exc, tb)


def open_run(name: str, cohort: str | None, budget: int | None) -> Run:
    """Create a run and its span (not yet current: see ``enter_run``)."""
    run = Run(name, cohort, budget)
    try:
        if T.active or T.refresh():
            attrs = {
                cat.OPERATION: "invoke_agent",
                cat.AGENT: name,
                cat.COHORT: run.cohort,
            }
            span = T.tracer.start_span(
                f"invoke_agent {name}", kind=SpanKind.INTERNAL, attributes=attrs
            )
            run._span = span
            run._ctx = trace.set_span_in_context(span)
    except Exception as exc:
        telemetry_error("run.start", exc)
    return run


def enter_run(run: Run) -> Any:
    """Make ``run`` current (a run starts with no current call: nested runs are independent)."""
    ctx = run._ctx
    return _RUN.set(run), _CALL.set(None), otel_context.attach(ctx) if ctx is not None else None


def leave_run(tokens: Any) -> None:
    run_token, call_token, ctx_token = tokens
    try:
        if ctx_token is not None:
            otel_context.detach(ctx_token)
        _CALL.reset(call_token)
        _RUN.reset(run_token)
    except Exception as err:  # pragma: no cover - context misuse by the application
        telemetry_error("run.context", err)


#: Called (guarded, with the run) just before a run is classified: integrations settle work
#: they could not end at the time (a retry loop abandoned with ``return`` and noticed by the
#: GC, an LLM stream nobody read to its end).
before_run_finish: list[Callable[[Run], None]] = []


def finish_run(run: Run, exc: BaseException | None) -> None:
    """Classify the run and record its metrics and span; call while it is still current."""
    for hook in before_run_finish:
        try:
            hook(run)
        except Exception as err:
            telemetry_error("run.hook", err)
    try:
        _finish_run(run, exc)
    except Exception as err:
        telemetry_error("run.finish", err)


_run_attr_cache: dict[tuple[str, str, str], dict[str, str]] = {}


def _finish_run(run: Run, exc: BaseException | None) -> None:
    with run._lock:
        if exc is not None:
            run.outcome = cat.EXHAUSTED if run._retried else cat.FAILED
            _merge(run._wasted, run._useful)
            run._useful = {}
        else:
            run.outcome = cat.RECOVERED if run.retry_depth else cat.SUCCESS
        outcome = run.outcome
        failures = run._failures
        useful, wasted = run._useful, run._wasted
    try:
        amplification = _record_run(run, exc, outcome, failures, useful, wasted)
    except Exception as err:  # a broken meter must not leave the run span open
        telemetry_error("run.metrics", err)
        amplification = None
    span = run._span
    if span is not None:
        if span.is_recording():
            sattrs: dict[str, Any] = {
                cat.OUTCOME: outcome,
                "agentrel.run.retry_depth": run.retry_depth,
                "agentrel.run.attempts": run.attempts,
                "agentrel.run.tokens": run.tokens,
                "agentrel.run.wasted_tokens": run.wasted_tokens,
            }
            if amplification is not None:
                sattrs["agentrel.run.token_amplification"] = amplification
            if run.budget_ratio is not None:
                sattrs["agentrel.run.token_budget_ratio"] = run.budget_ratio
            if _cost.ENABLED:  # issue 13: agentrel.run.cost_usd / wasted_cost_usd
                _cost.span_attrs(sattrs, useful, wasted)
            if exc is not None:
                et = error_type(exc)
                sattrs[cat.ERROR_TYPE] = et
                span.set_status(Status(StatusCode.ERROR, et))
                if T.capture_content:
                    message = content(str(exc))
                    if message is not None:
                        sattrs["exception.message"] = message
            span.set_attributes(sattrs)
        span.end()


def _record_run(
    run: Run,
    exc: BaseException | None,
    outcome: str,
    failures: dict[tuple[str, str], int],
    useful: Tokens,
    wasted: Tokens,
) -> float | None:
    """Record a finished run's metrics (while its span is current, for exemplars)."""
    key = (run.name, outcome, run.cohort)
    attrs = _run_attr_cache.get(key)
    if attrs is None:
        attrs = _run_attr_cache[key] = {
            cat.AGENT: run.name,
            cat.OUTCOME: outcome,
            cat.COHORT: run.cohort,
        }
    # Recorded while the run span is current, so histogram exemplars carry its trace id.
    T.run_retry_depth.record(run.retry_depth, attrs)
    T.run_attempts.record(run.attempts, attrs)
    _callcounts.record(run)  # issue 13: gen_ai.invoke_agent.tool_calls / inference_calls
    if run.retry_depth:
        T.run_recovery_time.record(run.recovery_time, attrs)
    amplification = None
    if exc is None and useful:
        amplification = run.token_amplification
        if amplification is not None:
            T.run_token_amplification.record(
                amplification, {cat.AGENT: run.name, cat.COHORT: run.cohort}
            )
    if failures:
        absorbed = "false" if exc is not None else "true"
        for (tool, et), n in failures.items():
            T.tool_failures.add(n, {cat.TOOL: tool, cat.ERROR_TYPE: et, cat.ABSORBED: absorbed})
    _emit_tokens(run.name, run.cohort, useful, wasted)
    return amplification


# --- tokens and rejections ----------------------------------------------------------------------
def _count(value: object, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"agentrel.record_tokens: {what} must be a non-negative int, got {value!r}"
        )
    return value


def record_tokens(input: int = 0, output: int = 0, model: str | None = None) -> None:
    """Record token usage into the innermost open scope (call, else run).

    Tokens get their disposition when the scope ends: ``useful`` if it succeeded and was not
    rejected, ``wasted`` otherwise (and all of a failed run's tokens are wasted). Outside any
    scope they are counted as ``useful`` at once. ``None`` counts as 0; a negative or
    non-integer count is a telemetry error (logged once, counted, ignored), never raised.
    """
    try:
        i, o = _count(input, "input"), _count(output, "output")
        if not (i or o):
            return
        call = _CALL.get()
        if call is not None:
            call.add_tokens(model, i, o)
            return
        run = _RUN.get()
        tokens: Tokens = {}
        if i:
            tokens[(model, cat.INPUT)] = i
        if o:
            tokens[(model, cat.OUTPUT)] = o
        if run is not None:
            with run._lock:
                _merge(run._useful, tokens)
            return
        if T.active or T.refresh():
            _emit_tokens(None, None, tokens, None)
    except Exception as exc:
        telemetry_error("record_tokens", exc)


def reject(reason: str | None = None) -> None:
    """Mark an output as thrown away (a validator said no; the model will be re-prompted).

    Inside a call, rejects that call: it ends as a failure (``error.type="rejected"``), its
    tokens are wasted, and its return value still reaches the caller unchanged. Outside a call,
    rejects the current run's most recently finished call: a failure of the run and its tokens
    become wasted (the call's already-recorded outcome is not rewritten). ``reason`` goes on the
    span only: keep it a short constant such as ``"invalid_json"``.
    """
    try:
        call = _CALL.get()
        if call is not None:
            call._rejected = True
            if reason is not None and call.span is not None and call.span.is_recording():
                call.span.add_event("agentrel.reject", {"agentrel.reject.reason": str(reason)})
            return
        run = _RUN.get()
        if run is None:
            warn_once("reject:norun", "agentrel.reject() called outside any run or call: ignored")
            return
        with run._lock:
            last, run._last_call = run._last_call, None
            if last is not None:
                _, tokens = last
                for k, v in tokens.items():
                    run._useful[k] = run._useful.get(k, 0) - v
                    run._wasted[k] = run._wasted.get(k, 0) + v
        if last is None:
            warn_once(
                "reject:nocall",
                "agentrel.reject() found no successful call to reject in run %r: ignored",
                run.name,
            )
            return
        run._failure(last[0], cat.REJECTED, 0.0)
        span = run._span
        if span is not None and span.is_recording():
            attrs = {cat.TOOL: last[0]}
            if reason is not None:
                attrs["agentrel.reject.reason"] = str(reason)
            span.add_event("agentrel.reject", attrs)
    except Exception as exc:
        telemetry_error("reject", exc)


def current_call() -> Call | None:
    """The call this code executes in (for integrations), or ``None``."""
    return _CALL.get()


__all__ = [
    "Call",
    "CallSpec",
    "Run",
    "RunScope",
    "current_call",
    "current_run",
    "enter",
    "enter_run",
    "error_type",
    "finish_call",
    "leave",
    "leave_run",
    "open_run",
    "finish_run",
    "record_tokens",
    "reject",
    "start_call",
]
