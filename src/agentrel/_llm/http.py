"""The HTTP hook: where the SDKs' hidden retries are seen.

The SDKs retry 408/409/429/5xx and connection errors *inside* one ``create()``. Those attempts
are seen where every one of them must pass: the ``send`` method of the SDK client's HTTP client
(``httpx``/``httpx2``). While an instrumented call is in flight (a contextvar says which), that
``send``:

* before an attempt other than the first: records the backoff wait (the time since the
  previous attempt failed: the SDK's sleep plus the microseconds it takes to build the next
  request) and opens the next attempt;
* after an error response (status >= 400) or a transport error: closes the attempt as failed,
  with ``error.type`` the SDK exception class that response or error maps to
  (``RateLimitError``, ``InternalServerError``, ``APITimeoutError``...: from the body the SDK
  has read, else the status), the same name the SDK's raised exception gives when the last
  attempt fails, so one response gives one ``error.type`` either way.

Nothing about the request, the response or the SDK's retry decision is changed: the hook only
reads the status and the clock. Outside an instrumented call it is one contextvar read.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from .._guard import telemetry_error, warn_once
from .flight import FLIGHT

# --- the HTTP hook --------------------------------------------------------------------------------
_hooks: dict[int, tuple[Any, int, Any]] = {}  # id(http client) -> (weakref, refcount, previous)
_hooks_lock = threading.Lock()
#: keys of HTTP clients that died; purged under the lock. A weakref callback can run inside
#: any allocation (garbage collection), including one made while ``_hooks_lock`` is held, so
#: it must never take that lock itself (``WeakValueDictionary`` does the same).
_dead: list[int] = []


def _purge_dead() -> None:
    """Drop the entries of collected HTTP clients (call with ``_hooks_lock`` held)."""
    while _dead:
        key = _dead.pop()
        entry = _hooks.get(key)
        if entry is not None and entry[0]() is None:
            del _hooks[key]


def _make_send(http: Any, is_async: bool) -> Any:
    ref = weakref.ref(http)
    previous = http.__dict__.get("send")
    original = previous if previous is not None else type(http).send

    def call_original(*args: Any, **kwargs: Any) -> Any:
        if previous is not None:
            return previous(*args, **kwargs)
        return original(ref(), *args, **kwargs)

    if is_async:

        async def asend(request: Any, *args: Any, **kwargs: Any) -> Any:
            flight = FLIGHT.get()
            if flight is None:
                return await call_original(request, *args, **kwargs)
            flight.before_send()
            try:
                response = await call_original(request, *args, **kwargs)
            except BaseException as exc:
                flight.after_error(exc)
                raise
            flight.after_response(response)
            return response

        asend._agentrel_hook = True  # type: ignore[attr-defined]
        return asend

    def send(request: Any, *args: Any, **kwargs: Any) -> Any:
        flight = FLIGHT.get()
        if flight is None:
            return call_original(request, *args, **kwargs)
        flight.before_send()
        try:
            response = call_original(request, *args, **kwargs)
        except BaseException as exc:
            flight.after_error(exc)
            raise
        flight.after_response(response)
        return response

    send._agentrel_hook = True  # type: ignore[attr-defined]
    return send


def install_hook(http: Any, is_async: bool) -> bool:
    """Hook ``http.send`` (once per HTTP client, however many SDK clients share it)."""
    try:
        with _hooks_lock:
            _purge_dead()
            entry = _hooks.get(id(http))
            if entry is not None and entry[0]() is http:
                _hooks[id(http)] = (entry[0], entry[1] + 1, entry[2])
                return True
            previous = http.__dict__.get("send")
            http.send = _make_send(http, is_async)
            _hooks[id(http)] = (weakref.ref(http, _forget_hook(id(http))), 1, previous)
        return True
    except Exception as exc:
        telemetry_error("llm.hook", exc)
        warn_once(
            "llm:hook",
            "agentrel: could not observe the HTTP client of %s; its calls are recorded "
            "without their hidden retries",
            type(http).__name__,
        )
        return False


def _forget_hook(key: int) -> Callable[[Any], None]:
    def forget(_: Any) -> None:
        _dead.append(key)  # atomic; no lock (see ``_dead``)

    return forget


def remove_hook(http: Any) -> None:
    try:
        with _hooks_lock:
            _purge_dead()
            entry = _hooks.get(id(http))
            if entry is None or entry[0]() is not http:
                return
            if entry[1] > 1:
                _hooks[id(http)] = (entry[0], entry[1] - 1, entry[2])
                return
            del _hooks[id(http)]
            current = http.__dict__.get("send")
            if getattr(current, "_agentrel_hook", False):
                if entry[2] is None:
                    del http.__dict__["send"]
                else:
                    http.send = entry[2]
    except Exception as exc:
        telemetry_error("llm.hook", exc)
