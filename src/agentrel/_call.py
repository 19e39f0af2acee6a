"""Calls (docs/concepts.md): one logical tool or LLM call, ``execute_tool {name}`` /
``chat {model}``, and the attempts inside it.

Counting rules (each one pinned by tests/test_semantics.py):

* A failure is an exception leaving an attempt, a result flagged by ``failure_when=``, or a
  rejection. It is counted once, in the innermost scope it left: the same exception object
  propagating through enclosing calls is not counted again there (so a fallback is counted
  through the failed attempt that caused it, not twice).
* Retry depth of a run = failures counted inside it. ``agentrel.tool.failures`` summed over a
  run equals its retry depth.
* Outcomes and token dispositions: ``_outcome``.

Lifecycle: ``start_call(spec)`` opens the call, its span and attempt 1; ``enter`` makes it
current; ``finish_call`` classifies and records it and hands its failures and tokens to the
enclosing call, its run, or (outside any run) straight to the meters; ``leave`` restores the
context.
"""

from __future__ import annotations

from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from . import _catalogue as cat
from . import _clock, _coldstart, _record
from ._content import exception_content
from ._cost import PRICING
from ._current import CALL, RUN
from ._guard import telemetry_error, warn_once
from ._outcome import call_outcome
from ._run import Run
from ._run import reject as reject_in_run
from ._runtime import T
from ._span import BorrowedSpan
from ._spec import CallSpec, error_type
from ._tokens import CACHE_READ, CACHE_WRITE, MAX_COUNT, Tokens, by_type, merge, too_large

_INPUT, _OUTPUT = cat.INPUT, cat.OUTPUT


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
        "_done",
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
        self._start = _clock.now()
        self._rejected = False
        self._useful: Tokens | None = None  # tokens of successful attempts
        self._wasted: Tokens | None = None
        self._cur: Tokens | None = None  # tokens of the attempt in progress
        self._child_started = False
        self._failures: dict[tuple[str, str], int] | None = None
        self._child_exc: BaseException | None = None
        self._delay: float | None = None
        self._ctx: Any = None
        self._done = False  # finish_call has begun: a late child hands over past this call

    # -- attempts ----------------------------------------------------------------------------
    def begin_attempt(self, start: float | None = None) -> None:
        """Open the next attempt (retry integrations call this before each retry), starting
        now or at ``start`` (a clock reading already taken: the call's own, for its first)."""
        if self._open:
            return
        attempt = self.attempt = self.attempt + 1
        self._open = True
        self._attempt_start = _clock.now() if start is None else start
        spec, run = self.spec, self.run
        unsafe = (
            run is not None
            and not spec.composite
            and run.ledger.attempt_started(spec, attempt == 1)
        )
        if attempt != 1:  # (the first attempt starts with no child and no failure)
            self._child_started = False
            if self.failed_attempts:
                self.retried = True
            if not spec.idempotent:
                unsafe = True
        if unsafe:
            self._unsafe_retry()

    @property
    def attempt_open(self) -> bool:
        """Whether an attempt is in progress."""
        return self._open

    def shift_attempt_start(self, seconds: float) -> None:
        """The attempt in progress really starts ``seconds`` from now (a hook called before
        the retry library sleeps)."""
        self._attempt_start += seconds

    def _unsafe_retry(self) -> None:
        spec = self.spec
        try:
            _record.unsafe_retry(spec)
        except Exception as err:
            telemetry_error("call.metrics", err)
        if self.span is not None:
            try:
                self.span.add_event(cat.EVENT_UNSAFE_RETRY, {cat.ATTEMPT_NUMBER: self.attempt})
            except Exception as err:
                telemetry_error("call.span", err)
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
        duration = _clock.now() - self._attempt_start
        et = etype or (error_type(exc) if exc is not None else "unknown")
        self.failed_attempts += 1
        self.error_type = et
        if exc is None or exc is not self._child_exc:
            self.counted += 1
            run = self.run
            if run is None or not run.ledger.count_failure(self.spec.name, et, duration):
                # outside any run, or after its run closed: the call's own fate decides
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
            self._attempt_event(_clock.now() - self._attempt_start, None)

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
                merge(self._wasted, cur)
            elif self._useful is None:
                self._useful = cur
            else:
                merge(self._useful, cur)
        if self.spec.composite and not self._child_started and self.run is not None:
            self.run.ledger.attempt_started(self.spec, False)

    def record_delay(self, seconds: float) -> None:
        """A backoff wait before the next attempt."""
        self._delay = seconds
        if self.run is not None:
            self.run.add_recovery_time(seconds)
        _record.retry_delay(seconds, self.spec, None, self._ctx)

    def _attempt_event(
        self, duration: float, etype: str | None, exc: BaseException | None = None
    ) -> None:
        """The ``agentrel.attempt`` event (guarded: a failing span costs the event only)."""
        try:
            span = self.span
            if span is None or not span.is_recording():
                return
            attrs: dict[str, Any] = {
                cat.ATTEMPT_NUMBER: self.attempt,
                cat.ATTEMPT_DURATION: duration,
            }
            if etype is not None:
                attrs[cat.ERROR_TYPE] = etype
            if exc is not None and T.capture_content:
                message = exception_content(exc)
                if message is not None:
                    attrs[cat.EXCEPTION_MESSAGE] = message
            if self._delay is not None:
                attrs[cat.ATTEMPT_RETRY_DELAY] = self._delay
                self._delay = None
            span.add_event(cat.EVENT_ATTEMPT, attrs)
        except Exception as err:
            telemetry_error("call.span", err)

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
        """Tokens of the attempt in progress (counts over ``_tokens.MAX_COUNT`` are refused:
        ``TokenCountError``, nothing recorded)."""
        if (input | output) > MAX_COUNT:  # non-negative ints: one test for both
            raise too_large("input" if input > MAX_COUNT else "output")
        model = model or self.spec.model
        d = self._cur
        if d is None:
            d = self._cur = {}
        if input:
            k = (model, _INPUT)
            d[k] = d.get(k, 0) + input
        if output:
            k = (model, _OUTPUT)
            d[k] = d.get(k, 0) + output

    def add_cache_tokens(self, cache_read: int | None, cache_write: int | None) -> None:
        """An LLM call's cached input counts (parts of its input tokens, as the adapters
        report them), carried beside its input tokens for pricing (nothing without prices)."""
        if not PRICING.enabled or not (cache_read or cache_write):
            return
        model = self.spec.model
        d = self._cur
        if d is None:
            d = self._cur = {}
        for ttype, n in ((CACHE_READ, cache_read), (CACHE_WRITE, cache_write)):
            if n:
                if n > MAX_COUNT:
                    raise too_large(ttype)
                d[(model, ttype)] = d.get((model, ttype), 0) + n

    # -- rejection ---------------------------------------------------------------------------
    def reject(self, reason: str | None) -> None:
        """The call's output is thrown away: it ends as a failure (``rejected``); ``reason``
        goes on its span only. The one place a call's rejection is written."""
        self._rejected = True
        span = self.span
        if reason is not None and span is not None and span.is_recording():
            span.add_event(cat.EVENT_REJECT, {cat.REJECT_REASON: str(reason)})

    def _take_child(
        self, child: Call, exc: BaseException | None, useful: Tokens | None, wasted: Tokens | None
    ) -> None:
        """A call nested in this one ended: its failures and tokens become this call's."""
        self.inner_failures += child.counted + child.inner_failures
        if exc is not None:
            self._child_exc = exc
        if useful:  # part of this call's attempt in progress
            if self._cur is None:
                self._cur = {}
            merge(self._cur, useful)
        if wasted:
            if self._wasted is None:
                self._wasted = {}
            merge(self._wasted, wasted)
        failures = child._failures
        if failures:
            if self._failures is None:
                self._failures = {}
            for k, v in failures.items():
                self._failures[k] = self._failures.get(k, 0) + v

    def child_started(self) -> None:
        """A call opened inside this one (it counts its own attempts)."""
        self._child_started = True
        if self.failed_attempts + self.inner_failures:
            self.retried = True


