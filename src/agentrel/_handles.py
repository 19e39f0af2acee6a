"""``CallHandle``: the guarded handle over one core call that ``agentrel.instrumentation``
gives integrations (``call()``, ``start()``, ``current_call()``); re-exported there."""

from __future__ import annotations

from typing import Any

from . import _call
from ._call import Call, enter, finish_call
from ._guard import telemetry_error
from ._tokens import count


class CallHandle:
    """The live handle of one call (``call()``, ``start()``, ``current_call()``). Every
    method is guarded; on the inert handle (nothing to record) every method does nothing."""

    __slots__ = ("_call", "_guarded", "outcome")

    def __init__(self, c: Call | None, guarded: bool = True) -> None:
        self._call = c
        #: False: a telemetry error raises into the integration's own guard (see ``start``).
        self._guarded = guarded
        #: ``success`` / ``recovered`` / ``exhausted`` / ``failed`` once the call has ended.
        self.outcome: str | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CallHandle) and other._call is self._call

    def __hash__(self) -> int:
        return id(self._call)

    def __repr__(self) -> str:
        c = self._call
        if c is None:
            return "<agentrel call (inert)>"
        return f"<agentrel call {c.spec.name!r} attempt={c.attempt} outcome={self.outcome}>"

    def _failed(self, site: str, err: Exception) -> None:
        """A telemetry error in a method: counted under ``site``, or raised (``guarded=False``)
        into the integration's own guard."""
        if not self._guarded:
            raise err
        telemetry_error(site, err)

    # -- what it is ------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        """False for the inert handle of a call that records nothing."""
        return self._call is not None

    @property
    def name(self) -> str | None:
        """The call's name (its spec's); ``None`` when inert."""
        return self._call.spec.name if self._call is not None else None

    @property
    def attempt(self) -> int:
        """The number of the attempt in progress (or the last one), from 1; 0 when inert."""
        return self._call.attempt if self._call is not None else 0

    @property
    def attempt_open(self) -> bool:
        """Whether an attempt is in progress (not yet closed as failed or successful)."""
        return self._call is not None and self._call.attempt_open

    @property
    def span(self) -> Any:
        """The call's span (``None`` when inert or not recording)."""
        return self._call.span if self._call is not None else None

    @property
    def target(self) -> Any:
        """The function the decorator that opened this call wraps (``None`` for calls an
        integration or an instrumented client opened): lets a retry integration tell
        whether the current call is the tool around the very function it retries."""
        return self._call.spec.target if self._call is not None else None

    @property
    def adoptable(self) -> bool:
        """Whether an ``@agentrel.tool`` running inside will become this call."""
        return self._call is not None and self._call.adoptable

    @property
    def composite(self) -> bool:
        """Whether its attempts are made of other work (a fallback chain)."""
        return self._call is not None and self._call.spec.composite

    # -- attempts --------------------------------------------------------------------------
    def attempt_failed(self, exc: BaseException | None = None, *, error: str | None = None) -> None:
        """Close the attempt in progress as failed, by exception (its ``error.type`` is the
        class name) or by an ``error`` type name (``"result_flagged"``, ``"rejected"``, an
        error an SDK reported without raising). A failure is counted once: closing an attempt
        with the very exception a nested call just failed with does not count it again. No-op
        when no attempt is open."""
        c = self._call
        if c is None:
            return
        try:
            c.attempt_failed(exc, error)
        except Exception as err:
            self._failed("call.attempt", err)

    def next_attempt(self, *, starts_in: float = 0.0) -> None:
        """Open the next attempt (a retry); ``starts_in``: seconds from now at which it really
        starts (a hook called before the library sleeps). No-op while an attempt is open."""
        c = self._call
        if c is None:
            return
        try:
            c.begin_attempt()
            if starts_in:
                c.shift_attempt_start(starts_in)
        except Exception as err:
            self._failed("call.attempt", err)

    def retry_wait(self, seconds: float) -> None:
        """A backoff wait before the next attempt (``agentrel.retry.delay``, and the run's
        recovery time)."""
        c = self._call
        if c is None:
            return
        try:
            c.record_delay(float(seconds))
        except Exception as err:
            self._failed("call.delay", err)

    # -- what it produced ------------------------------------------------------------------
    def add_tokens(self, input: int = 0, output: int = 0, model: str | None = None) -> None:
        """Tokens of the attempt in progress (a failed attempt's are wasted). ``model``
        defaults to the spec's."""
        c = self._call
        if c is None:
            return
        try:
            c.add_tokens(model, count(input, "input"), count(output, "output"))
        except Exception as err:
            self._failed("record_tokens", err)

    def set_response_model(self, model: str | None) -> None:
        """The model that answered (LLM calls: ``gen_ai.response.model``)."""
        if self._call is not None and isinstance(model, str) and model:
            self._call.response_model = model

    def set_span_attributes(self, attributes: dict[str, Any]) -> None:
        """Attributes to put on the call's span when it ends (one write with the outcome).
        Never put arguments, results or message text here unless the user opted in."""
        c = self._call
        if c is None:
            return
        if c.span_extra is None:
            c.span_extra = {}
        c.span_extra.update(attributes)

    def reject(self, reason: str | None = None) -> None:
        """The call's output is thrown away: it ends as a failure (``rejected``); ``reason``
        (a short constant) goes on the span only."""
        c = self._call
        if c is None:
            return
        try:
            c.reject(reason)
        except Exception as err:
            self._failed("reject", err)

    def waste(self) -> None:
        """After the call ended successfully: its output was thrown away later (a model
        response whose tool calls failed and were retried), so its useful tokens become
        wasted. Counts no failure (the failure that caused it is counted where it happened).
        Works for a call made directly in a run (not nested in another call)."""
        c = self._call
        if c is None or self.outcome is None:
            return
        try:
            _call.waste(c)
        except Exception as err:
            self._failed("call.waste", err)

    # -- lower level: making it current, ending it -----------------------------------------
    def enter(self) -> Any:
        """Make the call current (and its span the current span); pass the result to
        ``leave``. Returns ``None`` on the inert handle."""
        c = self._call
        if c is None:
            return None
        try:
            return enter(c)
        except Exception as err:
            self._failed("call.context", err)
            return None

    def finish(self, exc: BaseException | None = None, *, flagged: bool = False) -> str | None:
        """End the call (once): with ``exc`` an open attempt fails; ``flagged``: the result is
        a failure. Records its metrics and span; returns (and sets) ``outcome``."""
        c = self._call
        if c is None or self.outcome is not None:
            return self.outcome
        try:
            self.outcome = finish_call(c, exc, flagged)
        except Exception as err:
            self._failed("call.finish", err)
        return self.outcome


def reject_finished(handle: CallHandle, reason: str | None = None) -> None:
    """After the call ended successfully, its output was rejected (an output validator made
    the framework ask the model again): its useful tokens become wasted and the run counts one
    failure, ``error.type="rejected"`` under the call's name, as ``agentrel.reject()`` does for
    the run's last call. The call's recorded outcome is not rewritten."""
    c = handle._call
    if c is None or handle.outcome is None:
        return
    try:
        _call.reject_finished(c, reason)
    except Exception as err:
        telemetry_error("call.reject", err)
