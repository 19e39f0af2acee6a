"""Adversarial reliability suite, execution: threads, tasks, cancellation, hostile exceptions
and generator tools, each pinned to exact values.

Every scenario runs real agentrel parts (decorators, runs, the in-memory SDK of
``agentrel.testing.capture``) with real threads, real asyncio loops and real generators.
Each test asserts the whole picture: the run's recorded figures (``agentrel.run.*`` points and
the ``invoke_agent`` span), every call (``agentrel.tool.attempts`` points), every failure by
tool, ``error.type`` and ``absorbed`` (``agentrel.tool.failures``), and the spans in the order
they ended. The autouse ``_host_untouched`` fixture adds to every test: agentrel counted no
telemetry error and nothing logged a warning (so no traceback reached the host's logs).

The rules pinned here are written up in the ``Threads, tasks, cancellation and hostile
exceptions`` section of the docs.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

import agentrel
from agentrel import testing
from agentrel._catalogue import ABSORBED, AGENT, DISPOSITION, ERROR_TYPE, OUTCOME, TOOL

pytestmark = pytest.mark.timeout(60)  # a hang guard only: nothing here is timed

RD = "agentrel.run.retry_depth"
RA = "agentrel.run.attempts"
TA = "agentrel.tool.attempts"
TF = "agentrel.tool.failures"
TOK = "agentrel.tokens"
WAIT = 10.0  # seconds a thread waits for an event before the test fails (never reached)


# --- what was recorded, in full ----------------------------------------------------------------
def runs(cap: testing.Capture) -> dict[tuple[str, str], tuple[int, float, float]]:
    """(agent, outcome) -> (runs, retry depth summed, attempts summed)."""
    attempts = {(a[AGENT], a[OUTCOME]): p.sum for a, p in cap.points(RA)}
    return {
        (a[AGENT], a[OUTCOME]): (p.count, p.sum, attempts[(a[AGENT], a[OUTCOME])])
        for a, p in cap.points(RD)
    }


def calls(cap: testing.Capture) -> dict[tuple[str, str], tuple[int, float]]:
    """(tool, outcome) -> (logical calls, attempts summed)."""
    return {(a[TOOL], a[OUTCOME]): (p.count, p.sum) for a, p in cap.points(TA)}


def failures(cap: testing.Capture) -> dict[tuple[str, str, str], float]:
    """(tool, error.type, absorbed) -> failed attempts."""
    return {(a[TOOL], a[ERROR_TYPE], a[ABSORBED]): p.value for a, p in cap.points(TF)}


def tokens(cap: testing.Capture) -> dict[tuple[str | None, str], float]:
    """(agent or None, disposition) -> tokens."""
    return {(a.get(AGENT), a[DISPOSITION]): p.value for a, p in cap.points(TOK)}


def spans(cap: testing.Capture) -> list[tuple[str, str, Any, Any]]:
    """(name, status, agentrel.outcome, error.type) of every span, in the order they ended."""
    return [
        (
            s.name,
            s.status.status_code.name,
            s.attributes.get(OUTCOME),
            s.attributes.get(ERROR_TYPE),
        )
        for s in cap.spans()
    ]


def run_span(cap: testing.Capture, name: str) -> dict[str, Any]:
    [span] = cap.spans(f"invoke_agent {name}")
    return dict(span.attributes)


@pytest.fixture(autouse=True)
def _host_untouched(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test: no telemetry error counted, no warning logged by anyone (agentrel logs a
    telemetry error with its traceback: none may happen here)."""
    caplog.set_level(logging.WARNING)
    yield
    assert agentrel.telemetry_errors() == {}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def _capture_content(cap: testing.Capture) -> None:
    agentrel.configure(
        tracer_provider=cap.tracer_provider, meter_provider=cap.meter_provider, capture_content=True
    )


# --- 1. threads and tasks -----------------------------------------------------------------------
def _work_tool() -> Any:
    @agentrel.tool
    def work(x: int) -> int:
        agentrel.record_tokens(input=10)
        if x < 0:
            raise ValueError("negative")
        return x

    return work


def _safe(work: Any) -> Any:
    def safe(x: int) -> int:
        try:
            return int(work(x))
        except ValueError:
            return -100

    return safe


def test_plain_executor_worker_records_outside_the_run(cap: testing.Capture) -> None:
    """A plain ThreadPoolExecutor worker does not see the run (contextvars do not cross it):
    its calls are recorded as calls outside any run, each judged by its own fate (a failed call's
    failure is not absorbed, its tokens are wasted, no agent label), and the run counts none."""
    safe = _safe(_work_tool())
    with agentrel.run("r") as run, ThreadPoolExecutor(3) as pool:
        assert list(pool.map(safe, [1, -1, 2, -2])) == [1, -100, 2, -100]
    assert (run.outcome, run.retry_depth, run.attempts, run.tokens) == ("success", 0, 0, 0)
    assert runs(cap) == {("r", "success"): (1, 0, 0)}
    assert calls(cap) == {("work", "success"): (2, 2), ("work", "failed"): (2, 2)}
    assert failures(cap) == {("work", "ValueError", "false"): 2}
    assert tokens(cap) == {(None, "useful"): 20, (None, "wasted"): 20}
    assert run_span(cap, "r")["agentrel.run.attempts"] == 0


def test_context_executor_and_with_current_run_count_into_the_run(cap: testing.Capture) -> None:
    """ContextThreadPoolExecutor (submit and map) and with_current_run on a plain pool carry the
    run into the worker: every attempt, failure and token lands in the run, counted once."""
    safe = _safe(_work_tool())
    items = [1, -1, 2, 3, -2, 4]  # 6 calls, 2 of them fail
    with agentrel.run("r") as run:
        with agentrel.ContextThreadPoolExecutor(3) as cpool:
            assert list(cpool.map(safe, items)) == [1, -100, 2, 3, -100, 4]
            futures = [cpool.submit(safe, x) for x in items]
            assert [f.result(timeout=WAIT) for f in futures] == [1, -100, 2, 3, -100, 4]
        with ThreadPoolExecutor(3) as pool:
            bound = agentrel.with_current_run(safe)
            assert list(pool.map(bound, items)) == [1, -100, 2, 3, -100, 4]
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 6, 18)
    assert (run.useful_tokens, run.wasted_tokens) == (120, 60)
    assert runs(cap) == {("r", "recovered"): (1, 6, 18)}
    assert calls(cap) == {("work", "success"): (12, 12), ("work", "failed"): (6, 6)}
    assert failures(cap) == {("work", "ValueError", "true"): 6}
    assert tokens(cap) == {("r", "useful"): 120, ("r", "wasted"): 60}
    parent = cap.spans("invoke_agent r")[0].context.span_id
    assert {s.parent.span_id for s in cap.spans("execute_tool work")} == {parent}


