"""One logical LLM call in flight (``Flight``): its call scope, the HTTP attempts the SDK
made inside it, the usage it reported, and the streams it returned that have not ended yet;
plus the call spec per (provider, model)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from .. import _catalogue as cat
from .. import _clock
from .._call import Call, enter, finish_call, leave, start_call
from .._content import set_content
from .._guard import telemetry_error, warn_once
from .._run import Run
from .._runtime import T
from .._settle import SettleQueue
from .._spec import CallSpec
from .adapter import Adapter, Usage

if TYPE_CHECKING:
    from .client import Instrumentation


# --- the call in flight ---------------------------------------------------------------------------
FLIGHT: ContextVar[Flight | None] = ContextVar("agentrel.llm_flight", default=None)
_status_names: dict[tuple[str, int], str] = {}


class Flight:
    """One logical LLM call: its scope, the HTTP attempts seen, the usage reported."""

    __slots__ = (
        "abandoned",
        "adapter",
        "call",
        "client",
        "done",
        "failed_at",
        "finalizer",
        "sends",
        "usage",
    )

    def __init__(self, call: Call, client: Any, adapter: Adapter) -> None:
        self.call = call
        self.client = client
        self.adapter = adapter
        self.sends = 0
        self.failed_at: float | None = None
        self.usage: Usage | None = None
        self.done = False
        self.abandoned = False
        #: set while a returned stream is watched (see ``watch``).
        self.finalizer: weakref.finalize[Any, Any] | None = None

    # -- HTTP attempts (called by the send hook) --------------------------------------------
    def before_send(self) -> None:
        try:
            n = self.sends
            self.sends = n + 1
            if n == 0:
                return  # attempt 1 was opened by start_call
            call = self.call
            call.attempt_failed(None, "unknown")  # no-op: the failure was seen and closed
            if self.failed_at is not None:
                call.record_delay(_clock.now() - self.failed_at)
                self.failed_at = None
            call.begin_attempt()
        except Exception as exc:
            telemetry_error("llm.attempt", exc)

    def after_response(self, response: Any) -> None:
        try:
            status = response.status_code
            if status >= 400:
                self._failed(self._status_error_type(status, response))
        except Exception as exc:
            telemetry_error("llm.attempt", exc)

    def after_error(self, exc: BaseException) -> None:
        try:
            self._failed(self.adapter.transport_error_type(exc))
        except Exception as err:
            telemetry_error("llm.attempt", err)

    def _failed(self, etype: str) -> None:
        self.call.attempt_failed(None, etype)
        self.failed_at = _clock.now()

    def _status_error_type(self, status: int, response: Any) -> str:
        """The class the SDK raises for this response: from its body when the body has been
        read already (a request that is not streamed: some SDKs pick the class from the
        error's details, Anthropic's ``RampLimitExceededError`` for a 429), else from the
        status alone. Only reads what the SDK has read; never reads the response."""
        make = getattr(self.client, "_make_status_error_from_response", None)
        if make is not None and getattr(response, "is_stream_consumed", False):
            try:
                return type(make(response)).__qualname__
            except Exception:
                pass
        key = (self.adapter.provider, status)
        name = _status_names.get(key)
        if name is None:
            try:  # the SDK's own status -> exception mapping (looks at the status only)
                err = self.client._make_status_error("", body=None, response=response)
                name = type(err).__qualname__
            except Exception:
                name = "APIStatusError"
            _status_names[key] = name
        return name

    # -- results -------------------------------------------------------------------------------
    def watch(self, stream: Any) -> None:
        """The call goes on in a returned stream: open until the stream ends, is closed, its run
        ends, or (unread) it is collected, whichever comes first."""
        self.finalizer = weakref.finalize(stream, _collected.push, self)
        with _streams_lock:
            _open_streams.add(self)

    def read(self, result: Any) -> None:
        try:
            usage = self.usage = self.usage or Usage()
            self.adapter.read_response(result, usage)
            set_content(self.call.span, cat.OUTPUT_MESSAGES, self.adapter.output_messages(result))
        except Exception as exc:
            telemetry_error("llm.usage", exc)

    def chunk(self, item: Any) -> None:
        if self.done:  # read after its call ended (abandoned): nothing more to record
            return
        try:
            usage = self.usage
            if usage is None:
                usage = self.usage = Usage()
            self.adapter.read_chunk(item, usage)
        except Exception as exc:
            telemetry_error("llm.usage", exc)

    def _claim(self) -> bool:
        """Whether this caller ends the call: true once. A watched stream can be ended by its
        reader, its run's end and the next safe point after it was collected, in any thread."""
        if self.done:
            return False
        finalizer = self.finalizer
        if finalizer is None:
            self.done = True
            return True
        with _streams_lock:
            if self.done:
                return False
            self.done = True
            _open_streams.discard(self)
        finalizer.detach()
        return True

    def finish(self, exc: BaseException | None) -> None:
        """End the call (once): tokens, response model, span extras, then the core's metrics."""
        if self._claim():
            self._end(exc)

    def _end(self, exc: BaseException | None) -> None:
        call = self.call
        try:
            usage = self.usage
            if usage is not None:
                call.add_tokens(None, usage.input, usage.output)
                call.add_cache_tokens(usage.cache_read, usage.cache_creation)
                call.response_model = usage.model
                extras = {
                    k: v
                    for k, v in (
                        (cat.USAGE_CACHE_READ, usage.cache_read),
                        (cat.USAGE_CACHE_CREATION, usage.cache_creation),
                        (cat.USAGE_REASONING, usage.reasoning),
                    )
                    if v is not None
                }
            else:
                extras = {}
            if self.abandoned:
                extras[cat.STREAM_ABANDONED] = True
            if extras:  # set on the span with the outcome, in one write
                call.span_extra = extras
        except Exception as err:
            telemetry_error("llm.usage", err)
        try:
            finish_call(call, exc)
        except Exception as err:
            telemetry_error("call.finish", err)

    def finish_detached(self, exc: BaseException | None, abandoned: bool = False) -> None:
        """``finish`` from outside the call (a stream ending): make it current meanwhile, so
        histogram exemplars carry its trace. ``abandoned``: nobody read the stream to its end
        or closed it (its run ended, or it was collected); the span says so."""
        if not self._claim():
            return
        self.abandoned = abandoned
        try:
            saved = enter(self.call)
        except Exception as err:
            telemetry_error("call.context", err)
            self._end(exc)
            return
        try:
            self._end(exc)
        finally:
            try:
                leave(saved)
            except Exception as err:  # pragma: no cover - context misuse
                telemetry_error("call.context", err)


