"""The first call of each tool / LLM call in a process (``agentrel.cold_start``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

import agentrel
from agentrel import _coldstart, testing
from agentrel._runtime import T
from conftest import FakeClock
from llm_mocks import Script, chat_body, openai_client

COLD = "agentrel.cold_start"
FIRST = "agentrel.tool.first_call.duration"


def _marked(cap: testing.Capture, name: str) -> list[bool]:
    return [bool(s.attributes.get(COLD)) for s in cap.spans(name)]


def test_first_call_of_each_tool_only(cap: testing.Capture, clock: FakeClock) -> None:
    """The first call's span is marked and its duration recorded; later calls get neither,
    whether they succeed or fail, inside a run or not."""

    @agentrel.tool
    def search(seconds: float, fail: bool = False) -> str:
        clock.advance(seconds)
        if fail:
            raise TimeoutError
        return "r"

    @agentrel.llm(model="m", provider="p")
    def ask() -> str:
        clock.advance(0.5)
        return "a"

    with agentrel.run("a"):
        search(2.0)
        with pytest.raises(TimeoutError):
            search(0.25, fail=True)
        ask()
    search(0.125)
    ask()
    assert _marked(cap, "execute_tool search") == [True, False, False]
    assert _marked(cap, "chat m") == [True, False]
    assert not any(COLD in s.attributes for s in cap.spans("invoke_agent a"))
    cap.collect()
    s = cap.histogram(FIRST, {"gen_ai.tool.name": "search"})
    assert (s.count, s.sum) == (1, 2.0)
    llm = cap.histogram(FIRST, {"gen_ai.tool.name": "chat m"})
    assert (llm.count, llm.sum) == (1, 0.5)
    assert len(cap.label_sets(FIRST)) == 2
    steady = cap.histogram("gen_ai.execute_tool.duration", {"gen_ai.tool.name": "search"})
    assert steady.count == 3  # the steady-state histogram still has every call


def test_a_failed_first_call_is_still_the_first(cap: testing.Capture, clock: FakeClock) -> None:
    @agentrel.tool
    def flaky() -> None:
        clock.advance(1.0)
        raise OSError

    for _ in range(3):
        with pytest.raises(OSError):
            flaky()
    assert _marked(cap, "execute_tool flaky") == [True, False, False]
    cap.collect()
    h = cap.histogram(FIRST)
    assert (h.count, h.sum) == (1, 1.0)


@pytest.mark.parametrize("threads", [8, 32])
def test_exactly_one_first_call_across_racing_threads(cap: testing.Capture, threads: int) -> None:
    """Many threads released at once on the same tools: one span per tool is marked and one
    duration recorded per tool, however the race goes."""
    barrier = threading.Barrier(threads)

    @agentrel.tool
    def alpha() -> int:
        return 1

    @agentrel.tool
    def beta() -> int:
        return 2

    def worker() -> None:
        barrier.wait(timeout=30)
        for _ in range(25):
            alpha()
            beta()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
        assert not t.is_alive()
    for name in ("alpha", "beta"):
        marks = _marked(cap, f"execute_tool {name}")
        assert len(marks) == threads * 25
        assert marks.count(True) == 1, name
    cap.collect()
    for name in ("alpha", "beta"):
        assert cap.histogram(FIRST, {"gen_ai.tool.name": name}).count == 1
    assert agentrel.telemetry_errors() == {}


def test_instrumented_client_first_call(cap: testing.Capture) -> None:
    client = agentrel.instrument(openai_client(Script((200, chat_body()))))
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "q"}])
    assert _marked(cap, "chat gpt-4o") == [True, False, False]
    cap.collect()
    assert cap.histogram(FIRST, {"gen_ai.tool.name": "chat gpt-4o"}).count == 1


def test_nothing_is_claimed_while_not_recording() -> None:
    """A run with no SDK at all records nothing: the tool's first *recorded* call is marked.
    In a fresh interpreter (global providers, once set by another test, stay set)."""
    script = textwrap.dedent(
        """
        import agentrel
        from agentrel import _coldstart, testing

        @agentrel.tool
        def t():
            return 1

        with agentrel.run("quiet"):
            t()
        assert "t" not in _coldstart.SEEN, _coldstart.SEEN
        with testing.capture() as cap:
            t()
            t()
            marks = [bool(s.attributes.get("agentrel.cold_start")) for s in cap.spans()]
        assert marks == [True, False], marks
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_restart_makes_the_next_call_a_first_call(cap: testing.Capture) -> None:
    @agentrel.tool
    def t() -> int:
        return 1

    t()
    t()
    _coldstart.forget()  # what a new process (agentrel demo's simulated restart) starts with
    t()
    assert _marked(cap, "execute_tool t") == [True, False, True]
    cap.collect()
    assert cap.histogram(FIRST).count == 2


def test_a_broken_histogram_never_breaks_the_host(cap: testing.Capture) -> None:
    class Broken:
        def record(self, *a: Any, **k: Any) -> None:
            raise RuntimeError("meter down")

    T.tool_first_call_duration = Broken()  # type: ignore[assignment]

    @agentrel.tool
    def t() -> int:
        return 7

    assert t() == 7
    assert t() == 7
    assert agentrel.telemetry_errors() == {"call.metrics": 1}
    [first, second] = cap.spans("execute_tool t")
    assert first.attributes["agentrel.outcome"] == "success"
    assert COLD not in second.attributes