def test_to_thread_carries_the_run_run_in_executor_does_not(cap: testing.Capture) -> None:
    """asyncio.to_thread copies the context (the call counts in the run); loop.run_in_executor
    does not (the call is recorded outside any run, by its own fate)."""
    safe = _safe(_work_tool())

    async def main() -> agentrel.Run:
        loop = asyncio.get_running_loop()
        async with agentrel.run("r") as run:
            assert await asyncio.to_thread(safe, -1) == -100
            assert await loop.run_in_executor(None, safe, -1) == -100
            assert await loop.run_in_executor(None, agentrel.with_current_run(safe), 5) == 5
        return run

    run = asyncio.run(main())
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 2)
    assert runs(cap) == {("r", "recovered"): (1, 1, 2)}
    assert calls(cap) == {("work", "failed"): (2, 2), ("work", "success"): (1, 1)}
    assert failures(cap) == {("work", "ValueError", "true"): 1, ("work", "ValueError", "false"): 1}
    assert tokens(cap) == {("r", "wasted"): 10, ("r", "useful"): 10, (None, "wasted"): 10}


def test_nested_call_in_a_worker_thread_is_a_child_of_the_submitting_call(
    cap: testing.Capture,
) -> None:
    """A tool that fans out to a ContextThreadPoolExecutor: the workers' calls are children of
    the submitting call (the context carries the call too); the parent absorbed their failure."""
    work = _work_tool()
    safe = _safe(work)

    @agentrel.tool
    def fan(xs: list[int]) -> int:
        with agentrel.ContextThreadPoolExecutor(2) as pool:
            return sum(pool.map(safe, xs))

    with agentrel.run("r") as run:
        assert fan([1, -1, 2]) == -97
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 4)
    assert calls(cap) == {
        ("work", "success"): (2, 2),
        ("work", "failed"): (1, 1),
        ("fan", "recovered"): (1, 1),
    }
    assert failures(cap) == {("work", "ValueError", "true"): 1}
    [fan_span] = cap.spans("execute_tool fan")
    assert {s.parent.span_id for s in cap.spans("execute_tool work")} == {fan_span.context.span_id}


def test_child_call_outliving_its_parent_call_thread(cap: testing.Capture) -> None:
    """Regression: a tool hands work to a thread (with_current_run, so the workers' calls are
    children of the tool's call) and returns before the workers finish. The children end
    after their parent call: their tokens go to the run (they used to be handed to the ended
    parent and lost), their failure counts in the run; the parent's recorded outcome stays."""
    release = threading.Event()

    @agentrel.tool
    def child(fail: bool) -> None:
        assert release.wait(WAIT)
        agentrel.record_tokens(input=7)
        if fail:
            raise ValueError

    with ThreadPoolExecutor(2) as pool:

        @agentrel.tool
        def parent() -> list[Any]:
            return [pool.submit(agentrel.with_current_run(child), f) for f in (True, False)]

        with agentrel.run("r") as run:
            futures = parent()
            release.set()
            with pytest.raises(ValueError):
                futures[0].result(timeout=WAIT)
            assert futures[1].result(timeout=WAIT) is None
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 3)
    assert (run.useful_tokens, run.wasted_tokens) == (7, 7)
    assert runs(cap) == {("r", "recovered"): (1, 1, 3)}
    assert calls(cap) == {
        ("parent", "success"): (1, 1),
        ("child", "failed"): (1, 1),
        ("child", "success"): (1, 1),
    }
    assert failures(cap) == {("child", "ValueError", "true"): 1}
    assert tokens(cap) == {("r", "useful"): 7, ("r", "wasted"): 7}
    parent_id = cap.spans("execute_tool parent")[0].context.span_id
    assert {s.parent.span_id for s in cap.spans("execute_tool child")} == {parent_id}


def test_child_call_outliving_its_parent_call_task(cap: testing.Capture) -> None:
    """The same with an asyncio task created inside an async tool (fire and forget) and
    awaited by the run after the tool returned; and, outside any run, a late child's failure
    and tokens are recorded by its own fate instead of vanishing into the ended parent."""
    gate: list[asyncio.Event] = []

    @agentrel.tool
    async def child(fail: bool) -> None:
        await gate[0].wait()
        agentrel.record_tokens(input=3)
        if fail:
            raise TimeoutError

    @agentrel.tool
    async def parent() -> list[asyncio.Task[None]]:
        return [asyncio.create_task(child(True)), asyncio.create_task(child(False))]

    async def main() -> agentrel.Run:
        gate.append(asyncio.Event())
        async with agentrel.run("r") as run:
            tasks = await parent()
            await asyncio.sleep(0)
            gate[0].set()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), WAIT)
        gate[0] = asyncio.Event()
        tasks = await parent()  # no run around this one
        await asyncio.sleep(0)
        gate[0].set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), WAIT)
        return run

    run = asyncio.run(main())
    assert (run.outcome, run.retry_depth, run.attempts, run.tokens) == ("recovered", 1, 3, 6)
    assert runs(cap) == {("r", "recovered"): (1, 1, 3)}
    assert calls(cap) == {
        ("parent", "success"): (2, 2),
        ("child", "failed"): (2, 2),
        ("child", "success"): (2, 2),
    }
    assert failures(cap) == {
        ("child", "TimeoutError", "true"): 1,  # in the run, which recovered
        ("child", "TimeoutError", "false"): 1,  # outside any run: the call's own fate
    }
    assert tokens(cap) == {
        ("r", "useful"): 3,
        ("r", "wasted"): 3,
        (None, "useful"): 3,
        (None, "wasted"): 3,
    }


