"""stamina (``pip install 'agentrel-otel[stamina]'``): stamina's retries made visible.

    from agentrel.integrations import stamina as agentrel_stamina
    agentrel_stamina.instrument()

``instrument()`` adds agentrel's hook to stamina's public on-retry hooks
(``stamina.instrumentation.set_on_retry_hooks``), after the hooks already set, which stay.
stamina's deferred hook factories (``RetryHookFactory``, its default Prometheus and
structlog/logging hooks) are left deferred: they still run on the first scheduled retry, not
at ``instrument()``. The hook counts each scheduled retry: the failed attempt
(``caused_by``), its wait and the next attempt.

stamina calls its hooks only when it schedules a retry, so a success after retries and an
exhausted retry are classified by the call around the attempts. stamina runs its retries on
tenacity, and ``instrument()`` also turns on agentrel's tenacity machinery for stamina's own
retries only (your direct tenacity use stays as it is unless you instrument tenacity too):
inside an ``@agentrel.tool`` the retries are attempts of that tool call; otherwise agentrel
opens a call named after the function stamina retries, which an ``@agentrel.tool`` inside
becomes (``agentrel.instrumentation.join_or_start``). So ``@stamina.retry`` outside
``@agentrel.tool`` and inside it give the same metrics.
"""

from __future__ import annotations

from typing import Any

from .. import instrumentation as ai
from . import tenacity as _tenacity

__all__ = [
    "StaminaInstrumentor",
    "instrument",
    "instrumented",
    "is_instrumented",
    "on_retry",
    "uninstrument",
]

_UNSET = object()


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


def _raw_hooks() -> Any:
    """What stamina keeps as its hook configuration, factories not run (``None``: its
    defaults), or ``_UNSET`` should a future stamina keep it elsewhere."""
    try:
        from stamina._config import CONFIG
    except ImportError:
        return _UNSET
    hooks = getattr(CONFIG, "_on_retry", _UNSET)
    return hooks if hooks is None or isinstance(hooks, tuple) else _UNSET


def _configured_hooks(raw: Any) -> tuple[Any, ...]:
    """The hooks and hook factories set in stamina. stamina's ``get_on_retry_hooks()`` runs
    every deferred factory (its default Prometheus and structlog hooks among them), so the
    configuration it keeps is read instead; ``get_on_retry_hooks()`` is only the fallback."""
    if raw is _UNSET:
        from stamina.instrumentation import get_on_retry_hooks

        ai.logger.debug("agentrel: stamina's hook configuration not found; reading its hooks")
        return tuple(get_on_retry_hooks())
    if raw is None:
        from stamina.instrumentation._hooks import get_default_hooks

        return tuple(get_default_hooks())
    return tuple(raw)


class StaminaInstrumentor(ai.BaseInstrumentor):
    """agentrel's stamina instrumentor (``StaminaInstrumentor().instrument()`` is
    ``instrument()``)."""

    name = "stamina"
    extra = "stamina"
    requires = (("stamina", "stamina"),)

    _prior: Any = _UNSET  # stamina's configuration before instrument()
    _ours: Any = None  # the configuration instrument() set

    def _instrument(self, **kwargs: Any) -> None:
        from stamina.instrumentation import set_on_retry_hooks

        raw = _raw_hooks()
        hooks = _configured_hooks(raw)
        if on_retry not in hooks:
            ours = (*hooks, on_retry)
            set_on_retry_hooks(ours)
            self._prior, self._ours = raw, ours
        try:
            _tenacity.acquire("stamina")
        except BaseException:
            self._remove_hook()
            raise

    def _remove_hook(self) -> None:
        from stamina.instrumentation import set_on_retry_hooks

        raw = _raw_hooks()
        prior, self._prior, ours, self._ours = self._prior, _UNSET, self._ours, None
        if raw is not _UNSET and raw is ours and prior is not _UNSET:
            set_on_retry_hooks(prior)  # untouched since: exactly as it was (None: defaults)
            return
        hooks = _configured_hooks(raw)
        if on_retry in hooks:
            set_on_retry_hooks(tuple(h for h in hooks if h is not on_retry))

    def _uninstrument(self) -> None:
        try:
            self._remove_hook()
        finally:
            _tenacity.release("stamina")


_INSTRUMENTOR = StaminaInstrumentor()


def instrument() -> None:
    """Add agentrel's on-retry hook to stamina's hooks (idempotent: a second call warns
    once; imports stamina, ``ImportError`` naming the extra when it is missing)."""
    _INSTRUMENTOR.instrument()


def uninstrument() -> None:
    """Remove agentrel's hook (hooks set by others stay) and its tenacity machinery."""
    _INSTRUMENTOR.uninstrument()


def instrumented() -> bool:
    """Whether ``instrument()`` is in effect."""
    return _INSTRUMENTOR.is_instrumented()


is_instrumented = instrumented
