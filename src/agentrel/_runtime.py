"""Telemetry state: the tracer and instruments agentrel records into.

Instrumentation code imports only the OpenTelemetry *API*. Until an SDK provider is set
(globally, by ``agentrel.configure()``, or injected by ``agentrel.testing.capture()``), the
tracer and instruments are the API's no-op objects, ``T.active`` is false, and the decorators
take the cheap exit.

agentrel learns of a provider being set instead of polling for it on every call: at import, when
the application calls ``opentelemetry.trace.set_tracer_provider`` /
``opentelemetry.metrics.set_meter_provider``, and in ``configure()``. The OpenTelemetry API has
no hook for "a provider was set", and checking the global provider on every call would cost the
unconfigured fast path a call and a type check per tool call, so agentrel wraps the function
every way of setting a global provider goes through (idempotently: once per process, the
original is called unchanged and its result returned) so that it tells agentrel: the API's
module-level ``_set_tracer_provider`` / ``_set_meter_provider``, which the public setters (even
a reference to them taken before agentrel was imported) and the providers named by
``OTEL_PYTHON_TRACER_PROVIDER`` / ``OTEL_PYTHON_METER_PROVIDER`` call. Those are the API's
private names: where an API lacks them (``T.hooked`` false), agentrel wraps the public setters
instead and, since a reference to them taken earlier escapes that, also looks for a provider
whenever a run opens with nothing bound (``refresh()``).

"Set" is told apart by type: the API's own proxy provider classes (what the getters return
until a provider is set) are "nothing set yet", and so is a provider agentrel created and has
since shut down (``retire``): OpenTelemetry lets the global providers be set only once, so a
configuration made after ``shutdown()`` records into providers of its own, injected here.

One instrument per catalogue entry (``_catalogue.METRICS``), bound as ``T.<spec.slot>``: adding
a metric is one edit, its catalogue entry. Only ``_record`` records into them.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import Meter, MeterProvider, NoOpMeterProvider
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, Tracer, TracerProvider

from . import _catalogue as cat
from ._guard import telemetry_error
from ._version import __version__

__all__ = ["T", "Telemetry", "is_set"]

_SCOPE = "agentrel"
_FIXED = (
    "_injected", "_lock", "_retired", "_runs", "active", "armed", "capture_content", "cohorts",
    "hooked", "redact", "tracer",
)  # fmt: skip


def _proxy_types() -> tuple[type, ...]:
    """The API's placeholder provider classes, returned by the global getters until a provider
    is set. The tracer one is public; the meter one lives in the API's ``_internal`` module
    (its public ``NoOpMeterProvider`` is a real, if silent, provider an application may set)."""
    try:
        from opentelemetry.metrics._internal import _ProxyMeterProvider
    except ImportError:  # pragma: no cover - a future API that moved it: no meter proxy known
        return (ProxyTracerProvider,)
    return (ProxyTracerProvider, _ProxyMeterProvider)


_PROXIES = _proxy_types()


def is_set(provider: object) -> bool:
    """Whether ``provider`` is a usable provider: not the API's proxy (nothing set yet) and
    not one agentrel created and has since shut down."""
    return not isinstance(provider, _PROXIES) and not T.is_retired(provider)


class Telemetry:
    """Everything the hot path reads, in one object with slots (one per instrument)."""

    __slots__ = (*_FIXED, *(spec.slot for spec in cat.METRICS))

    #: a provider is bound: record.
    active: bool
    #: ``active``, or a run is open somewhere in the process: the one flag the decorators'
    #: cheap exit reads first (false: nothing can record, call straight through).
    armed: bool
    tracer: Tracer
    #: agentrel learns of every global provider the API sets (its private setters are
    #: wrapped): a run opening with nothing bound need not look for one (``refresh``).
    hooked: bool

    if TYPE_CHECKING:  # the instruments: one attribute per catalogue entry

        def __getattr__(self, slot: str) -> Any: ...

    def __init__(self) -> None:
        self.capture_content = False
        self.redact: Any = None
        self.cohorts: frozenset[str] = frozenset()
        self._injected: tuple[TracerProvider | None, MeterProvider | None] | None = None
        #: providers agentrel created and shut down (``retire``): never bound again
        self._retired: tuple[object, ...] = ()
        self._lock = threading.Lock()
        self._runs = 0
        self.hooked = False
        self._bind(NoOpTracerProvider(), NoOpMeterProvider(), active=False)

    # -- provider binding ----------------------------------------------------------------
    def _bind(self, tp: TracerProvider, mp: MeterProvider, *, active: bool) -> None:
        self.tracer = tp.get_tracer(_SCOPE, __version__)
        meter = mp.get_meter(_SCOPE, __version__)
        for spec in cat.METRICS:
            setattr(self, spec.slot, _make_instrument(meter, spec))
        with self._lock:
            self.active = active
            self.armed = active or self._runs > 0

    def run_opened(self) -> None:
        """A run opened (``armed`` from now on, so its calls take the counting path)."""
        with self._lock:
            self._runs += 1
            self.armed = True

    def run_closed(self) -> None:
        """A run ended."""
        with self._lock:
            self._runs -= 1
            self.armed = self.active or self._runs > 0

    def is_retired(self, provider: object) -> bool:
        return any(p is provider for p in self._retired)

    def retire(self, provider: object) -> None:
        """``provider`` (one agentrel created) was shut down: never bind it again."""
        with self._lock:
            if not self.is_retired(provider):
                self._retired = (*self._retired, provider)

    def _globals(self) -> tuple[TracerProvider, MeterProvider]:
        """The global providers, a retired one replaced by the no-op provider."""
        tp = trace.get_tracer_provider()
        mp = metrics.get_meter_provider()
        if self.is_retired(tp):
            tp = NoOpTracerProvider()
        if self.is_retired(mp):
            mp = NoOpMeterProvider()
        return tp, mp

    def refresh(self) -> bool:
        """Bind to the global providers if the application (or ``configure``) set one since;
        return ``active``. Not called per call: see the module docstring."""
        if self._injected is not None:
            return self.active
        try:
            if is_set(trace.get_tracer_provider()) or is_set(metrics.get_meter_provider()):
                self._bind(*self._globals(), active=True)
        except Exception as exc:  # pragma: no cover - defensive
            telemetry_error("refresh", exc)
        return self.active

    def inject(self, tp: TracerProvider | None, mp: MeterProvider | None) -> None:
        """Use these providers instead of the global ones (``configure(tracer_provider=...)``,
        ``testing.capture()``, a configuration made after ``shutdown()``); ``None``: the
        global one for that signal."""
        self._injected = (tp, mp)
        gtp, gmp = self._globals()
        self._bind(tp if tp is not None else gtp, mp if mp is not None else gmp, active=True)

    @property
    def injected(self) -> tuple[TracerProvider | None, MeterProvider | None] | None:
        """The providers ``inject`` set (``None``: the global ones are used)."""
        return self._injected

    @property
    def open_runs(self) -> int:
        """How many runs are open in this process."""
        return self._runs

    def uninject(self) -> None:
        self._injected = None
        self._bind(NoOpTracerProvider(), NoOpMeterProvider(), active=False)
        self.refresh()

    def cohort(self, cohort: str | None) -> str:
        if cohort is None:
            return cat.NO_COHORT
        return cohort if cohort in self.cohorts else cat.OTHER_COHORT


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


def _notifying(setter: Any) -> Any:
    """``setter`` (a public OpenTelemetry ``set_*_provider``) that also tells agentrel."""
    if getattr(setter, "_agentrel_notifies", False):
        return setter

    @functools.wraps(setter)
    def set_provider(*args: Any, **kwargs: Any) -> Any:
        result = setter(*args, **kwargs)
        try:
            T.refresh()
        except Exception as exc:  # pragma: no cover - refresh guards itself
            telemetry_error("refresh", exc)
        return result

    set_provider._agentrel_notifies = True  # type: ignore[attr-defined]
    return set_provider


#: (module, name) of the API's private setters every global provider goes through
PRIVATE_SETTERS = (
    ("opentelemetry.trace", "_set_tracer_provider"),
    ("opentelemetry.metrics._internal", "_set_meter_provider"),
)


def hook_setters(private: tuple[tuple[str, str], ...] = PRIVATE_SETTERS) -> bool:
    """Wrap the API's private provider setters so that agentrel learns of every provider set;
    where one is missing (another API version), wrap the public setters instead. Returns (and
    sets) ``T.hooked``: whether the private ones are wrapped."""
    import importlib

    found = []
    for module, name in private:
        try:
            mod = importlib.import_module(module)
        except ImportError:  # pragma: no cover - an API without that module
            break
        setter = getattr(mod, name, None)
        if not callable(setter):
            break
        found.append((mod, name, setter))
    else:
        for mod, name, setter in found:
            setattr(mod, name, _notifying(setter))
        T.hooked = True
        return True
    trace.set_tracer_provider = _notifying(trace.set_tracer_provider)
    metrics.set_meter_provider = _notifying(metrics.set_meter_provider)
    T.hooked = False
    return False


hook_setters()
T.refresh()  # a provider set before agentrel was imported


def _after_fork_in_child() -> None:
    # A lock another thread held at the fork stays held in the child: start with a free one.
    T._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
