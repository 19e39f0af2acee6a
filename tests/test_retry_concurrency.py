"""Exact counts under concurrency: 32 threads and 1,000 asyncio tasks retrying at once.

tenacity's own ``statistics`` are unreliable when a retrying object is shared (tenacity keeps
them on the shared object); agentrel keeps its state per retry and per run, so its totals stay
exact.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from tenacity import AsyncRetrying, Retrying, retry, stop_after_attempt, wait_fixed

import agentrel
from agentrel import testing
from agentrel.integrations import tenacity as agentrel_tenacity

THREADS = 32
PER_THREAD = 25
TASKS = 1000
WAIT = 0.25  # exact in binary, so sums are exact


@pytest.fixture(autouse=True)
def _instrumented() -> Iterator[None]:
    agentrel_tenacity.instrument()
    yield
    agentrel_tenacity.uninstrument()


class Flaky:
    """Per-call script: fails twice (TimeoutError, then ConnectionError), then succeeds."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls = 0

    def step(self) -> str:
        self.calls += 1
        if self.calls == 1:
            raise TimeoutError()
        if self.calls == 2:
            raise ConnectionError()
        return "ok"


def _no_sleep(seconds: float) -> None:
    return None


async def _yield_sleep(seconds: float) -> None:
    await asyncio.sleep(0)  # let the other tasks interleave between attempts


def _assert_totals(cap: testing.Capture, runs: int, agent: str) -> None:
    depth = cap.histogram("agentrel.run.retry_depth", {"gen_ai.agent.name": agent})
    assert (depth.count, depth.sum, depth.buckets) == (runs, 2 * runs, {2.0: runs})
    assert (
        cap.histogram(
            "agentrel.run.retry_depth",
            {"gen_ai.agent.name": agent, "agentrel.outcome": "recovered"},
        ).count
        == runs
    )
    attempts = cap.histogram("agentrel.run.attempts", {"gen_ai.agent.name": agent})
    assert (attempts.count, attempts.sum) == (runs, 3 * runs)
    calls = cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "recovered"})
    assert (calls.count, calls.sum) == (runs, 3 * runs)
    assert (
        cap.counter(
            "agentrel.tool.failures", {"error.type": "TimeoutError", "agentrel.absorbed": "true"}
        )
        == runs
    )
    assert (
        cap.counter(
            "agentrel.tool.failures", {"error.type": "ConnectionError", "agentrel.absorbed": "true"}
        )
        == runs
    )
    assert cap.counter("agentrel.tool.failures", {"agentrel.absorbed": "false"}) == 0
    delay = cap.histogram("agentrel.retry.delay")
    assert (delay.count, delay.sum) == (2 * runs, 2 * runs * WAIT)


def test_32_threads_sharing_retrying_objects(cap: testing.Capture) -> None:
    """32 threads × 25 runs through a shared @retry function, a shared Retrying object and
    @agentrel.tool inside and outside: every total exact."""
    kw: dict[str, Any] = {
        "wait": wait_fixed(WAIT),
        "stop": stop_after_attempt(5),
        "sleep": _no_sleep,
    }
    shared = Retrying(**kw)

    @retry(**kw)
    def decorated(flaky: Flaky) -> str:
        return flaky.step()

    tool_inside = retry(**kw)(agentrel.tool("search")(Flaky.step))
    tool_outside = agentrel.tool("search")(retry(**kw)(Flaky.step))
    variants = [
        lambda f: decorated(f),
        lambda f: shared(f.step),
        lambda f: tool_inside(f),
        lambda f: tool_outside(f),
    ]
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            for j in range(PER_THREAD):
                with agentrel.run("threads"):
                    assert variants[(i + j) % len(variants)](Flaky()) == "ok"
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    _assert_totals(cap, THREADS * PER_THREAD, "threads")
    runs = THREADS * PER_THREAD
    assert (
        cap.histogram("agentrel.tool.attempts", {"gen_ai.tool.name": "search"}).count == runs // 2
    )


def test_1000_asyncio_tasks(cap: testing.Capture) -> None:
    """1,000 concurrent tasks, each its own run, interleaving at every wait: exact totals."""

    @retry(wait=wait_fixed(WAIT), stop=stop_after_attempt(5), sleep=_yield_sleep)
    async def decorated(flaky: Flaky) -> str:
        await asyncio.sleep(0)
        return flaky.step()

    @agentrel.tool("search")
    async def search(flaky: Flaky) -> str:
        await asyncio.sleep(0)
        return flaky.step()

    tool_inside = retry(wait=wait_fixed(WAIT), stop=stop_after_attempt(5), sleep=_yield_sleep)(
        search
    )

    async def iterated(flaky: Flaky) -> str:
        async for attempt in AsyncRetrying(
            wait=wait_fixed(WAIT), stop=stop_after_attempt(5), sleep=_yield_sleep, name="iterated"
        ):
            with attempt:
                await asyncio.sleep(0)
                return flaky.step()
        raise AssertionError("unreachable")

    variants = [decorated, tool_inside, iterated]

    async def one(i: int) -> str:
        async with agentrel.run("tasks"):
            return await variants[i % len(variants)](Flaky())

    async def main() -> list[str]:
        return await asyncio.gather(*(one(i) for i in range(TASKS)))

    assert asyncio.run(main()) == ["ok"] * TASKS
    _assert_totals(cap, TASKS, "tasks")
    assert cap.histogram("agentrel.tool.attempts", {"gen_ai.tool.name": "iterated"}).count == 333
