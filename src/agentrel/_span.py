"""A span agentrel records onto but does not own (a framework's own ``execute_tool`` or
``invoke_agent`` span, opened by its tracer for the very same operation): agentrel sets
attributes, status and events on it, and leaves its name and its end to its owner."""

from __future__ import annotations

from typing import Any

import wrapt


class BorrowedSpan(wrapt.ObjectProxy[Any]):
    """Somebody else's span, as agentrel holds it."""

    def end(self, end_time: Any = None) -> None:
        return None

    def update_name(self, name: str) -> None:
        return None
