"""Runs (docs/concepts.md): one user-visible operation, ``invoke_agent {name}``.

A run counts the attempts and failures of every call inside it, holds their tokens until its
fate is known (its ledger: ``_ledger``), and, when it ends, is classified
(``_outcome.run_outcome``) and recorded (``_record.run``): retry depth, attempts, recovery
time, amplification, the failures by tool with their ``absorbed`` value, and every token by
disposition.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from . import _callcounts, _clock, _record
from . import _catalogue as cat
from ._content import exception_content, holding
from ._cost import PRICING
from ._current import CALL, RUN
from ._guard import telemetry_error
from ._ledger import Ledger
from ._runtime import T
from ._span import BorrowedSpan
from ._spec import error_type
from ._tokens import Tokens, total
from ._verdict import run_ref


class Run:
    """The live handle of one run (``with agentrel.run(...) as run``).

    Read-only for application code: ``name``, ``cohort``, ``attempts``, ``retry_depth``,
    ``tokens``, ``useful_tokens``, ``wasted_tokens``, ``token_amplification``,
    ``budget_ratio``, ``recovery_time``, ``cost_usd``, ``wasted_cost_usd`` (US dollars, with
    prices: docs/metrics.md) and, once the run has finished, ``outcome`` and ``ref``. Once
    ``outcome`` is set the figures are final: work that ends after the run (a task or a thread
    that outlived it) is recorded as work outside any run (docs/reliability.md). The figures
    live in the run's ``ledger`` (agentrel's own: every change to them is one of its methods).
    """

    __slots__ = ("_arming", "_ctx", "_span", "_start", "cohort", "ledger", "name", "token_budget")

    def __init__(self, name: str, cohort: str | None, token_budget: int | None) -> None:
        self.ledger = Ledger()
        self.name = name
        self.cohort = T.cohort(cohort)
        self.token_budget = token_budget
        self._span: Span | None = None
        self._ctx: Any = None
        self._start = _clock.now()
        self._arming = False  # counted in ``T.armed`` (by ``open_run``) until it finishes

    # -- live figures ------------------------------------------------------------------------
    @property
    def attempts(self) -> int:
        """Attempts of the calls in the run so far (failed ones and retries included)."""
        return self.ledger.attempts

    @property
    def retry_depth(self) -> int:
        """Failures absorbed or not inside the run so far."""
        return self.ledger.retry_depth

    @property
    def recovery_time(self) -> float:
        """Seconds spent in failed attempts and backoff waits so far."""
        return self.ledger.recovery_time

    @property
    def outcome(self) -> str | None:
        """``success`` / ``recovered`` / ``exhausted`` / ``failed`` once the run has finished."""
        return self.ledger.outcome

    @property
    def useful_tokens(self) -> int:
        """Tokens on the path that produced the answer so far (all of them wasted if the run
        fails)."""
        return self.ledger.useful_tokens

    @property
    def wasted_tokens(self) -> int:
        """Tokens spent on failed, rejected or thrown-away work."""
        return self.ledger.wasted_tokens

    @property
    def tokens(self) -> int:
        """All tokens recorded in this run."""
        return self.ledger.tokens

    @property
    def token_amplification(self) -> float | None:
        """All tokens ÷ useful tokens (1.0 = nothing wasted); ``None`` with no useful tokens."""
        return self.ledger.token_amplification

    @property
    def budget_ratio(self) -> float | None:
        """Tokens spent ÷ ``token_budget``, when a budget was given."""
        return self.tokens / self.token_budget if self.token_budget else None

    @property
    def cost_usd(self) -> float | None:
        """US dollars of all tokens so far (priced models only; ``None`` without prices)."""
        return self._usd(wasted_only=False)

    @property
    def wasted_cost_usd(self) -> float | None:
        """US dollars of the wasted tokens so far (``None`` without prices)."""
        return self._usd(wasted_only=True)

    def _usd(self, wasted_only: bool) -> float | None:
        try:
            useful, wasted = self.ledger.token_tallies()
            figures = PRICING.usd(useful, wasted)
        except Exception as exc:
            telemetry_error("cost.run", exc)
            return None
        if figures is None:
            return None
        return float(figures[1] if wasted_only else figures[0])

    @property
    def ref(self) -> str | None:
        """Once the run has finished: a short string naming it for a later verdict
        (``agentrel.verdict(ref, "wrong", source="thumbs")``, from any process, any time
        later): base64url of its agent, cohort, outcome and trace and span ids, no content.
        ``None`` while the run is open."""
        return run_ref(self)

    def add_recovery_time(self, seconds: float) -> None:
        """A backoff wait inside the run (the one place recovery time grows besides failed
        attempts)."""
        self.ledger.add_recovery_time(seconds)

    def __repr__(self) -> str:
        return (
            f"<agentrel.Run {self.name!r} outcome={self.outcome} attempts={self.attempts} "
            f"retry_depth={self.retry_depth} tokens={self.tokens}>"
        )

    # -- what the core reads ----------------------------------------------------------------
    @property
    def context(self) -> Any:
        """The OpenTelemetry context holding the run's span (``None`` without one)."""
        return self._ctx

    @property
    def span(self) -> Span | None:
        """The run's span (``None`` when not recording)."""
        return self._span


