"""Runs (DESIGN §2): one user-visible operation, ``invoke_agent {name}``.

A run counts the attempts and failures of every call inside it, holds their tokens until its
fate is known, and, when it ends, is classified (``_outcome.run_outcome``) and recorded
(``_record.run``): retry depth, attempts, recovery time, amplification, the failures by tool
with their ``absorbed`` value, and every token by disposition.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from . import _callcounts, _clock, _cost, _record
from . import _catalogue as cat
from ._content import exception_content
from ._current import CALL, RUN
from ._guard import telemetry_error
from ._outcome import run_outcome
from ._runtime import T
from ._span import BorrowedSpan
from ._spec import CallSpec, error_type
from ._tokens import Tokens, merge, total


class Run:
    """The live handle of one run (``with agentrel.run(...) as run``).

    Read-only for application code: ``name``, ``cohort``, ``attempts``, ``retry_depth``,
    ``tokens``, ``useful_tokens``, ``wasted_tokens``, ``token_amplification``,
    ``budget_ratio``, ``recovery_time``, ``cost_usd``, ``wasted_cost_usd`` (US dollars, with
    prices: docs/metrics.md) and, once the run has finished, ``outcome``. Once ``outcome`` is
    set the figures are final: work that ends after the run (a task or a thread that outlived
    it) is recorded as work outside any run (docs/reliability.md).
    """

    __slots__ = (
        "_arming",
        "_closed",
        "_ctx",
        "_failed_tools",
        "_failures",
        "_kinds",
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
        self._kinds: dict[str, int] = {}  # attempts by call kind (GenAI semconv call counts)
        self._useful: Tokens = {}
        self._wasted: Tokens = {}
        self._last_call: tuple[str, Tokens] | None = None
        self._lock = threading.Lock()
        self._span: Span | None = None
        self._ctx: Any = None
        self._start = _clock.now()
        self._arming = False  # counted in ``T.armed`` (by ``open_run``) until it finishes
        # Classified: its figures are final. Work that ends later (a task or thread that
        # outlived the run) is recorded as work outside any run (``_call._hand_over``).
        self._closed = False

    # -- live figures ------------------------------------------------------------------------
    @property
    def useful_tokens(self) -> int:
        """Tokens on the path that produced the answer so far (all of them wasted if the run
        fails)."""
        return total(self._useful)

    @property
    def wasted_tokens(self) -> int:
        """Tokens spent on failed, rejected or thrown-away work."""
        return total(self._wasted)

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
        already failed in this run (the agent loop calling it again). Not counted once the run
        has closed."""
        with self._lock:
            if self._closed:
                return False
            self.attempts += 1
            self._kinds[spec.kind] = self._kinds.get(spec.kind, 0) + 1
            if self.retry_depth:
                self._retried = True
            return first_of_call and not spec.idempotent and spec.name in self._failed_tools

    def add_recovery_time(self, seconds: float) -> None:
        """A backoff wait inside the run (the one place recovery time grows besides failed
        attempts)."""
        with self._lock:
            if not self._closed:
                self.recovery_time += seconds

    def _failure(self, name: str, etype: str, wasted_time: float) -> bool:
        """Count a failure of the run; False (nothing counted) once the run has closed."""
        with self._lock:
            if self._closed:
                return False
            self.retry_depth += 1
            self.recovery_time += wasted_time
            key = (name, etype)
            self._failures[key] = self._failures.get(key, 0) + 1
            self._failed_tools.add(name)
            return True


class RunScope:
    """``with agentrel.run(name) as run:`` / ``async with``: opens a run, yields its handle."""

    __slots__ = ("_budget", "_cohort", "_name", "_run", "_saved")

    def __init__(self, name: str, cohort: str | None, token_budget: int | None) -> None:
        self._name = name
        self._cohort = cohort
        self._budget = token_budget
        self._run: Run | None = None
        self._saved: Any = None

    def __enter__(self) -> Run:
        run = self._run = open_run(self._name, self._cohort, self._budget)
        self._saved = enter_run(run)
        return run

    def __exit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        run, saved = self._run, self._saved
        self._run = self._saved = None
        if run is not None:
            finish_run(run, exc)
            leave_run(saved)

    async def __aenter__(self) -> Run:
        return self.__enter__()

    async def __aexit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(et, exc, tb)


def open_run(name: str, cohort: str | None, budget: int | None, on_span: Span | None = None) -> Run:
    """Create a run and its span (not yet current: see ``enter_run``); ``on_span``: record
    onto that span (another tracer's ``invoke_agent`` span, already current) instead."""
    run = Run(name, cohort, budget)
    T.run_opened()
    run._arming = True
    try:
        if on_span is not None:
            on_span.set_attributes(
                {cat.OPERATION: "invoke_agent", cat.AGENT: name, cat.COHORT: run.cohort}
            )
            run._span = BorrowedSpan(on_span)  # type: ignore[assignment]
        elif T.active or T.refresh():
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
    """Make ``run`` current (a run starts with no current call: nested runs are independent).
    Returns what ``leave_run`` needs to restore the context."""
    ctx = run._ctx
    return RUN.set(run), CALL.set(None), otel_context.attach(ctx) if ctx is not None else None


def leave_run(saved: Any) -> None:
    run_reset, call_reset, ctx_reset = saved
    try:
        if ctx_reset is not None:
            otel_context.detach(ctx_reset)
        CALL.reset(call_reset)
        RUN.reset(run_reset)
    except Exception as err:  # pragma: no cover - context misuse by the application
        telemetry_error("run.context", err)


#: Called (guarded, with the run) just before a run is classified: integrations settle work
#: they could not end at the time (a retry loop abandoned with ``return`` and noticed by the
#: GC, an LLM stream nobody read to its end). ``instrumentation.on_run_finish`` adds to it.
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
    finally:
        if run._arming:  # once per run, however often it is finished
            run._arming = False
            T.run_closed()


def _finish_run(run: Run, exc: BaseException | None) -> None:
    failed = exc is not None
    with run._lock:
        if failed:  # a failed run wastes every token inside it
            merge(run._wasted, run._useful)
            run._useful = {}
        outcome = run.outcome = run_outcome(failed, run._retried, run.retry_depth)
        run._closed = True
        failures = run._failures
        useful, wasted = run._useful, run._wasted
    amplification = None
    if useful and not failed:
        amplification = (total(useful) + total(wasted)) / total(useful)
    try:
        _record.run(
            run.name,
            run.cohort,
            outcome,
            run.retry_depth,
            run.attempts,
            run.recovery_time,
            amplification,
            run._ctx,
        )
        _callcounts.record(run)
        if failures:
            _record.failures(failures, failed)
        _record.tokens(run.name, run.cohort, useful, wasted)
    except Exception as err:  # a broken meter must not leave the run span open
        telemetry_error("run.metrics", err)
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
            if _cost.ENABLED:  # agentrel.run.cost_usd / wasted_cost_usd
                _cost.span_attrs(sattrs, useful, wasted)
            if exc is not None:
                et = error_type(exc)
                sattrs[cat.ERROR_TYPE] = et
                span.set_status(Status(StatusCode.ERROR, et))
                if T.capture_content:
                    message = exception_content(exc)
                    if message is not None:
                        sattrs["exception.message"] = message
            span.set_attributes(sattrs)
        span.end()
