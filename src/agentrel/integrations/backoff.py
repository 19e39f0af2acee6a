"""backoff (``pip install 'agentrel[backoff]'``): ready-made event handlers.

    import backoff
    from agentrel.integrations.backoff import handlers

    @agentrel.tool
    @backoff.on_exception(backoff.expo, TimeoutError, max_tries=4, **handlers())
    def search(query): ...

``handlers()`` is ``{"on_backoff": on_backoff, "on_giveup": on_giveup, "on_success":
on_success}``; pass them one by one, or in lists next to your own handlers. Nothing is patched
and this module does not import backoff.

backoff's handlers run inside the decorated function, so the retries are attempts of the
agentrel call around it: put ``@agentrel.tool`` outside ``@backoff.on_...`` (or call the
retried function from inside a tool). That call classifies the outcome: ``recovered`` after a
retry, ``exhausted`` when backoff gave up and raised. A give-up that *returns*
(``on_predicate``, ``raise_on_giveup=False``) leaves the verdict to the tool: give it
``failure_when=`` to count the returned value as a failure. With ``@agentrel.tool`` inside
``@backoff.on_...`` each attempt is a call of its own (the run's retry depth is the same; the
calls are not merged), and the waits are recorded under ``module.qualname`` of the function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .. import instrumentation as ai
from .tenacity import qualified_name

__all__ = ["handlers", "on_backoff", "on_giveup", "on_success"]


def _failed(call: ai.CallHandle, details: Mapping[str, Any]) -> None:
    exc = details.get("exception")
    if exc is not None:
        call.attempt_failed(exc)
    else:  # on_predicate: the value was flagged
        call.attempt_failed(error=ai.RESULT_FLAGGED)


def on_backoff(details: Mapping[str, Any]) -> None:
    """backoff scheduled a retry: the attempt failed, a wait starts, then the next attempt."""
    try:
        wait = float(details["wait"])
        call = ai.current_call(guarded=False)
        if call is None:
            ai.record_retry_wait(wait, tool=qualified_name(details["target"]))
            return
        _failed(call, details)
        call.retry_wait(wait)
        call.next_attempt(starts_in=wait)  # the next attempt starts when the wait is over
    except Exception as exc:
        ai.report_error("backoff.on_backoff", exc)


def on_giveup(details: Mapping[str, Any]) -> None:
    """backoff gave up: the last attempt failed."""
    try:
        call = ai.current_call(guarded=False)
        if call is not None:
            _failed(call, details)
    except Exception as exc:
        ai.report_error("backoff.on_giveup", exc)


def on_success(details: Mapping[str, Any]) -> None:
    """backoff got a result: the open attempt is the successful one, and the call around it
    classifies the outcome when it ends (nothing is recorded here)."""
    return None


def handlers() -> dict[str, Callable[[Mapping[str, Any]], None]]:
    """The three handlers as keyword arguments for ``backoff.on_exception`` / ``on_predicate``."""
    return {"on_backoff": on_backoff, "on_giveup": on_giveup, "on_success": on_success}
