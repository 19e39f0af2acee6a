"""What application code marks by hand: ``agentrel.record_tokens`` and ``agentrel.reject``."""

from __future__ import annotations

from . import _catalogue as cat
from . import _record
from ._current import CALL, RUN
from ._guard import telemetry_error, warn_once
from ._run import reject as reject_in_run
from ._runtime import T
from ._tokens import Tokens, count


def record_tokens(input: int = 0, output: int = 0, model: str | None = None) -> None:
    """Record token usage into the innermost open scope (call, else run).

    Tokens get their disposition when the scope ends: ``useful`` if it succeeded and was not
    rejected, ``wasted`` otherwise (and all of a failed run's tokens are wasted). Outside any
    scope they are counted as ``useful`` at once. ``None`` counts as 0; a negative or
    non-integer count is a telemetry error (logged once, counted, ignored), never raised.
    """
    try:
        i, o = count(input, "input"), count(output, "output")
        if not (i or o):
            return
        call = CALL.get()
        if call is not None:
            call.add_tokens(model, i, o)
            return
        run = RUN.get()
        tokens: Tokens = {}
        if i:
            tokens[(model, cat.INPUT)] = i
        if o:
            tokens[(model, cat.OUTPUT)] = o
        if run is not None and run.ledger.add_tokens(tokens):
            return
        if T.active or T.refresh():
            _record.tokens(None, None, tokens, None)
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
        call = CALL.get()
        if call is not None:
            call.reject(reason)
            return
        run = RUN.get()
        if run is None:
            warn_once("reject:norun", "agentrel.reject() called outside any run or call: ignored")
            return
        tool = run.ledger.take_last_call()  # a closed run's figures are final: None
        if tool is None:
            warn_once(
                "reject:nocall",
                "agentrel.reject() found no successful call to reject in run %r: ignored",
                run.name,
            )
            return
        reject_in_run(run, tool, reason)
    except Exception as exc:
        telemetry_error("reject", exc)
