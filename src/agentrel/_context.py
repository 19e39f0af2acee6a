"""Handing the current run to threads (contextvars do not cross a thread pool by themselves)."""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def with_current_run(fn: Callable[P, R]) -> Callable[P, R]:
    """Bind ``fn`` to the current run and call (taken now), for use in another thread.

        with agentrel.run("research") as run:
            pool.map(agentrel.with_current_run(search), queries)

    Each invocation runs in its own copy of the captured context, so one bound function can
    run in many threads at once; all of them count into the same run.
    """
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        return ctx.copy().run(fn, *args, **kwargs)

    return bound


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose tasks run in the submitter's context (its run and call)."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        ctx = contextvars.copy_context()
        return super().submit(ctx.run, fn, *args, **kwargs)
