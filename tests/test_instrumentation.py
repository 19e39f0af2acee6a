"""agentrel.instrumentation: the public API integrations build on, held to exact counts."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest

import agentrel
from agentrel import instrumentation as ai
from agentrel import testing

SPEC = ai.tool_spec("lookup", system="kb", library="myframework", register=False)


def test_call_with_retries_in_a_run(cap: testing.Capture) -> None:
    """Two failed attempts, two waits, a success: recovered, depth 2, 3 attempts."""
    with agentrel.run("agent") as run:
        with ai.call(SPEC) as call:
            assert call.recording and call.attempt == 1
            call.attempt_failed(TimeoutError("t"))
            call.retry_wait(0.5)
            call.next_attempt()
            call.attempt_failed(error="result_flagged")
            call.retry_wait(0.25)
            call.next_attempt()
            call.add_tokens(input=10, output=5, model="m")
        assert call.outcome == "recovered"
    assert (run.outcome, run.retry_depth, run.attempts, run.tokens) == ("recovered", 2, 3, 15)
    assert cap.histogram("agentrel.tool.attempts", {"agentrel.outcome": "recovered"}).sum == 3
    assert cap.counter("agentrel.tool.failures", {"error.type": "TimeoutError"}) == 1
    assert cap.counter("agentrel.tool.failures", {"error.type": "result_flagged"}) == 1
    assert cap.histogram("agentrel.retry.delay", {"gen_ai.tool.name": "lookup"}).sum == 0.75
    (span,) = cap.spans("execute_tool lookup")
    assert span.attributes["agentrel.integration"] == "myframework"
    assert span.attributes["agentrel.tool.system"] == "kb"


def test_exception_leaving_the_block_fails_the_call(cap: testing.Capture) -> None:
    """The host's exception propagates as the same object; the call is failed."""
    err = ValueError("boom")
    with pytest.raises(ValueError) as info, ai.call(SPEC) as call:
        raise err
    assert info.value is err
    assert call.outcome == "failed"
    assert cap.counter("agentrel.tool.failures", {"agentrel.absorbed": "false"}) == 1


def test_inert_when_nothing_records() -> None:
    """No SDK and no run (a fresh interpreter): the handle is inert, every method a no-op."""
    code = textwrap.dedent(
        """
        import agentrel
        from agentrel import instrumentation as ai
        assert not ai.is_recording()
        with ai.call(ai.tool_spec("t")) as call:
            assert not call.recording
            call.attempt_failed(TimeoutError())
            call.retry_wait(1.0)
            call.next_attempt()
            call.add_tokens(input=1)
            call.waste()
        assert call.outcome is None
        assert agentrel.telemetry_errors() == {}
        print("inert")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ""},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "inert"


def test_adoptable_call_counts_a_decorated_tool_once(cap: testing.Capture) -> None:
    """A framework wraps a tool the user also decorated: one call, not two."""

    @agentrel.tool("search")
    def search(q: str) -> str:
        raise KeyError(q)

    with agentrel.run("agent") as run:
        for _ in range(2):
            try:
                with ai.call(ai.tool_spec("search", register=False), adoptable=True):
                    search("x")
            except KeyError:
                pass
    assert (run.retry_depth, run.attempts, run.outcome) == (2, 2, "recovered")
    assert cap.histogram("agentrel.tool.attempts").count == 2
    assert len(cap.spans("execute_tool search")) == 2


def test_waste_moves_a_finished_calls_tokens(cap: testing.Capture) -> None:
    """A model response whose tool calls failed: its 100 tokens become wasted, no failure."""
    llm = ai.llm_spec("test", "m1")
    with agentrel.run("agent") as run:
        with ai.call(llm) as first:
            first.add_tokens(input=60, output=40)
        first.waste()
        with ai.call(llm) as second:
            second.add_tokens(input=60, output=40)
    assert (run.useful_tokens, run.wasted_tokens, run.retry_depth) == (100, 100, 0)
    assert run.token_amplification == 2.0
    assert cap.counter("agentrel.tokens", {"agentrel.token.disposition": "wasted"}) == 100


def test_run_scope_joins_an_enclosing_run(cap: testing.Capture) -> None:
    """An integration's run inside the application's own run is the same run."""
    with agentrel.run("app") as outer:
        with ai.run_scope("framework-agent") as handle:
            assert handle.run is outer and not handle.opened
            with ai.call(SPEC):
                pass
    assert outer.attempts == 1
    assert cap.histogram("agentrel.run.retry_depth").count == 1


def test_run_scope_inside_a_tool_is_its_own_run(cap: testing.Capture) -> None:
    """A sub-agent (a run inside a tool call) opens its own run."""
    with agentrel.run("app"), ai.call(SPEC), ai.run_scope("sub") as handle:
        assert handle.opened and handle.run is not None and handle.run.name == "sub"
    assert cap.histogram("agentrel.run.retry_depth").count == 2


def test_async_scopes(cap: testing.Capture) -> None:
    """async with works for both scopes."""

    async def main() -> str | None:
        async with ai.run_scope("a") as handle:
            async with ai.call(SPEC) as call:
                call.attempt_failed(OSError())
                call.next_attempt()
        return handle.run.outcome if handle.run else None

    assert asyncio.run(main()) == "recovered"


def test_record_retry_wait_outside_a_call(cap: testing.Capture) -> None:
    """A wait with no call around it still counts, and adds to the run's recovery time."""
    with agentrel.run("a") as run:
        ai.record_retry_wait(1.5, tool="t")
    assert run.recovery_time == 1.5
    assert cap.histogram("agentrel.retry.delay", {"gen_ai.tool.name": "t"}).sum == 1.5


def test_settle_queue_drains_and_guards() -> None:
    """Items pushed are handed to drain's function; a raising one is counted, not raised."""
    q = ai.SettleQueue()
    seen: list[int] = []
    q.push(1)
    q.push(2)

    def settle(item: int) -> None:
        if item == 2:
            raise RuntimeError("broken")
        seen.append(item)

    q.drain(settle)
    assert seen == [1] and not q
    assert agentrel.telemetry_errors() == {"settle": 1}


def test_bad_arguments_are_clear_errors() -> None:
    """Misuse fails at set-up, not at the first call."""
    with pytest.raises(TypeError, match="CallSpec"):
        ai.call("search")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tool name"):
        ai.tool_spec("")
    with pytest.raises(TypeError, match="factory"):
        ai.register_llm_adapter("x", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="agent name"):
        ai.run_scope("")


def test_on_run_finish_hook_runs_before_classification(cap: testing.Capture) -> None:
    """A hook sees the run before its outcome is set, and can be removed."""
    seen: list[str | None] = []
    remove = ai.on_run_finish(lambda r: seen.append(r.outcome))
    with agentrel.run("a"):
        pass
    remove()
    with agentrel.run("b"):
        pass
    assert seen == [None]
