"""Work abandoned without an end, settled later at a safe point.

A stream nobody read to its end, a retry loop left with ``return``: agentrel notices them when
the garbage collector collects their object (``weakref.finalize``). The collector can run
inside any allocation, even one made under a lock the work's end takes, so the finalizer only
queues the work (``list.append`` is atomic) and the owner ends it at the next safe point: its
next call, and just before a run is classified.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._guard import telemetry_error


class SettleQueue:
    """A GC-safe queue of abandoned work: ``push`` from a finalizer, ``drain(fn)`` at a safe
    point (each item handed to ``fn`` under the guard)."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[Any] = []

    def push(self, item: Any) -> None:
        """Queue ``item`` (safe inside the garbage collector: one atomic append)."""
        self._items.append(item)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def drain(self, fn: Callable[[Any], None]) -> None:
        """Hand every queued item to ``fn``; a raising ``fn`` is counted, not raised."""
        while self._items:
            try:
                item = self._items.pop()
            except IndexError:  # another thread drained it
                return
            try:
                fn(item)
            except Exception as exc:
                telemetry_error("settle", exc)

    def clear(self) -> None:
        """Drop everything queued, unsettled (``testing.reset()``)."""
        self._items.clear()