def test_task_finishing_after_its_run_closed(cap: testing.Capture) -> None:
    """Two tasks spawned inside a run are still awaiting when the run closes; one then fails,
    one succeeds. The rule: the run is classified and recorded with what it had when it
    closed (both attempts had started: attempts 2, retry depth 0, success), and its figures,
    handle included, are final from then on. Each late call records its own span (a child of
    the ended run span, ending after it), ``agentrel.tool.attempts`` and duration, and, as a
    call outside any run, its failure (``absorbed=false``: the call failed) and all its tokens,
    those recorded while the run was still open included, with no agent label."""
    gate: list[asyncio.Event] = []

    @agentrel.tool
    async def slow(fail: bool) -> str:
        agentrel.record_tokens(input=5)  # while the run is still open
        await gate[0].wait()
        agentrel.record_tokens(input=10 if fail else 0)
        if fail:
            raise TimeoutError
        return "ok"

    async def main() -> tuple[agentrel.Run, list[Any]]:
        gate.append(asyncio.Event())
        async with agentrel.run("r") as run:
            tasks = [asyncio.create_task(slow(True)), asyncio.create_task(slow(False))]
            await asyncio.sleep(0)  # both calls start inside the run
        gate[0].set()
        done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), WAIT)
        return run, done

    run, done = asyncio.run(main())
    assert isinstance(done[0], TimeoutError)
    assert done[1] == "ok"
    assert runs(cap) == {("r", "success"): (1, 0, 2)}
    attrs = run_span(cap, "r")
    assert (attrs[OUTCOME], attrs["agentrel.run.retry_depth"], attrs["agentrel.run.tokens"]) == (
        "success",
        0,
        0,
    )
    assert calls(cap) == {("slow", "failed"): (1, 1), ("slow", "success"): (1, 1)}
    assert failures(cap) == {("slow", "TimeoutError", "false"): 1}
    assert tokens(cap) == {(None, "wasted"): 15, (None, "useful"): 5}
    assert spans(cap) == [
        ("invoke_agent r", "UNSET", "success", None),
        ("execute_tool slow", "ERROR", "failed", "TimeoutError"),
        ("execute_tool slow", "UNSET", "success", None),
    ]
    run_id = cap.spans("invoke_agent r")[0].context.span_id
    assert {s.parent.span_id for s in cap.spans("execute_tool slow")} == {run_id}
    # The handle is frozen at the close: it says what was recorded.
    assert (run.outcome, run.retry_depth, run.attempts, run.tokens) == ("success", 0, 2, 0)


def test_task_starting_its_call_after_the_run_closed(cap: testing.Capture) -> None:
    """A task spawned inside a run that calls a tool only after the run closed still sees the
    run in its (copied) context: same rule; its attempt is not one of the run's (0, on the
    handle too), its failure and tokens are recorded as outside any run."""
    gate: list[asyncio.Event] = []
    work = _work_tool()

    async def later() -> int:
        await gate[0].wait()
        try:
            return int(work(-1))
        except ValueError:
            return -100

    async def main() -> tuple[agentrel.Run, int]:
        gate.append(asyncio.Event())
        async with agentrel.run("r") as run:
            task = asyncio.create_task(later())
            await asyncio.sleep(0)
        gate[0].set()
        return run, await asyncio.wait_for(task, WAIT)

    run, value = asyncio.run(main())
    assert value == -100
    assert runs(cap) == {("r", "success"): (1, 0, 0)}
    assert calls(cap) == {("work", "failed"): (1, 1)}
    assert failures(cap) == {("work", "ValueError", "false"): 1}
    assert tokens(cap) == {(None, "wasted"): 10}
    assert spans(cap) == [
        ("invoke_agent r", "UNSET", "success", None),
        ("execute_tool work", "ERROR", "failed", "ValueError"),
    ]
    assert (run.outcome, run.retry_depth, run.attempts, run.tokens) == ("success", 0, 0, 0)


def test_thread_outliving_its_run(cap: testing.Capture) -> None:
    """with_current_run work still running in a thread when the run closes: the same rule as
    for a late task (the call in flight at the close counts its attempt in the run; its failure
    after the close is recorded as outside any run, not absorbed)."""
    entered, release = threading.Event(), threading.Event()

    @agentrel.tool
    def blocking() -> None:
        entered.set()
        assert release.wait(WAIT)
        raise ConnectionError

    def worker() -> str:
        try:
            blocking()
        except ConnectionError as exc:
            return type(exc).__name__
        return "no error"

    with ThreadPoolExecutor(1) as pool:
        with agentrel.run("r") as run:
            future = pool.submit(agentrel.with_current_run(worker))
            assert entered.wait(WAIT)
        release.set()
        assert future.result(timeout=WAIT) == "ConnectionError"
    assert runs(cap) == {("r", "success"): (1, 0, 1)}
    assert calls(cap) == {("blocking", "failed"): (1, 1)}
    assert failures(cap) == {("blocking", "ConnectionError", "false"): 1}
    assert spans(cap) == [
        ("invoke_agent r", "UNSET", "success", None),
        ("execute_tool blocking", "ERROR", "failed", "ConnectionError"),
    ]
    assert (run.retry_depth, run.attempts) == (0, 1)


def test_concurrent_threads_each_with_the_run_exact_totals(cap: testing.Capture) -> None:
    """8 threads released together by a barrier, each making 25 calls of which every fifth
    fails, all bound to one run: totals are exact (no lost update under the run's lock)."""
    work = _work_tool()
    safe = _safe(work)
    barrier = threading.Barrier(8)

    def worker(t: int) -> int:
        barrier.wait(WAIT)
        return sum(safe(-1 if i % 5 == 0 else i) for i in range(25))

    with agentrel.run("r") as run, ThreadPoolExecutor(8) as pool:
        bound = agentrel.with_current_run(worker)
        results = [f.result(timeout=WAIT) for f in [pool.submit(bound, t) for t in range(8)]]
    assert results == [sum(i for i in range(25) if i % 5) - 500] * 8
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 40, 200)
    assert runs(cap) == {("r", "recovered"): (1, 40, 200)}
    assert calls(cap) == {("work", "success"): (160, 160), ("work", "failed"): (40, 40)}
    assert failures(cap) == {("work", "ValueError", "true"): 40}
    assert tokens(cap) == {("r", "useful"): 1600, ("r", "wasted"): 400}


# --- 2. KeyboardInterrupt, SystemExit, CancelledError, GeneratorExit ----------------------------
BASE_EXCEPTIONS = [KeyboardInterrupt, SystemExit, asyncio.CancelledError, GeneratorExit]
IDS = ["KeyboardInterrupt", "SystemExit", "CancelledError", "GeneratorExit"]


@pytest.mark.parametrize("kind", BASE_EXCEPTIONS, ids=IDS)
def test_base_exception_through_sync_tool_and_run(
    cap: testing.Capture, kind: type[BaseException]
) -> None:
    """A BaseException leaving a sync tool and its ``with agentrel.run``: the very object
    reaches the caller; it is a failed attempt of the tool (error.type = its class name) and the
    run is ``failed`` with the same error.type, depth 1, the failure not absorbed."""
    err = kind()

    @agentrel.tool
    def tool() -> None:
        raise err

    with pytest.raises(kind) as info:
        with agentrel.run("r") as run:
            tool()
    assert info.value is err
    name = kind.__qualname__
    assert (run.outcome, run.retry_depth, run.attempts) == ("failed", 1, 1)
    assert runs(cap) == {("r", "failed"): (1, 1, 1)}
    assert calls(cap) == {("tool", "failed"): (1, 1)}
    assert failures(cap) == {("tool", name, "false"): 1}
    assert spans(cap) == [
        ("execute_tool tool", "ERROR", "failed", name),
        ("invoke_agent r", "ERROR", "failed", name),
    ]


