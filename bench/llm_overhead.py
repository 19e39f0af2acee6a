"""Overhead of an instrumented LLM client: ``create()`` through agentrel ÷ the bare client.

Both clients are the real SDKs sending to an in-process ``MockTransport`` (no network), so
the figure is the worst case: a real HTTP round trip to a model takes 10^3-10^5 times longer.
Telemetry is recording: first with providers as ``configure()`` builds them (a batch span
processor, a pull metric reader), the call alone; then with ``testing.capture()``'s in-memory
providers (synchronous span export), each call inside a run (which adds the run's token and
amplification metrics an LLM call brings). Measured in one process: bare and instrumented batches
interleaved (the order alternating each round), the ratio of each round, median of the rounds.

    .venv/bin/python bench/llm_overhead.py [--rounds 15] [--calls 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import configure_sdk

import agentrel
from agentrel import testing
from agentrel._runtime import T
from llm_mocks import (
    Script,
    anthropic_client,
    chat_body,
    message_body,
    openai_client,
)

MSGS = [{"role": "user", "content": "hi"}]


def _batch(fn: Callable[[], Any], calls: int, run: bool) -> float:
    start = time.perf_counter()
    if run:
        for _ in range(calls):
            with agentrel.run("bench"):
                fn()
    else:
        for _ in range(calls):
            fn()
    return (time.perf_counter() - start) / calls


def measure(
    name: str,
    bare: Callable[[], Any],
    inst: Callable[[], Any],
    rounds: int,
    calls: int,
    run: bool = True,
) -> None:
    for _ in range(calls // 5):  # warm up both paths
        bare()
        inst()
    ratios, t_bare, t_inst = [], [], []
    for r in range(rounds):
        if r % 2:
            i = _batch(inst, calls, run)
            b = _batch(bare, calls, run)
        else:
            b = _batch(bare, calls, run)
            i = _batch(inst, calls, run)
        ratios.append(i / b)
        t_bare.append(b)
        t_inst.append(i)
    print(
        f"{name:<28} bare {statistics.median(t_bare) * 1e6:8.1f} µs   "
        f"instrumented {statistics.median(t_inst) * 1e6:8.1f} µs   "
        f"ratio (median of {rounds} rounds) {statistics.median(ratios):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()

    oa_bare = openai_client(Script((200, chat_body())))
    oa_inst = agentrel.instrument(openai_client(Script((200, chat_body()))))
    an_bare = anthropic_client(Script((200, message_body())))
    an_inst = agentrel.instrument(anthropic_client(Script((200, message_body()))))

    def oa(client: Any) -> Callable[[], Any]:
        return lambda: client.chat.completions.create(model="gpt-4o", messages=MSGS)

    def an(client: Any) -> Callable[[], Any]:
        return lambda: client.messages.create(model="claude-mock-1", max_tokens=10, messages=MSGS)

    def scoped(fn: Callable[[], Any], model: str) -> Callable[[], Any]:
        # The core's own cost of one LLM call scope (span + semconv + token metrics), for
        # reference: the bare client inside ``@agentrel.llm`` recording the same usage.
        @agentrel.llm(model=model, provider="p")
        def call() -> Any:
            result = fn()
            agentrel.record_tokens(input=100, output=50)
            return result

        return call

    print(f"python {sys.version.split()[0]}, {args.rounds} rounds x {args.calls} calls each")
    print("-- production-like providers (batch span processor, metric reader), the call alone")
    configure_sdk()
    try:
        measure("openai chat.completions", oa(oa_bare), oa(oa_inst), args.rounds, args.calls, False)
        measure("anthropic messages", an(an_bare), an(an_inst), args.rounds, args.calls, False)
    finally:
        T.uninject()
    print("-- in-memory test providers (testing.capture()), each call inside a run")
    with testing.capture():
        measure("openai chat.completions", oa(oa_bare), oa(oa_inst), args.rounds, args.calls)
        measure("anthropic messages", an(an_bare), an(an_inst), args.rounds, args.calls)
        print("-- instrumented client ÷ bare client inside @agentrel.llm (the integration alone)")
        measure(
            "openai chat.completions",
            scoped(oa(oa_bare), "gpt-4o"),
            oa(oa_inst),
            args.rounds,
            args.calls,
        )
        measure(
            "anthropic messages",
            scoped(an(an_bare), "claude-mock-1"),
            an(an_inst),
            args.rounds,
            args.calls,
        )
    print("-- unconfigured (no provider), outside any run: the fast path")
    measure("openai chat.completions", oa(oa_bare), oa(oa_inst), args.rounds, args.calls, run=False)
    print("target: ratio <= 1.15")


if __name__ == "__main__":
    main()