def start_call(spec: CallSpec, on_span: Span | None = None) -> Call:
    """Open a call and its first attempt. The caller must ``enter`` it and ``finish_call``.

    ``on_span``: record onto that span (another tracer's, for the same operation, already
    current) instead of opening one: agentrel neither renames nor ends it."""
    parent = CALL.get()
    call = Call(spec, RUN.get(), parent)
    if parent is not None:
        parent.child_started()
    if on_span is not None:
        try:
            on_span.set_attributes(spec.span_attrs)
            call.span = BorrowedSpan(on_span)  # type: ignore[assignment]
        except Exception as exc:
            telemetry_error("call.span", exc)
    elif T.active:
        try:
            span = T.tracer.start_span(
                spec.span_name, kind=spec.span_kind, attributes=spec.span_attrs
            )
            call.span = span
            call._ctx = trace.set_span_in_context(span)
        except Exception as exc:  # a broken tracer costs the span, not the counts
            telemetry_error("call.span", exc)
    call.begin_attempt(call._start)  # the first attempt starts when the call does
    return call


Saved = tuple["Token[Call | None]", object | None]


def enter(call: Call) -> Saved:
    """Make ``call`` the current call (and its span the current span); returns what ``leave``
    needs to restore the context."""
    return CALL.set(call), (otel_context.attach(call._ctx) if call._ctx is not None else None)


def leave(saved: Saved) -> None:
    call_reset, ctx_reset = saved
    if ctx_reset is not None:
        otel_context.detach(ctx_reset)  # type: ignore[arg-type]
    CALL.reset(call_reset)


