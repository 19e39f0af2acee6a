"""Runs in asyncio tasks and threads never mix their counts."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import agentrel
from agentrel import testing
from agentrel._catalogue import ABSORBED, OUTCOME

RD = "agentrel.run.retry_depth"


def _flaky_tool() -> object:
    """A tool that fails on the calls a per-run counter says it should."""
    state = threading.local()

    @agentrel.tool
    def flaky(fail_times: int) -> str:
        n = getattr(state, "n", 0)
        state.n = n + 1
        if n < fail_times:
            raise TimeoutError
        return "ok"

    return flaky, state


def test_threads_each_own_run(cap: testing.Capture) -> None:
    """32 threads, run i fails i % 4 times then succeeds: exact totals per outcome."""
    flaky, state = _flaky_tool()
    barrier = threading.Barrier(32)
    runs = []

    def worker(i: int) -> None:
        barrier.wait(timeout=30)
        state.n = 0
        with agentrel.run("t", token_budget=None) as run:
            for _ in range(i % 4 + 1):
                try:
                    flaky(i % 4)  # type: ignore[operator]
                except TimeoutError:
                    pass
            agentrel.record_tokens(input=i)
        runs.append(run)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(runs) == 32
    depths = sorted(r.retry_depth for r in runs)
    assert depths == sorted(i % 4 for i in range(32))
    assert cap.histogram(RD, {OUTCOME: "success"}).count == 8
    assert cap.histogram(RD, {OUTCOME: "recovered"}).count == 24
    assert cap.histogram(RD).sum == sum(i % 4 for i in range(32))  # 48
    assert cap.histogram("agentrel.run.attempts").sum == sum(i % 4 + 1 for i in range(32))
    assert cap.counter("agentrel.tool.failures", {ABSORBED: "true"}) == 48
    assert cap.counter("agentrel.tokens") == sum(range(32))


def test_asyncio_tasks_each_own_run(cap: testing.Capture) -> None:
    """1,000 interleaved tasks: task i fails i % 3 times; nothing leaks between runs."""
    counters: dict[int, int] = {}

    @agentrel.tool
    async def call(i: int) -> str:
        n = counters.get(i, 0)
        counters[i] = n + 1
        await asyncio.sleep(0)
        if n < i % 3:
            raise ConnectionError
        return "ok"

    async def one(i: int) -> agentrel.Run:
        async with agentrel.run("a") as run:
            while True:
                try:
                    await call(i)
                    break
                except ConnectionError:
                    await asyncio.sleep(0)
        return run

    async def main() -> list[agentrel.Run]:
        return await asyncio.gather(*(one(i) for i in range(1000)))

    runs = asyncio.run(main())
    assert [r.retry_depth for r in runs] == [i % 3 for i in range(1000)]
    assert [r.attempts for r in runs] == [i % 3 + 1 for i in range(1000)]
    assert cap.histogram(RD).count == 1000
    assert cap.histogram(RD).sum == sum(i % 3 for i in range(1000))
    assert cap.histogram(RD, {OUTCOME: "success"}).count == 334


def test_thread_pool_helpers_share_the_run(cap: testing.Capture) -> None:
    """with_current_run and ContextThreadPoolExecutor hand the run to worker threads; a plain
    pool does not (documented)."""

    @agentrel.tool
    def work(x: int) -> int:
        if x == 0:
            raise ValueError
        return x

    def safe(x: int) -> int:
        try:
            return work(x)
        except ValueError:
            return -1

    with agentrel.run("fanout") as run:
        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(agentrel.with_current_run(safe), range(8))) == [
                -1, 1, 2, 3, 4, 5, 6, 7,
            ]  # fmt: skip
        with agentrel.ContextThreadPoolExecutor(4) as cpool:
            assert sum(f.result() for f in [cpool.submit(safe, i) for i in range(4)]) == 5
        with ThreadPoolExecutor(2) as plain:
            plain.submit(safe, 9).result()  # no run in that thread: not counted in this run
    assert (run.attempts, run.retry_depth, run.outcome) == (12, 2, "recovered")
