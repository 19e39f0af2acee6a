"""Where code runs now: the current run and call, in contextvars (asyncio tasks and threads
each see their own), and the cheap-exit test."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

from ._runtime import T

if TYPE_CHECKING:
    from ._call import Call
    from ._run import Run

RUN: ContextVar[Run | None] = ContextVar("agentrel.run", default=None)
CALL: ContextVar[Call | None] = ContextVar("agentrel.call", default=None)


def current_run() -> Run | None:
    """The run this code executes in, or ``None`` outside any run."""
    return RUN.get()


def quiet() -> bool:
    """Nothing to record: no SDK anywhere and no run to count into (the cheap exit). The
    function decorators inline this test on their hot path."""
    return not T.armed or (not T.active and RUN.get() is None)