def finish_call(call: Call, exc: BaseException | None, flagged: bool = False) -> str:
    """End a call: close its attempt, hand its tokens and failures to the enclosing scope
    (plain Python, first), then record its metrics and span, each emission guarded on its own
    and the span ended whatever failed. Returns the call's outcome."""
    call._done = True
    if exc is not None:
        call.attempt_failed(exc)
        failed = True
    elif call._rejected or flagged:
        call.attempt_failed(None, cat.REJECTED if call._rejected else cat.RESULT_FLAGGED)
        failed = True
    else:
        call.attempt_succeeded()
        failed = False
    outcome = call_outcome(
        failed, call.attempt, call.retried, call.failed_attempts + call.inner_failures
    )
    spec = call.spec
    duration = _clock.now() - call._start
    etype = call.error_type if failed else None
    # before the hand-over, which merges the tallies in place
    usage = by_type(call._useful, call._wasted) if spec.kind == "llm" else None
    _hand_over(call, exc, failed)
    span = call.span
    attrs: dict[str, Any] | None = None
    if span is not None:
        try:
            if span.is_recording():
                attrs = {cat.OUTCOME: outcome, cat.CALL_ATTEMPTS: call.attempt}
                if usage is not None:
                    if call.response_model:
                        attrs[cat.RESPONSE_MODEL] = call.response_model
                    if usage:
                        attrs[cat.USAGE_INPUT] = usage.get(cat.INPUT, 0)
                        attrs[cat.USAGE_OUTPUT] = usage.get(cat.OUTPUT, 0)
        except Exception as err:
            telemetry_error("call.span", err)
    if T.active:  # else the instruments are no-ops: nothing to emit
        ctx = call._ctx
        try:
            _record.tool_call(spec, outcome, call.attempt, duration, etype, ctx)
        except Exception as err:  # a broken meter costs this point, not the rest
            telemetry_error("call.metrics", err)
        if usage is not None:
            try:
                _record.llm_call(spec, call.response_model, duration, etype, usage, ctx)
            except Exception as err:
                telemetry_error("call.metrics", err)
        if spec.name not in _coldstart.SEEN:  # this tool's first call in the process
            try:
                _coldstart.first_call(spec.name, duration, attrs, ctx)
            except Exception as err:
                telemetry_error("call.metrics", err)
    if span is not None:
        try:
            if attrs is not None:
                if call.span_extra:
                    attrs.update(call.span_extra)
                if failed:
                    attrs[cat.ERROR_TYPE] = call.error_type
                    span.set_status(Status(StatusCode.ERROR, call.error_type))
                span.set_attributes(attrs)
        except Exception as err:
            telemetry_error("call.span", err)
        finally:
            span.end()
    return outcome


def _hand_over(call: Call, exc: BaseException | None, failed: bool) -> None:
    """Move a finished call's failures and tokens to its parent or its run, or (a call
    outside any run, or one that ended after its run closed) record them at once."""
    useful, wasted = call._useful, call._wasted
    if call._cur:  # recorded after the last attempt closed: the call's fate decides
        if useful is None:
            useful = {}
        merge(useful, call._cur)
        call._cur = None
    if failed and useful:
        if wasted is None:
            wasted = {}
        merge(wasted, useful)
        useful = None
    parent = call.parent
    # A parent that already ended (the child was handed to a task or a thread that outlived
    # it) has recorded its tokens and failures: the child hands over to the run instead.
    if parent is not None and not parent._done:
        parent._take_child(call, exc, useful, wasted)
        return
    run = call.run
    if run is not None and run.ledger.take_call(call.spec.name, useful, wasted, failed):
        return
    # A call outside any run, or one that ended after its run closed (work handed to a task or
    # a thread that outlived the run): its own fate decides absorption and dispositions.
    if call._failures:
        try:
            _record.failures(call._failures, failed)
        except Exception as err:
            telemetry_error("call.metrics", err)
    if useful or wasted:
        try:
            _record.tokens(None, None, useful, wasted)
        except Exception as err:
            telemetry_error("call.metrics", err)


def waste(call: Call) -> None:
    """A call that ended successfully had its output thrown away later (a model response
    whose tool calls failed and were retried): move its useful tokens to wasted in the run
    that holds them. No failure is counted (the one that caused it was counted where it
    happened). Only for a call handed straight to its run (no enclosing call)."""
    useful = call._useful
    run = call.run
    if not useful or run is None or call.parent is not None:
        return
    run.ledger.waste(useful)
    call._useful = None


def reject_finished(call: Call, reason: str | None = None) -> None:
    """A call that ended successfully had its output rejected afterwards (an output validator
    made the framework ask the model again): its useful tokens become wasted and its run counts
    one failure, ``error.type="rejected"`` under the call's name, as ``agentrel.reject()`` does
    for the run's last call. The call's recorded outcome is not rewritten."""
    run = call.run
    if run is None or call.parent is not None:
        return
    waste(call)
    reject_in_run(run, call.spec.name, reason)