@pytest.mark.parametrize("kind", BASE_EXCEPTIONS, ids=IDS)
def test_base_exception_through_async_tool_and_async_run(
    cap: testing.Capture, kind: type[BaseException]
) -> None:
    """The same through an async tool awaited in ``async with agentrel.run``, after the tool
    already failed once and was called again: the run is ``exhausted`` (it had retried), depth
    2, both failures not absorbed, and the exception object is the one the tool raised."""
    err = kind()
    state = {"n": 0}

    @agentrel.tool
    async def tool() -> None:
        state["n"] += 1
        await asyncio.sleep(0)
        raise (TimeoutError() if state["n"] == 1 else err)

    async def main() -> agentrel.Run:
        with pytest.raises(kind) as info:
            async with agentrel.run("r") as run:
                try:
                    await tool()
                except TimeoutError:
                    pass
                await tool()
        assert info.value is err
        return run

    run = asyncio.run(main())
    name = kind.__qualname__
    assert (run.outcome, run.retry_depth, run.attempts) == ("exhausted", 2, 2)
    assert runs(cap) == {("r", "exhausted"): (1, 2, 2)}
    assert calls(cap) == {("tool", "failed"): (2, 2)}
    assert failures(cap) == {("tool", "TimeoutError", "false"): 1, ("tool", name, "false"): 1}
    assert run_span(cap, "r")[ERROR_TYPE] == name


@pytest.mark.parametrize("kind", BASE_EXCEPTIONS, ids=IDS)
def test_base_exception_through_agent_functions(
    cap: testing.Capture, kind: type[BaseException]
) -> None:
    """``@agentrel.agent`` on a function and on an async function: the object propagates, the
    run is ``failed`` with depth 0 and 0 attempts (nothing inside it failed)."""
    err = kind()

    @agentrel.agent("sync")
    def sync_agent() -> None:
        raise err

    @agentrel.agent("async")
    async def async_agent() -> None:
        await asyncio.sleep(0)
        raise err

    async def main() -> None:
        with pytest.raises(kind) as info:
            await async_agent()
        assert info.value is err

    with pytest.raises(kind) as info:
        sync_agent()
    assert info.value is err
    asyncio.run(main())
    assert runs(cap) == {("sync", "failed"): (1, 0, 0), ("async", "failed"): (1, 0, 0)}
    assert calls(cap) == {}
    assert failures(cap) == {}
    name = kind.__qualname__
    assert spans(cap) == [
        ("invoke_agent sync", "ERROR", "failed", name),
        ("invoke_agent async", "ERROR", "failed", name),
    ]


def test_task_cancel_while_a_tool_awaits(cap: testing.Capture) -> None:
    """task.cancel() while an async tool awaits inside a run inside the task: the tool's attempt
    fails with CancelledError (one failure, not absorbed), the run is ``failed``; the same
    CancelledError object leaves the tool and the run."""
    entered = asyncio.Event()
    seen: list[BaseException] = []

    @agentrel.tool
    async def wait_forever() -> None:
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError as exc:
            seen.append(exc)
            raise

    @agentrel.agent("support")
    async def support() -> None:
        try:
            await wait_forever()
        except asyncio.CancelledError as exc:
            seen.append(exc)
            raise

    async def main() -> None:
        task = asyncio.create_task(support())
        await asyncio.wait_for(entered.wait(), WAIT)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError as exc:
            seen.append(exc)
        assert task.cancelled()

    asyncio.run(main())
    assert len(seen) == 3
    assert seen[0] is seen[1]
    assert runs(cap) == {("support", "failed"): (1, 1, 1)}
    assert calls(cap) == {("wait_forever", "failed"): (1, 1)}
    assert failures(cap) == {("wait_forever", "CancelledError", "false"): 1}
    assert spans(cap) == [
        ("execute_tool wait_forever", "ERROR", "failed", "CancelledError"),
        ("invoke_agent support", "ERROR", "failed", "CancelledError"),
    ]


def test_real_sigint_inside_a_tool(cap: testing.Capture) -> None:
    """A real SIGINT delivered while a tool runs (Python's default handler raises
    KeyboardInterrupt in the main thread): recorded as a failed attempt ``KeyboardInterrupt``;
    the run is ``failed``; the object the handler raised is the one the caller catches."""
    if threading.current_thread() is not threading.main_thread():  # pragma: no cover
        pytest.skip("signals are delivered to the main thread")
    raised: list[BaseException] = []

    @agentrel.tool
    def interruptible() -> None:
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt as exc:
            raised.append(exc)
            raise

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt) as info, agentrel.run("r"):
            interruptible()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert raised == [info.value]
    assert raised[0] is info.value
    assert runs(cap) == {("r", "failed"): (1, 1, 1)}
    assert failures(cap) == {("interruptible", "KeyboardInterrupt", "false"): 1}


def test_coroutine_tool_closed_mid_await_is_a_failed_attempt(cap: testing.Capture) -> None:
    """A coroutine tool suspended at an await and then closed (``coro.close()``, what the
    interpreter does to a dropped coroutine) is cut off: a failed attempt ``GeneratorExit``,
    absorbed when the run then succeeds. (A closed *generator* tool is not a failure: below.)"""

    @agentrel.tool
    async def fetch() -> str:
        await asyncio.sleep(0)
        return "never"

    with agentrel.run("r") as run:
        coro = fetch()
        coro.send(None)  # runs up to the sleep's yield
        coro.close()
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 1)
    assert runs(cap) == {("r", "recovered"): (1, 1, 1)}
    assert calls(cap) == {("fetch", "failed"): (1, 1)}
    assert failures(cap) == {("fetch", "GeneratorExit", "true"): 1}


def test_run_block_inside_a_generator_closed_early_fails(cap: testing.Capture) -> None:
    """``with agentrel.run()`` written inside a plain generator that the consumer closes while
    suspended inside the block: GeneratorExit leaves the block, so the run is ``failed`` with
    error.type GeneratorExit (as LangGraph's closed stream is). ``@agentrel.agent`` on a
    generator treats the same early stop as no failure: next test."""
    work = _work_tool()

    def answers() -> Iterator[int]:
        with agentrel.run("inline"):
            for i in range(3):
                yield work(i)

    it = answers()
    assert next(it) == 0
    it.close()
    assert runs(cap) == {("inline", "failed"): (1, 0, 1)}
    assert calls(cap) == {("work", "success"): (1, 1)}
    assert run_span(cap, "inline")[ERROR_TYPE] == "GeneratorExit"
    assert tokens(cap) == {("inline", "wasted"): 10}


