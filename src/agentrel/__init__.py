"""agentrel: make an LLM agent's self-healing visible.

Decorate tools (``@agentrel.tool``), wrap runs (``@agentrel.agent`` / ``agentrel.run``), call
``agentrel.configure(prometheus_port=9464)`` once, and every run reports its retry depth,
outcome (success / recovered / exhausted / failed) and token amplification.
"""

from __future__ import annotations

from typing import Any

from ._catalogue import METRICS
from ._config import Configuration, configure, current_configuration
from ._context import ContextThreadPoolExecutor, with_current_run
from ._current import current_run
from ._decorators import agent, llm, run, tool
from ._guard import telemetry_errors
from ._marks import record_tokens, reject
from ._registry import ToolInfo, registered_tools
from ._run import Run
from ._verdict import RunRef, verdict
from ._version import __version__

__all__ = [
    "Configuration",
    "ContextThreadPoolExecutor",
    "METRICS",
    "Run",
    "RunRef",
    "ToolInfo",
    "__version__",
    "agent",
    "configure",
    "current_configuration",
    "current_run",
    "fallback",
    "fallback_to",
    "instrument",
    "llm",
    "record_tokens",
    "registered_tools",
    "reject",
    "run",
    "telemetry_errors",
    "tool",
    "uninstrument",
    "verdict",
    "with_current_run",
]


def __getattr__(name: str) -> Any:
    # Names whose modules load lazily (and whose optional dependencies load only on use).
    if name in ("fallback", "fallback_to"):
        from . import _fallback

        return getattr(_fallback, name)
    if name in ("instrument", "uninstrument"):
        from . import _llm

        return getattr(_llm, name)
    raise AttributeError(f"module 'agentrel' has no attribute {name!r}")