def reject(run: Run, tool: str, reason: str | None) -> None:
    """Count the rejection of a finished call of ``run`` (``error.type="rejected"`` under its
    name) and put it on the run's span: the one place a run's rejection is written."""
    run.ledger.count_failure(tool, cat.REJECTED, 0.0)
    span = run._span
    if span is not None and span.is_recording():
        attrs = {cat.TOOL: tool}
        if reason is not None:
            attrs[cat.REJECT_REASON] = str(reason)
        span.add_event(cat.EVENT_REJECT, attrs)


#: The open entries of run scopes in this context, innermost last: (scope, run, saved).
#: Per context, not on the scope object, so one ``agentrel.run(...)`` object entered by many
#: asyncio tasks or threads at once (or nested in itself) gives each entry its own run.
_Entry = tuple["RunScope", Run | None, Any]
#: The open entries of run scopes in this context, innermost first, as a linked list
#: (entry, the rest): (scope, the run it opened or None, what ``leave_run`` needs). Per
#: context, not on the scope object, so one ``agentrel.run(...)`` object entered by many
#: asyncio tasks or threads at once (or nested in itself) gives each entry its own run.
_Entries = tuple[_Entry, Any] | None
_ENTRIES: ContextVar[_Entries] = ContextVar("agentrel.run_scopes", default=None)


def _finish_holding(run: Run, exc: BaseException | None) -> BaseException | None:
    """``finish_run``; an interrupt the host's ``redact`` raises while the run's message is
    captured is returned once the run is finished (its span complete), for the caller to raise
    after leaving the run."""
    if T.redact is None:
        finish_run(run, exc)
        return None
    return holding("run.finish", finish_run, run, exc)


class RunScope:
    """``with agentrel.run(name) as run:`` / ``async with``: opens a run, yields its handle.

    Each entry is its own run, as each call of an ``@agentrel.agent`` function is: the same
    object may be entered by concurrent tasks and threads, and nested in itself. ``join``: a
    run already current outside any call is joined instead (no run of its own);
    ``on_span``: record onto that span (see ``open_run``)."""

    __slots__ = ("_budget", "_cohort", "_join", "_name", "_on", "_open")

    def __init__(
        self,
        name: str,
        cohort: str | None,
        token_budget: int | None,
        join: bool = False,
        on_span: Span | None = None,
    ) -> None:
        self._name = name
        self._cohort = cohort
        self._budget = token_budget
        self._join = join
        self._on = on_span
        #: this object's open entries, in case one is exited in another context
        self._open: list[_Entry] = []

    def open(self) -> tuple[Run | None, bool]:
        """Enter: (the run, whether this entry opened it). ``(None, False)`` when a run could
        not open (counted as a telemetry error)."""
        run: Run | None = None
        opened = False
        saved: Any = None
        if self._join and CALL.get() is None:
            run = RUN.get()
        if run is None:
            try:
                run = open_run(self._name, self._cohort, self._budget, self._on)
                saved = enter_run(run)
                opened = True
            except Exception as exc:
                telemetry_error("run.start", exc)
                run = None
        entry = (self, run if opened else None, saved)
        _ENTRIES.set((entry, _ENTRIES.get()))
        self._open.append(entry)
        return run, opened

    def close(self, exc: BaseException | None) -> None:
        """Exit this scope's innermost entry in this context: finish the run it opened."""
        top = _ENTRIES.get()
        entry = None
        if top is not None and top[0][0] is self:  # the usual case: the innermost entry
            entry = top[0]
            _ENTRIES.set(top[1])
        elif top is not None:  # an inner entry of another scope is still open: unlink ours
            kept: list[_Entry] = []
            node: _Entries = top
            while node is not None:
                if node[0][0] is self:
                    entry = node[0]
                    rest = node[1]
                    for e in reversed(kept):
                        rest = (e, rest)
                    _ENTRIES.set(rest)
                    break
                kept.append(node[0])
                node = node[1]
        opened = self._open
        if entry is None:  # exited in another context than it was entered in (a test
            try:  # fixture's set-up and teardown): the object's most recent open entry
                entry = opened.pop()
            except IndexError:
                return
            if entry[1] is not None:  # its context is not this one: nothing to restore here
                held = _finish_holding(entry[1], exc)
                if held is not None:
                    raise held
            return
        try:  # noqa: SIM105 - not contextlib.suppress: three Python calls per run
            opened.remove(entry)  # one C call: atomic against other threads
        except ValueError:
            pass
        run, saved = entry[1], entry[2]
        if run is not None:
            try:
                held = _finish_holding(run, exc)
            finally:  # whatever happens, the run is no longer current
                leave_run(saved)
            if held is not None:
                raise held

    def __enter__(self) -> Run:
        run, _ = self.open()
        if run is None:  # pragma: no cover - open_run guards its own telemetry
            run = Run(self._name, self._cohort, self._budget)
        return run

    def __exit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        self.close(exc)

    async def __aenter__(self) -> Run:
        return self.__enter__()

    async def __aexit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        self.close(exc)


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
        elif T.active or (not T.hooked and T.refresh()):
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
    """Settle the ledger first (plain Python), then emit: each emission guarded on its own,
    the span ended whatever failed before it. Without a provider there is nothing to emit
    (the instruments are no-ops): the run's figures are kept all the same."""
    failed = exc is not None
    ledger = run.ledger
    outcome, failures, useful, wasted, kinds = ledger.close(failed)
    tu, tw = total(useful), total(wasted)
    amplification = (tu + tw) / tu if tu and not failed else None
    usd: tuple[Decimal, Decimal] | None = None
    if T.active:
        ctx = run._ctx
        try:
            _record.run(
                run.name,
                run.cohort,
                outcome,
                ledger.retry_depth,
                ledger.attempts,
                ledger.recovery_time,
                amplification,
                ctx,
            )
        except Exception as err:
            telemetry_error("run.metrics", err)
        try:
            _callcounts.record(run.name, kinds, ctx)
        except Exception as err:
            telemetry_error("run.metrics", err)
        if failures:
            try:
                _record.failures(failures, failed)
            except Exception as err:
                telemetry_error("run.metrics", err)
        try:
            usd = _record.tokens(run.name, run.cohort, useful, wasted)
        except Exception as err:
            telemetry_error("run.metrics", err)
    span = run._span
    if span is None:
        return
    try:
        if span.is_recording():
            attrs = _run_span_attributes(run, outcome, amplification, tu, tw)
            if PRICING.enabled:
                _run_span_cost(attrs, useful, wasted, usd)
            if exc is not None:
                _run_span_error(span, attrs, exc)
            span.set_attributes(attrs)
    except Exception as err:
        telemetry_error("run.span", err)
    finally:
        span.end()