def test_agent_generator_closed_early_is_not_a_failure(cap: testing.Capture) -> None:
    """``@agentrel.agent`` generators, sync and async, closed by the consumer after one item:
    the run spans the iteration and ends ``success`` (the consumer stopped early: no failure),
    its tokens useful."""
    work = _work_tool()

    @agentrel.agent("gen")
    def gen() -> Iterator[int]:
        for i in range(3):
            yield work(i)

    @agentrel.agent("agen")
    async def agen() -> AsyncIterator[int]:
        for i in range(3):
            yield work(i)

    it = gen()
    assert next(it) == 0
    it.close()

    async def main() -> None:
        ait = agen()
        assert await ait.__anext__() == 0
        await ait.aclose()

    asyncio.run(main())
    assert runs(cap) == {("gen", "success"): (1, 0, 1), ("agen", "success"): (1, 0, 1)}
    assert tokens(cap) == {("gen", "useful"): 10, ("agen", "useful"): 10}


@pytest.mark.parametrize("kind", BASE_EXCEPTIONS, ids=IDS)
def test_base_exception_thrown_into_agent_generator(
    cap: testing.Capture, kind: type[BaseException]
) -> None:
    """``.throw(exc)`` into a suspended ``@agentrel.agent`` generator that does not catch it:
    the object propagates, the run is ``failed`` with that error.type. GeneratorExit is the
    exception: thrown in, it is the consumer stopping, and the run ends ``success``."""
    err = kind()

    @agentrel.agent("gen")
    def gen() -> Iterator[int]:
        yield 1
        yield 2

    it = gen()
    assert next(it) == 1
    with pytest.raises(kind) as info:
        it.throw(err)
    assert info.value is err
    if kind is GeneratorExit:
        assert runs(cap) == {("gen", "success"): (1, 0, 0)}
        assert spans(cap) == [("invoke_agent gen", "UNSET", "success", None)]
    else:
        assert runs(cap) == {("gen", "failed"): (1, 0, 0)}
        assert spans(cap) == [("invoke_agent gen", "ERROR", "failed", kind.__qualname__)]


# --- 3. hostile exceptions ----------------------------------------------------------------------
class Hostile(Exception):
    """An exception whose str, repr, hash and eq all raise."""

    def __str__(self) -> str:
        raise RuntimeError("__str__")

    def __repr__(self) -> str:
        raise RuntimeError("__repr__")

    def __hash__(self) -> int:
        raise RuntimeError("__hash__")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("__eq__")


class Unhashable(Exception):
    __hash__ = None  # type: ignore[assignment]


@dataclass(eq=True)
class DataError(Exception):
    """A dataclass exception: eq=True without frozen makes the class unhashable."""

    code: int


class AlwaysEqual(Exception):
    """Every AlwaysEqual equals every other: agentrel must tell them apart by identity."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = Exception.__hash__


@pytest.mark.parametrize("capture_content", [False, True], ids=["default", "capture_content"])
def test_hostile_exception_through_tools_and_runs(
    cap: testing.Capture, capture_content: bool
) -> None:
    """An exception whose __str__/__repr__/__hash__/__eq__ raise, through a sync tool, an
    async tool and the run: the same object arrives, error.type is the class's qualified name,
    every span ends, and no telemetry error is counted, also with capture_content=True (the
    message is simply not recorded)."""
    if capture_content:
        _capture_content(cap)
    err = Hostile()

    @agentrel.tool
    def sync_tool() -> None:
        raise err

    @agentrel.tool
    async def async_tool() -> None:
        raise err

    async def main() -> None:
        with pytest.raises(Hostile) as info:
            await async_tool()
        assert info.value is err

    with pytest.raises(Hostile) as info, agentrel.run("r") as run:
        with pytest.raises(Hostile) as inner:
            sync_tool()
        assert inner.value is err
        asyncio.run(main())
        raise err
    assert info.value is err
    assert (run.outcome, run.retry_depth, run.attempts) == ("exhausted", 2, 2)
    assert runs(cap) == {("r", "exhausted"): (1, 2, 2)}
    assert calls(cap) == {("sync_tool", "failed"): (1, 1), ("async_tool", "failed"): (1, 1)}
    assert failures(cap) == {
        ("sync_tool", "Hostile", "false"): 1,
        ("async_tool", "Hostile", "false"): 1,
    }
    assert spans(cap) == [
        ("execute_tool sync_tool", "ERROR", "failed", "Hostile"),
        ("execute_tool async_tool", "ERROR", "failed", "Hostile"),
        ("invoke_agent r", "ERROR", "exhausted", "Hostile"),
    ]
    for span in cap.spans():
        assert "exception.message" not in span.attributes
        assert all("exception.message" not in e.attributes for e in span.events)


def test_capture_content_records_a_readable_message(cap: testing.Capture) -> None:
    """Control for the test above: with capture_content=True an ordinary exception's message is
    recorded on the failed call's attempt event and on the run span."""
    _capture_content(cap)

    @agentrel.tool
    def tool() -> None:
        raise ValueError("plain words")

    with pytest.raises(ValueError), agentrel.run("r"):
        tool()
    [event] = cap.spans("execute_tool tool")[0].events
    assert event.attributes["exception.message"] == "plain words"
    assert run_span(cap, "r")["exception.message"] == "plain words"


@pytest.mark.parametrize(
    "make",
    [Unhashable, lambda: DataError(7), AlwaysEqual],
    ids=["hash_none", "dataclass_eq", "always_equal"],
)
def test_unhashable_and_odd_eq_exceptions(cap: testing.Capture, make: Any) -> None:
    """Unhashable exception classes and one whose __eq__ says everything is equal, re-raised
    through two nested tools: counted once (identity, not equality, tells a propagating failure
    from a new one), the same object arrives."""
    err = make()
    assert err == err

    @agentrel.tool
    def inner() -> None:
        raise err

    @agentrel.tool
    def outer() -> None:
        inner()

    with pytest.raises(type(err)) as info, agentrel.run("r") as run:
        outer()
    assert info.value is err
    name = type(err).__qualname__
    assert (run.outcome, run.retry_depth, run.attempts) == ("failed", 1, 2)
    assert calls(cap) == {("inner", "failed"): (1, 1), ("outer", "failed"): (1, 1)}
    assert failures(cap) == {("inner", name, "false"): 1}
    assert spans(cap) == [
        ("execute_tool inner", "ERROR", "failed", name),
        ("execute_tool outer", "ERROR", "failed", name),
        ("invoke_agent r", "ERROR", "failed", name),
    ]


