"""Telemetry state: the tracer and instruments agentrel records into, and the guard.

Instrumentation code imports only the OpenTelemetry *API*. Until an SDK provider is set
(globally, by ``agentrel.configure()``, or injected by ``agentrel.testing.capture()``), the
tracer and instruments are the API's no-op objects and the decorators take a cheap exit.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry import trace as _trace_api
from opentelemetry.metrics import Counter as OTelCounter
from opentelemetry.metrics import Histogram, Meter, MeterProvider, NoOpMeterProvider
from opentelemetry.metrics import _internal as _metrics_api
from opentelemetry.trace import NoOpTracerProvider, Tracer, TracerProvider

from . import _catalogue as cat
from ._version import __version__

logger = logging.getLogger("agentrel")

_SCOPE = "agentrel"


class Telemetry:
    """Everything the hot path reads, in one object with slots."""

    __slots__ = (
        "_injected",
        "active",
        "capture_content",
        "client_operation_duration",
        "client_token_usage",
        "cohorts",
        "cost",  # issue 13
        "execute_tool_duration",
        "fallbacks",
        "first_call_duration",  # issue 13
        "invoke_agent_inference_calls",  # issue 13
        "invoke_agent_tool_calls",  # issue 13
        "redact",
        "retry_delay",
        "run_attempts",
        "run_recovery_time",
        "run_retry_depth",
        "run_token_amplification",
        "tokens",
        "tool_attempts",
        "tool_failures",
        "tracer",
        "unpriced_tokens",  # issue 13
        "unsafe_retries",
    )

    active: bool
    tracer: Tracer
    run_retry_depth: Histogram
    run_attempts: Histogram
    run_token_amplification: Histogram
    run_recovery_time: Histogram
    tool_attempts: Histogram
    tool_failures: OTelCounter
    retry_delay: Histogram
    fallbacks: OTelCounter
    tokens: OTelCounter
    unsafe_retries: OTelCounter
    execute_tool_duration: Histogram
    client_token_usage: Histogram
    client_operation_duration: Histogram
    # issue 13
    cost: OTelCounter
    unpriced_tokens: OTelCounter
    invoke_agent_tool_calls: Histogram
    invoke_agent_inference_calls: Histogram
    first_call_duration: Histogram

    def __init__(self) -> None:
        self.capture_content = False
        self.redact: Any = None
        self.cohorts: frozenset[str] = frozenset()
        self._injected: tuple[TracerProvider | None, MeterProvider | None] | None = None
        self._bind(NoOpTracerProvider(), NoOpMeterProvider(), active=False)

    # -- provider binding ----------------------------------------------------------------
    def _bind(self, tp: TracerProvider, mp: MeterProvider, *, active: bool) -> None:
        self.tracer = tp.get_tracer(_SCOPE, __version__)
        meter = mp.get_meter(_SCOPE, __version__)
        for spec in cat.METRICS:
            setattr(self, _attr_name(spec), _make_instrument(meter, spec))
        self.active = active

    def refresh(self) -> bool:
        """Switch to the real providers once the application (or configure) has set them.

        Called on the slow path only while inactive; once active, agentrel stays bound
        (OpenTelemetry's global providers can be set only once).
        """
        if self._injected is not None:
            return self.active
        # Cheap pre-check on the API's module globals (None until a provider is set); the
        # public calls below are the authority.
        if (
            getattr(_trace_api, "_TRACER_PROVIDER", 1) is None
            and getattr(_metrics_api, "_METER_PROVIDER", 1) is None
        ):
            return False
        try:
            tp_set = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
            mp = metrics.get_meter_provider()
            mp_set = type(mp).__name__ != "_ProxyMeterProvider"
            if tp_set or mp_set:
                self._bind(trace.get_tracer_provider(), mp, active=True)
        except Exception as exc:  # pragma: no cover - defensive
            telemetry_error("refresh", exc)
        return self.active

    def inject(self, tp: TracerProvider | None, mp: MeterProvider | None) -> None:
        """Use these providers instead of the global ones (``configure(tracer_provider=...)``,
        ``testing.capture()``)."""
        self._injected = (tp, mp)
        self._bind(
            tp if tp is not None else trace.get_tracer_provider(),
            mp if mp is not None else metrics.get_meter_provider(),
            active=True,
        )

    def uninject(self) -> None:
        self._injected = None
        self._bind(NoOpTracerProvider(), NoOpMeterProvider(), active=False)
        self.refresh()

    def cohort(self, cohort: str | None) -> str:
        if cohort is None:
            return cat.NO_COHORT
        return cohort if cohort in self.cohorts else cat.OTHER_COHORT


def _attr_name(spec: cat.MetricSpec) -> str:
    return {
        cat.RUN_RETRY_DEPTH.name: "run_retry_depth",
        cat.RUN_ATTEMPTS.name: "run_attempts",
        cat.RUN_TOKEN_AMPLIFICATION.name: "run_token_amplification",
        cat.RUN_RECOVERY_TIME.name: "run_recovery_time",
        cat.TOOL_ATTEMPTS.name: "tool_attempts",
        cat.TOOL_FAILURES.name: "tool_failures",
        cat.RETRY_DELAY.name: "retry_delay",
        cat.FALLBACKS.name: "fallbacks",
        cat.TOKENS.name: "tokens",
        cat.UNSAFE_RETRIES.name: "unsafe_retries",
        cat.EXECUTE_TOOL_DURATION.name: "execute_tool_duration",
        cat.CLIENT_TOKEN_USAGE.name: "client_token_usage",
        cat.CLIENT_OPERATION_DURATION.name: "client_operation_duration",
        # issue 13
        cat.COST.name: "cost",
        cat.UNPRICED_TOKENS.name: "unpriced_tokens",
        cat.INVOKE_AGENT_TOOL_CALLS.name: "invoke_agent_tool_calls",
        cat.INVOKE_AGENT_INFERENCE_CALLS.name: "invoke_agent_inference_calls",
        cat.FIRST_CALL_DURATION.name: "first_call_duration",
    }[spec.name]


def _make_instrument(meter: Meter, spec: cat.MetricSpec) -> Any:
    if spec.kind == "counter":
        return meter.create_counter(spec.name, unit=spec.unit, description=spec.description)
    return meter.create_histogram(
        spec.name,
        unit=spec.unit,
        description=spec.description,
        explicit_bucket_boundaries_advisory=[float(b) for b in spec.buckets or ()],
    )


T = Telemetry()

# -- never break the host --------------------------------------------------------------------
_errors: Counter[str] = Counter()
_logged: set[tuple[str, str]] = set()
_warned: set[str] = set()
_lock = threading.Lock()


def telemetry_error(site: str, exc: BaseException) -> None:
    """Count a failure of agentrel's own telemetry; log it once per site and error type."""
    try:
        key = (site, type(exc).__qualname__)
        with _lock:
            _errors[site] += 1
            first = key not in _logged
            _logged.add(key)
        if first:
            logger.warning(
                "agentrel: telemetry failed in %s (%s); the application is unaffected, "
                "further errors of this kind are only counted (agentrel.telemetry_errors())",
                site,
                key[1],
                exc_info=exc,
            )
    except Exception:  # pragma: no cover - logging itself failed
        pass


def warn_once(key: str, message: str, *args: object) -> None:
    """Log a warning once per process for ``key``."""
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.warning(message, *args)


def telemetry_errors() -> Mapping[str, int]:
    """How many times agentrel's own telemetry failed, by site, since start or ``reset()``."""
    with _lock:
        return dict(_errors)


def reset_guards() -> None:
    with _lock:
        _errors.clear()
        _logged.clear()
        _warned.clear()