def _run_span_attributes(
    run: Run, outcome: str, amplification: float | None, tu: int, tw: int
) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        cat.OUTCOME: outcome,
        cat.SPAN_RUN_RETRY_DEPTH: run.ledger.retry_depth,
        cat.SPAN_RUN_ATTEMPTS: run.ledger.attempts,
        cat.RUN_TOKENS: tu + tw,
        cat.RUN_WASTED_TOKENS: tw,
    }
    if amplification is not None:
        attrs[cat.RUN_AMPLIFICATION] = amplification
    if run.token_budget:
        attrs[cat.RUN_BUDGET_RATIO] = (tu + tw) / run.token_budget
    return attrs


def _run_span_cost(
    attrs: dict[str, Any], useful: Tokens, wasted: Tokens, usd: tuple[Decimal, Decimal] | None
) -> None:
    """``agentrel.run.cost_usd`` / ``wasted_cost_usd``: the dollars the run's tokens were
    recorded with, or priced now (no tokens were priced at the end, or the meter failed)."""
    if usd is None:
        usd = PRICING.usd(useful, wasted)
    if usd is not None:
        attrs[cat.RUN_COST] = float(usd[0])
        attrs[cat.RUN_WASTED_COST] = float(usd[1])


def _run_span_error(span: Span, attrs: dict[str, Any], exc: BaseException) -> None:
    et = error_type(exc)
    attrs[cat.ERROR_TYPE] = et
    span.set_status(Status(StatusCode.ERROR, et))
    if T.capture_content:
        message = exception_content(exc)
        if message is not None:
            attrs[cat.EXCEPTION_MESSAGE] = message


class RunActivation:
    """``with activate(run):``: see ``activate``."""

    __slots__ = ("_run", "_saved")

    def __init__(self, run: Run | None) -> None:
        self._run = run
        self._saved: Any = None

    def __enter__(self) -> None:
        if self._run is not None:
            try:
                self._saved = enter_run(self._run)
            except Exception as exc:
                telemetry_error("run.context", exc)

    def __exit__(self, *exc_info: object) -> None:
        saved, self._saved = self._saved, None
        if saved is not None:
            leave_run(saved)


def activate(run: Run | None) -> RunActivation:
    """``with activate(run):`` makes ``run`` (opened by ``run_scope`` and not yet finished)
    the current run, with no current call, for the block only; ``None`` does nothing.

    For integrations whose run spans the steps of a generator (a framework's ``stream()``):
    open the run once, and activate it around each step, so the run is current while the
    framework works and not in the consumer's code between chunks."""
    return RunActivation(run)
