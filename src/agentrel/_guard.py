"""Never break the host (docs/reliability.md): the guard every telemetry step runs under.

A failure of agentrel's own telemetry is caught by the caller (``except Exception``), handed to
``telemetry_error(site, exc)``, counted by site, logged once per site and error type, and the
host carries on. ``warn_once`` is the once-per-process warning for misuse that is not an error.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

#: The one logger of the library (``logging.getLogger("agentrel")``).
logger = logging.getLogger("agentrel")

_errors: Counter[str] = Counter()
_logged: set[tuple[str, str]] = set()
_warned: set[str] = set()
_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # one another thread held at the fork would stay held here


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class OwnMessage:
    """Mixed into agentrel's own exception classes whose messages are built from its
    configuration only (ports, option names), never from application data: logged in full."""


def _loggable(exc: BaseException) -> Any:
    """``exc_info`` for the log: the exception's type and traceback frames, never its message
    (nor its chained causes'): a message can hold a tool's arguments or result, and logs are
    no place for them, whatever ``capture_content`` says (``redact`` does not see logs).
    agentrel's own :class:`OwnMessage` errors keep theirs."""
    if isinstance(exc, OwnMessage):
        return exc
    cls = type(exc)
    try:
        bare = cls.__new__(cls)  # no __init__: no arguments, no message
    except Exception:  # a class whose __new__ wants arguments: say which class it was
        stand_in = RuntimeError(f"{cls.__module__}.{cls.__qualname__} (message not logged)")
        return (RuntimeError, stand_in, exc.__traceback__)
    return (cls, bare, exc.__traceback__)


def telemetry_error(site: str, exc: BaseException) -> None:
    """Count a failure of agentrel's own telemetry; log it once per site and error type (the
    type and the traceback, not the message: see ``_loggable``)."""
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
                exc_info=_loggable(exc),
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
    """Forget the counts and the once-only memory (``testing.reset()``)."""
    with _lock:
        _errors.clear()
        _logged.clear()
        _warned.clear()


def flags(predicate: Callable[[Any], object] | None, result: Any, site: str) -> bool:
    """Whether a ``failure_when``-style ``predicate`` flags ``result`` as a failure (no
    predicate: no). A raising predicate is a telemetry error under ``site`` and flags nothing."""
    if predicate is None:
        return False
    try:
        return bool(predicate(result))
    except Exception as exc:
        telemetry_error(site, exc)
        return False
