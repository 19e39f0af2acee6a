"""stamina (``pip install 'agentrel[stamina]'``): stamina's retries made visible.

    from agentrel.integrations import stamina as agentrel_stamina
    agentrel_stamina.instrument()

``instrument()`` adds agentrel's hook to stamina's public on-retry hooks
(``stamina.instrumentation.set_on_retry_hooks``), after the hooks already set, which stay.
The hook counts each scheduled retry: the failed attempt (``caused_by``), its wait and the
next attempt.

stamina calls its hooks only when it schedules a retry, so a success after retries and an
exhausted retry are classified by the call around the attempts. stamina runs its retries on
tenacity, and ``instrument()`` also turns on agentrel's tenacity machinery for stamina's own
retries only (your direct tenacity use stays as it is unless you instrument tenacity too):
inside an ``@agentrel.tool`` the retries are attempts of that tool call; otherwise agentrel
opens a call named after the function stamina retries, which an ``@agentrel.tool`` inside
becomes. So ``@stamina.retry`` outside ``@agentrel.tool`` and inside it give the same metrics.
"""

from __future__ import annotations

import threading
from typing import Any

from .. import instrumentation as ai
from . import tenacity as _tenacity

__all__ = ["instrument", "instrumented", "uninstrument"]

_lock = threading.Lock()
_installed = False


class _NextAttempt:
    """Returned by the hook: stamina enters it now and exits it before the next attempt
    (and, as stamina keeps it, before every later one: only the first exit counts)."""

    __slots__ = ("_call",)

    def __init__(self, call: ai.CallHandle) -> None:
        self._call: ai.CallHandle | None = call

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        call, self._call = self._call, None
        if call is not None:
            try:
                call.next_attempt()
            except Exception as exc:
                ai.report_error("stamina.hook", exc)


def on_retry(details: Any) -> _NextAttempt | None:
    """agentrel's stamina ``RetryHook`` (installed by ``instrument()``)."""
    try:
        tracker = _tenacity.IN_ITER.get()
        if tracker is not None and not tracker.done:
            # agentrel's tenacity machinery drives this retry: it records the wait with the
            # exact value tenacity computed and opens the next attempt.
            tracker.call.attempt_failed(details.caused_by)
            return None
        call = ai.current_call(guarded=False)
        if call is None:
            # No call around the attempts (tenacity machinery off): the wait still counts.
            ai.record_retry_wait(float(details.wait_for), tool=details.name)
            return None
        call.attempt_failed(details.caused_by)
        call.retry_wait(float(details.wait_for))
        return _NextAttempt(call)
    except Exception as exc:
        ai.report_error("stamina.hook", exc)
        return None


def instrument() -> None:
    """Add agentrel's on-retry hook to stamina's hooks (idempotent; imports stamina)."""
    global _installed
    from stamina.instrumentation import get_on_retry_hooks, set_on_retry_hooks

    with _lock:
        if _installed:
            return
        hooks = tuple(get_on_retry_hooks())
        if on_retry not in hooks:
            set_on_retry_hooks((*hooks, on_retry))
        _tenacity.acquire("stamina")
        _installed = True


def uninstrument() -> None:
    """Remove agentrel's hook (hooks set by others stay) and its tenacity machinery."""
    global _installed
    from stamina.instrumentation import get_on_retry_hooks, set_on_retry_hooks

    with _lock:
        if not _installed:
            return
        hooks = tuple(get_on_retry_hooks())
        if on_retry in hooks:
            set_on_retry_hooks(tuple(h for h in hooks if h is not on_retry))
        _tenacity.release("stamina")
        _installed = False


def instrumented() -> bool:
    """Whether ``instrument()`` is in effect."""
    return _installed