def test_equal_but_distinct_exception_is_a_new_failure(cap: testing.Capture) -> None:
    """An outer tool that catches the inner tool's AlwaysEqual and raises another AlwaysEqual
    (equal by __eq__, a different object): a new failure of the outer call, counted."""
    first, second = AlwaysEqual(), AlwaysEqual()
    assert first == second

    @agentrel.tool
    def inner() -> None:
        raise first

    @agentrel.tool
    def outer() -> None:
        try:
            inner()
        except AlwaysEqual:
            raise second from None

    with pytest.raises(AlwaysEqual) as info, agentrel.run("r") as run:
        outer()
    assert info.value is second
    assert (run.outcome, run.retry_depth, run.attempts) == ("failed", 2, 2)
    assert failures(cap) == {
        ("inner", "AlwaysEqual", "false"): 1,
        ("outer", "AlwaysEqual", "false"): 1,
    }


def _plain_and_decorated(fn: Any) -> tuple[BaseException, BaseException]:
    """Call ``fn`` undecorated and as a tool in a run; the exceptions that come out."""
    out: list[BaseException] = []
    for f in (fn, agentrel.tool(name="chained")(fn)):
        try:
            with agentrel.run("r"):
                f()
        except BaseException as exc:
            out.append(exc)
    return out[0], out[1]


def test_chained_causes_are_untouched(cap: testing.Capture) -> None:
    """``raise X from Y`` and an implicit ``__context__``: the decorated tool lets out the same
    object with the same ``__cause__``, ``__context__`` and ``__suppress_context__`` as the
    plain function; error.type is the outer exception's class (the cause is not recorded)."""
    cause, ctx = KeyError("k"), OSError("disk")
    explicit, implicit = RuntimeError("explicit"), LookupError("implicit")
    suppressed = ValueError("from None")

    def raise_from() -> None:
        raise explicit from cause

    def raise_during() -> None:
        try:
            raise ctx
        except OSError:
            raise implicit  # noqa: B904 - the implicit context is the point

    def raise_from_none() -> None:
        try:
            raise ctx
        except OSError:
            raise suppressed from None

    cases = [  # (function, what comes out, its __cause__, __context__, __suppress_context__)
        (raise_from, explicit, cause, None, True),
        (raise_during, implicit, None, ctx, False),
        (raise_from_none, suppressed, None, ctx, True),
    ]
    for fn, want, want_cause, want_context, want_suppress in cases:
        plain, decorated = _plain_and_decorated(fn)
        assert plain is want
        assert decorated is want
        assert decorated.__cause__ is want_cause
        assert decorated.__context__ is want_context
        assert decorated.__suppress_context__ is want_suppress
    assert explicit.__cause__ is cause and implicit.__context__ is ctx
    assert failures(cap) == {
        ("chained", "RuntimeError", "false"): 1,
        ("chained", "LookupError", "false"): 1,
        ("chained", "ValueError", "false"): 1,
    }
    assert runs(cap) == {("r", "failed"): (6, 3, 3)}


def test_exception_from_the_tool_is_not_chained_to_agentrel(
    cap: testing.Capture, caplog: pytest.LogCaptureFixture
) -> None:
    """A fresh exception leaving a tool keeps ``__context__ is None``: nothing agentrel raised
    and caught on the way is chained onto it, even with capture_content and a raising redact
    hook (agentrel's own telemetry error, counted and logged once without touching the
    exception: checked here, then cleared for the autouse check)."""
    agentrel.configure(
        tracer_provider=cap.tracer_provider,
        meter_provider=cap.meter_provider,
        capture_content=True,
        redact=lambda s: 1 / 0,  # type: ignore[arg-type, return-value]
    )
    err = ValueError("fresh")

    @agentrel.tool
    def tool() -> None:
        raise err

    with pytest.raises(ValueError) as info, agentrel.run("r"):
        tool()
    assert info.value is err
    assert (err.__context__, err.__cause__, err.__suppress_context__) == (None, None, False)
    # the arguments, the attempt's message and the run's message each went through redact
    assert agentrel.telemetry_errors() == {"redact": 3}
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        "agentrel: telemetry failed in redact (ZeroDivisionError)"
    ]
    assert runs(cap) == {("r", "failed"): (1, 1, 1)}
    assert failures(cap) == {("tool", "ValueError", "false"): 1}
    testing.reset()
    caplog.clear()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is Python 3.11+")
def test_exception_groups_from_tools(cap: testing.Capture) -> None:
    """ExceptionGroup and BaseExceptionGroup raised from tools: the same group object arrives
    (``except*`` derives its own group, with the same leaves); error.type is the group's class, and
    ``BaseExceptionGroup(...)`` of Exceptions only *is* an ExceptionGroup."""
    import builtins

    eg_cls: Any = builtins.ExceptionGroup  # type: ignore[attr-defined]
    beg_cls: Any = builtins.BaseExceptionGroup  # type: ignore[attr-defined]
    groups = [
        eg_cls("eg", [ValueError(1), KeyError(2)]),
        beg_cls("beg", [KeyboardInterrupt(), ValueError(3)]),
        beg_cls("only exceptions", [TypeError()]),
    ]
    assert type(groups[2]) is eg_cls

    @agentrel.tool
    def tool(i: int) -> None:
        raise groups[i]

    # except* is Python 3.11 syntax: compiled here so that this module still parses on 3.10.
    star = compile(
        "try:\n    tool(0)\nexcept* (ValueError, KeyError) as eg:\n    matched.append(eg)\n",
        "<except*>",
        "exec",
    )
    with agentrel.run("r") as run:
        for i, group in enumerate(groups):
            try:
                tool(i)
            except beg_cls as exc:
                assert exc is group
        matched: list[BaseException] = []
        exec(star, {"tool": tool, "matched": matched})  # the whole group matches
        # except* hands over a group of its own making (CPython does so undecorated too),
        # holding the very leaf exceptions the tool raised
        [got] = matched
        assert type(got) is eg_cls
        assert [a is b for a, b in zip(got.exceptions, groups[0].exceptions, strict=True)] == [
            True,
            True,
        ]
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 4, 4)
    assert calls(cap) == {("tool", "failed"): (4, 4)}
    assert failures(cap) == {
        ("tool", "ExceptionGroup", "true"): 3,
        ("tool", "BaseExceptionGroup", "true"): 1,
    }


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is Python 3.11+")
def test_task_group_of_failing_tools(cap: testing.Capture) -> None:
    """A tool fanning out with asyncio.TaskGroup to two tools that both fail in the same loop
    turn: each child failure counts, and the ExceptionGroup the TaskGroup raises is a new
    object, so the fanning tool counts one failure of its own (depth 3); the group holds the
    children's very exception objects."""
    errs = [ValueError("a"), KeyError("b")]

    @agentrel.tool
    async def child(i: int) -> None:
        await asyncio.sleep(0)
        raise errs[i]

    @agentrel.tool
    async def fan() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(child(0))
            tg.create_task(child(1))

    async def main() -> tuple[agentrel.Run, BaseException]:
        async with agentrel.run("r") as run:
            try:
                await fan()
            except Exception as exc:
                group = exc
        return run, group

    run, group = asyncio.run(main())
    assert type(group).__qualname__ == "ExceptionGroup"
    inner: Any = group
    assert len(inner.exceptions) == 2
    assert inner.exceptions[0] is errs[0]
    assert inner.exceptions[1] is errs[1]
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 3, 3)
    assert calls(cap) == {("child", "failed"): (2, 2), ("fan", "failed"): (1, 1)}
    assert failures(cap) == {
        ("child", "ValueError", "true"): 1,
        ("child", "KeyError", "true"): 1,
        ("fan", "ExceptionGroup", "true"): 1,
    }