Ctx = tuple[Any, "Token[Flight | None]"]

#: Flights of returned streams not yet ended (read to the end, closed, or abandoned).
_open_streams: set[Flight] = set()
_streams_lock = threading.Lock()
#: Flights of streams collected before they ended: ended at the next safe point (``SettleQueue``).
_collected = SettleQueue()


def _end_collected(flight: Flight) -> None:
    flight.finish_detached(None, abandoned=True)


def end_abandoned(run: Run | None = None) -> None:
    """End abandoned streams' calls: those collected unread, and (just before ``run`` is
    classified) those of ``run`` still open, so the run's figures and trace hold them."""
    _collected.drain(_end_collected)
    if run is not None and _open_streams:
        with _streams_lock:
            mine = [f for f in _open_streams if f.call.run is run]
        for flight in mine:
            flight.finish_detached(None, abandoned=True)


def _drop(flight: Flight) -> None:
    flight.done = True
    if flight.finalizer is not None:
        flight.finalizer.detach()


def forget_streams() -> None:
    """Drop every open or collected stream's call unrecorded (``testing.reset()``)."""
    with _streams_lock:
        flights = list(_open_streams)
        _open_streams.clear()
    for flight in flights:
        _drop(flight)
    _collected.drain(_drop)


def begin(inst: Instrumentation, model: object, kwargs: Mapping[str, Any]) -> Flight | None:
    if _collected:
        end_abandoned()
    try:
        call = start_call(llm_spec(inst.adapter.provider, model))
        flight = Flight(call, inst.client, inst.adapter)
        if T.capture_content:
            set_content(call.span, cat.INPUT_MESSAGES, inst.adapter.input_messages(kwargs))
        return flight
    except Exception as exc:
        telemetry_error("call.start", exc)
        return None


def attach(flight: Flight) -> Ctx | None:
    try:
        return enter(flight.call), FLIGHT.set(flight)
    except Exception as exc:
        telemetry_error("call.context", exc)
        return None


def detach(ctx: Ctx | None) -> None:
    if ctx is None:
        return
    try:
        FLIGHT.reset(ctx[1])
        leave(ctx[0])
    except Exception as exc:  # pragma: no cover - context misuse
        telemetry_error("call.context", exc)


# --- call specs, one per (provider, model) -------------------------------------------------------
_MAX_MODELS = 256
_specs: dict[tuple[str, str | None], CallSpec] = {}
_specs_lock = threading.Lock()


def llm_spec(provider: str, model: object) -> CallSpec:
    m = model if isinstance(model, str) and model else None
    spec = _specs.get((provider, m))
    if spec is not None:
        return spec
    with _specs_lock:
        if len(_specs) >= _MAX_MODELS:
            warn_once(
                "llm:models",
                "agentrel: more than %d distinct LLM models seen; further ones are recorded "
                "without gen_ai.request.model",
                _MAX_MODELS,
            )
            m = None
            spec = _specs.get((provider, None))
            if spec is not None:
                return spec
        attrs: dict[str, Any] = {cat.OPERATION: "chat", cat.PROVIDER: provider}
        if m is not None:
            attrs[cat.REQUEST_MODEL] = m
        name = f"chat {m}" if m else "chat"
        spec = CallSpec(name, "llm", span_name=name, span_attrs=attrs, model=m, provider=provider)
        _specs[(provider, m)] = spec
        return spec
