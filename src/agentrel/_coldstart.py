"""Cold starts (docs/metrics.md): the first call of each tool or LLM client spec in a process.

The first call of a tool to *finish* in this process (while telemetry records) gets
``agentrel.cold_start=true`` on its span and one ``agentrel.tool.first_call.duration`` record;
no later call of that tool gets either. The hot path pays one set lookup per call
(``name in SEEN``); the lock is taken only by a call that finds its tool missing, so calls
racing in many threads mark exactly one.
"""

from __future__ import annotations

import threading
from typing import Any

from . import _catalogue as cat
from . import _record
from ._runtime import T

#: tool and LLM call names whose first call this process has seen (read lock-free).
SEEN: set[str] = set()
_lock = threading.Lock()
_attrs: dict[str, dict[str, str]] = {}


def first_call(
    name: str, duration: float, span_attrs: dict[str, Any] | None, ctx: Any = None
) -> None:
    """Called by ``finish_call`` when ``name`` is not in ``SEEN``: claim the first call (once
    per name, across threads), record its duration and mark its span. Nothing is claimed
    while telemetry does not record (a run without any SDK)."""
    if not T.active:
        return
    with _lock:
        if name in SEEN:
            return
        SEEN.add(name)
        attrs = _attrs.get(name)
        if attrs is None:
            attrs = _attrs[name] = {cat.TOOL: name}
    if span_attrs is not None:
        span_attrs[cat.COLD_START] = True
    _record.first_call(duration, attrs, ctx)


def forget() -> None:
    """Forget every first call, as a restarted process would (``testing.reset()``, and
    ``agentrel demo``'s simulated replica restart)."""
    with _lock:
        SEEN.clear()