# --- 4. generator and async generator tools -----------------------------------------------------
class Probe:
    """What a generator tool's body went through."""

    def __init__(self) -> None:
        self.caught: list[BaseException] = []
        self.finalized = 0


def _gen_tool(probe: Probe, *, catch: type[BaseException] | None = None) -> Any:
    @agentrel.tool
    def pages(n: int) -> Iterator[int]:
        try:
            i = 0
            while i < n:
                try:
                    yield i
                except BaseException as exc:
                    if catch is None or not isinstance(exc, catch):
                        raise
                    probe.caught.append(exc)
                i += 1
        finally:
            probe.finalized += 1

    return pages


def _agen_tool(probe: Probe, *, catch: type[BaseException] | None = None) -> Any:
    @agentrel.tool
    async def pages(n: int) -> AsyncIterator[int]:
        try:
            i = 0
            while i < n:
                try:
                    yield i
                except BaseException as exc:
                    if catch is None or not isinstance(exc, catch):
                        raise
                    probe.caught.append(exc)
                i += 1
        finally:
            probe.finalized += 1

    return pages


def _one_success(cap: testing.Capture, run: agentrel.Run) -> None:
    assert (run.outcome, run.retry_depth, run.attempts) == ("success", 0, 1)
    assert runs(cap) == {("r", "success"): (1, 0, 1)}
    assert calls(cap) == {("pages", "success"): (1, 1)}
    assert failures(cap) == {}
    assert spans(cap) == [
        ("execute_tool pages", "UNSET", "success", None),
        ("invoke_agent r", "UNSET", "success", None),
    ]


def test_generator_tool_abandoned_and_collected(cap: testing.Capture) -> None:
    """A generator tool dropped after two of five items and garbage collected inside the run:
    the call ends when the generator is finalized, ``success`` with 1 attempt (the consumer
    stopping early is no failure); the body's finally ran once."""
    probe = Probe()
    pages = _gen_tool(probe)
    with agentrel.run("r") as run:
        it = pages(5)
        assert [next(it), next(it)] == [0, 1]
        del it
        gc.collect()
        assert probe.finalized == 1
    _one_success(cap, run)


def test_generator_tool_closed(cap: testing.Capture) -> None:
    """``.close()`` mid-iteration: ``success``, 1 attempt; a second close and a close of an
    exhausted generator record nothing more; a generator tool never started records nothing."""
    probe = Probe()
    pages = _gen_tool(probe)
    with agentrel.run("r") as run:
        it = pages(5)
        assert next(it) == 0
        it.close()
        it.close()
        never = pages(5)
        never.close()
    assert probe.finalized == 1
    _one_success(cap, run)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["gen", "agen"])
def test_generator_tool_whose_cleanup_raises_on_close(
    cap: testing.Capture, asynchronous: bool
) -> None:
    """A generator tool whose ``finally`` raises while it is being closed: that exception (the
    same object) reaches the caller of ``close()``/``aclose()``, and, as any exception leaving a
    tool, it is a failed attempt (not a success)."""
    err = OSError("cleanup failed")

    @agentrel.tool
    def pages() -> Iterator[int]:
        try:
            yield 0
            yield 1
        finally:
            raise err

    @agentrel.tool("pages")
    async def apages() -> AsyncIterator[int]:
        try:
            yield 0
            yield 1
        finally:
            raise err

    async def amain() -> None:
        ait = apages()
        assert await ait.__anext__() == 0
        with pytest.raises(OSError) as info:
            await ait.aclose()
        assert info.value is err

    with agentrel.run("r") as run:
        if asynchronous:
            asyncio.run(amain())
        else:
            it = pages()
            assert next(it) == 0
            with pytest.raises(OSError) as info:
                it.close()
            assert info.value is err
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 1)
    assert calls(cap) == {("pages", "failed"): (1, 1)}
    assert failures(cap) == {("pages", "OSError", "true"): 1}
    assert spans(cap) == [
        ("execute_tool pages", "ERROR", "failed", "OSError"),
        ("invoke_agent r", "UNSET", "recovered", None),
    ]


def test_generator_tool_ignoring_generator_exit(cap: testing.Capture) -> None:
    """A generator tool that yields again when closed: ``close()`` raises RuntimeError exactly
    as it does undecorated, and the call is a failed attempt ``RuntimeError``."""

    def body() -> Iterator[int]:
        ignored = False
        while True:
            try:
                yield 1
            except GeneratorExit:
                if ignored:  # the second close (at collection) is obeyed
                    return
                ignored = True

    stubborn = agentrel.tool(name="stubborn")(body)
    undecorated = body

    plain = undecorated()
    next(plain)
    with pytest.raises(RuntimeError, match="ignored GeneratorExit"):
        plain.close()
    with agentrel.run("r") as run:
        it = stubborn()
        next(it)
        with pytest.raises(RuntimeError, match="ignored GeneratorExit"):
            it.close()
    assert (run.outcome, run.retry_depth) == ("recovered", 1)
    assert failures(cap) == {("stubborn", "RuntimeError", "true"): 1}
    plain.close()
    it.close()
    assert (run.outcome, run.retry_depth) == ("recovered", 1)  # the run had ended: unchanged
    assert calls(cap) == {("stubborn", "failed"): (1, 1)}


@pytest.mark.parametrize(
    "err",
    [TimeoutError("t"), KeyboardInterrupt(), asyncio.CancelledError()],
    ids=lambda e: type(e).__name__,
)
def test_generator_tool_throw_caught_inside(cap: testing.Capture, err: BaseException) -> None:
    """``.throw(exc)`` that the generator tool catches and goes on: no failure (the tool
    handled it), the same object was delivered inside, the call ends ``success`` when the
    iteration does, 1 attempt."""
    probe = Probe()
    pages = _gen_tool(probe, catch=type(err))
    with agentrel.run("r") as run:
        it = pages(3)
        assert next(it) == 0
        assert it.throw(err) == 1
        assert list(it) == [2]
    assert probe.caught == [err] and probe.caught[0] is err
    _one_success(cap, run)


