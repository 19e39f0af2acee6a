"""Opt-in content capture: text goes on spans only with ``configure(capture_content=True)``,
and always through the user's ``redact`` hook first.

Never on metrics: no argument, result or message text ever becomes a label.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from ._guard import telemetry_error
from ._runtime import T

#: Longest text put on a span attribute (characters, before redaction).
LIMIT = 4096

#: While a scope is being finished (``holding``): where a ``BaseException`` raised by the
#: ``redact`` hook waits until the scope's books are settled and its span ended.
_held: ContextVar[list[BaseException] | None] = ContextVar("agentrel_held", default=None)


def holding(site: str, fn: Callable[..., Any], *args: Any) -> BaseException | None:
    """Run ``fn(*args)`` (finishing a scope); a ``BaseException`` that the host's ``redact``
    raises inside (``KeyboardInterrupt``, ``SystemExit``, ``CancelledError``) does not cut the
    bookkeeping short: the text is left out and the exception is returned, for the caller to
    raise once the scope has ended. An ``Exception`` from ``fn`` after one was held is a
    telemetry error under ``site`` (the held interrupt is never lost to it); without one held,
    it propagates. Only needed when a ``redact`` hook is set."""
    token = _held.set([])
    try:
        try:
            fn(*args)
        except Exception as err:
            if not _held.get():
                raise
            telemetry_error(site, err)
        held = _held.get()
    finally:
        _held.reset(token)
    return held[0] if held else None


def content(value: Any) -> str | None:
    """``value`` as redacted text for a span, or ``None`` if capture is off or redaction
    failed (unredacted text is never recorded)."""
    if not T.capture_content:
        return None
    try:
        text = value if isinstance(value, str) else serialise(value, LIMIT)
        if len(text) > LIMIT:
            text = text[:LIMIT] + "…"
        redact = T.redact
        if redact is not None:
            text = redact(text)
            if not isinstance(text, str):
                raise TypeError(f"redact() must return a str, got {type(text).__name__}")
        return text
    except Exception as exc:
        telemetry_error("redact", exc)
        return None
    except BaseException as exc:  # the host's interrupt: never swallowed, maybe held
        held = _held.get()
        if held is None:
            raise
        held.append(exc)
        return None


_ENCODER = json.JSONEncoder(default=repr, ensure_ascii=False)


def serialise(value: Any, limit: int) -> str:
    """``json.dumps(value, default=repr, ensure_ascii=False)``, or ``repr(value)`` where JSON
    cannot express it, written only up to a little past ``limit`` characters: the work and
    memory are bounded by the limit, not by the size of the value (a result of 4,000,000
    elements costs what its first few thousand do). A value that fits is written in full,
    exactly as before."""
    chunks: list[str] = []
    size = 0
    try:
        for chunk in _ENCODER.iterencode(value):  # the pure-Python encoder: lazy chunks
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                break
    except (TypeError, ValueError):  # not JSON (a circular reference, a tuple key): repr
        return _Repr(limit).text(value)
    return "".join(chunks)


_CYCLE: dict[type, str] = {list: "[...]", tuple: "(...)"}
_BRACKETS: dict[type, tuple[str, str]] = {
    list: ("[", "]"),
    tuple: ("(", ")"),
    dict: ("{", "}"),
    set: ("{", "}"),
    frozenset: ("frozenset({", "})"),
}


class _Repr:
    """``repr(value)`` written only up to a little past ``limit`` characters: lists, tuples,
    dicts, sets and frozensets (the exact built-in types) are walked piece by piece, as the
    built-in ``repr`` writes them (``[...]`` for a container inside itself); anything else is
    its own ``repr`` (a string's, of its first ``limit + 1`` characters only)."""

    __slots__ = ("_on_path", "limit", "out", "size")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.out: list[str] = []
        self.size = 0
        self._on_path: set[int] = set()

    def text(self, value: Any) -> str:
        self._write(value)
        return "".join(self.out)

    def _put(self, piece: str) -> bool:
        """Append ``piece``; whether there is room for more."""
        self.out.append(piece)
        self.size += len(piece)
        return self.size <= self.limit

    def _write(self, value: Any) -> bool:
        kind = type(value)
        if kind is str:
            return self._put(repr(value[: self.limit + 1]))
        if kind not in (list, tuple, dict, set, frozenset):
            return self._put(repr(value))
        if not value:
            return self._put(repr(value))
        if id(value) in self._on_path:
            return self._put(_CYCLE.get(kind, "{...}"))
        self._on_path.add(id(value))
        try:
            return self._container(kind, value)
        finally:
            self._on_path.discard(id(value))

    def _container(self, kind: type, value: Any) -> bool:
        opening, closing = _BRACKETS[kind]
        if not self._put(opening):
            return False
        for i, item in enumerate(value.items() if kind is dict else value):
            if i and not self._put(", "):
                return False
            if kind is dict:
                if not (self._write(item[0]) and self._put(": ") and self._write(item[1])):
                    return False
            elif not self._write(item):
                return False
        if kind is tuple and len(value) == 1 and not self._put(","):
            return False
        return self._put(closing)


def exception_content(exc: BaseException) -> str | None:
    """An exception's message as captured content (``content``), or ``None``: capture off,
    redaction failed, or the exception's own ``__str__`` raised (then it has no message, which
    is no telemetry error)."""
    if not T.capture_content:
        return None
    try:
        text = str(exc)
    except Exception:
        return None
    return content(text)


def set_content(span: Any, key: str, value: Any) -> None:
    """Put captured content on a recording span (a no-op when capture is off)."""
    if span is None or not T.capture_content or not span.is_recording():
        return
    text = content(value)
    if text is not None:
        span.set_attribute(key, text)