@pytest.mark.parametrize(
    "err",
    [TimeoutError("t"), KeyboardInterrupt(), asyncio.CancelledError()],
    ids=lambda e: type(e).__name__,
)
def test_generator_tool_throw_not_caught(cap: testing.Capture, err: BaseException) -> None:
    """``.throw(exc)`` the generator tool does not catch: the same object comes back out of
    ``throw``, the call is a failed attempt with that error.type; a run that goes on and
    succeeds absorbed it; the generator is finished afterwards (next raises StopIteration)."""
    probe = Probe()
    pages = _gen_tool(probe)
    name = type(err).__qualname__
    with agentrel.run("r") as run:
        it = pages(3)
        assert next(it) == 0
        with pytest.raises(type(err)) as info:
            it.throw(err)
        assert info.value is err
        with pytest.raises(StopIteration):
            next(it)
    assert probe.finalized == 1
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 1)
    assert calls(cap) == {("pages", "failed"): (1, 1)}
    assert failures(cap) == {("pages", name, "true"): 1}
    assert spans(cap) == [
        ("execute_tool pages", "ERROR", "failed", name),
        ("invoke_agent r", "UNSET", "recovered", None),
    ]


def test_async_generator_tool_abandoned_and_collected(cap: testing.Capture) -> None:
    """An async generator tool dropped mid-iteration and collected while the loop runs: the
    loop's finalizer hook closes it in a task; the call ends ``success``, 1 attempt."""
    probe = Probe()
    pages = _agen_tool(probe)

    async def main() -> agentrel.Run:
        async with agentrel.run("r") as run:
            it = pages(5)
            assert await it.__anext__() == 0
            del it
            gc.collect()
            for _ in range(20):  # bounded: the finalizer's aclose() task runs in a loop turn
                if probe.finalized:
                    break
                await asyncio.sleep(0)
            assert probe.finalized == 1
        return run

    _one_success(cap, asyncio.run(main()))


def test_async_generator_tool_left_open_when_the_loop_ends(cap: testing.Capture) -> None:
    """An async generator tool still suspended when its run closes and asyncio.run finishes:
    asyncio.run's shutdown closes it after the run ended; the run recorded the attempt, the call
    ends ``success`` after the run span (the late-call rule, with nothing failed)."""
    probe = Probe()
    pages = _agen_tool(probe)
    keep: list[Any] = []

    async def main() -> agentrel.Run:
        async with agentrel.run("r") as run:
            keep.append(pages(5))
            assert await keep[0].__anext__() == 0
        return run

    run = asyncio.run(main())
    assert probe.finalized == 1
    assert (run.outcome, run.retry_depth, run.attempts) == ("success", 0, 1)
    assert runs(cap) == {("r", "success"): (1, 0, 1)}
    assert calls(cap) == {("pages", "success"): (1, 1)}
    assert spans(cap) == [
        ("invoke_agent r", "UNSET", "success", None),
        ("execute_tool pages", "UNSET", "success", None),
    ]


def test_async_generator_tool_aclose(cap: testing.Capture) -> None:
    """``await .aclose()`` mid-iteration: ``success``, 1 attempt, the body's finally ran."""
    probe = Probe()
    pages = _agen_tool(probe)

    async def main() -> agentrel.Run:
        async with agentrel.run("r") as run:
            it = pages(5)
            assert [await it.__anext__(), await it.__anext__()] == [0, 1]
            await it.aclose()
            await it.aclose()
        return run

    run = asyncio.run(main())
    assert probe.finalized == 1
    _one_success(cap, run)


@pytest.mark.parametrize(
    "err",
    [TimeoutError("t"), KeyboardInterrupt(), asyncio.CancelledError()],
    ids=lambda e: type(e).__name__,
)
def test_async_generator_tool_athrow_caught_inside(
    cap: testing.Capture, err: BaseException
) -> None:
    """``await .athrow(exc)`` caught inside the async generator tool: no failure, ``success``."""
    probe = Probe()
    pages = _agen_tool(probe, catch=type(err))

    async def main() -> agentrel.Run:
        async with agentrel.run("r") as run:
            it = pages(3)
            assert await it.__anext__() == 0
            assert await it.athrow(err) == 1
            assert [x async for x in it] == [2]
        return run

    run = asyncio.run(main())
    assert probe.caught == [err] and probe.caught[0] is err
    _one_success(cap, run)


@pytest.mark.parametrize(
    "err",
    [TimeoutError("t"), KeyboardInterrupt(), asyncio.CancelledError()],
    ids=lambda e: type(e).__name__,
)
def test_async_generator_tool_athrow_not_caught(cap: testing.Capture, err: BaseException) -> None:
    """``await .athrow(exc)`` not caught: the same object comes back, a failed attempt with its
    error.type, absorbed by the run that goes on; the generator is finished afterwards."""
    probe = Probe()
    pages = _agen_tool(probe)
    name = type(err).__qualname__

    async def main() -> agentrel.Run:
        async with agentrel.run("r") as run:
            it = pages(3)
            assert await it.__anext__() == 0
            with pytest.raises(type(err)) as info:
                await it.athrow(err)
            assert info.value is err
            with pytest.raises(StopAsyncIteration):
                await it.__anext__()
        return run

    run = asyncio.run(main())
    assert probe.finalized == 1
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 1)
    assert calls(cap) == {("pages", "failed"): (1, 1)}
    assert failures(cap) == {("pages", name, "true"): 1}
    assert spans(cap) == [
        ("execute_tool pages", "ERROR", "failed", name),
        ("invoke_agent r", "UNSET", "recovered", None),
    ]


def test_generator_tool_iterated_outside_the_run_it_was_created_in(
    cap: testing.Capture,
) -> None:
    """A generator tool's call opens at the first ``next()``, in the context of whoever
    iterates: created inside a run but first iterated after it closed, the call is recorded
    outside any run (the run has 0 attempts); the scope is current only while the body runs,
    so the consumer never sees the tool's call between items."""
    from agentrel import instrumentation

    probe = Probe()
    pages = _gen_tool(probe)
    seen: list[object] = []
    with agentrel.run("r") as run:
        it = pages(2)
    for _ in it:
        seen.append(instrumentation.current_call())
    assert seen == [None, None]
    assert agentrel.current_run() is None
    assert (run.outcome, run.attempts) == ("success", 0)
    assert runs(cap) == {("r", "success"): (1, 0, 0)}
    assert calls(cap) == {("pages", "success"): (1, 1)}
