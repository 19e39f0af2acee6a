"""Overhead of an instrumented LLM client: ``create()`` through agentrel ÷ the bare client.

Both clients are the real SDKs sending to an in-process ``MockTransport`` (no network), so
the figure is the worst case: a real HTTP round trip to a model takes 10^3-10^5 times longer.
Telemetry is recording: first with providers as ``configure()`` builds them (a batch span
processor, a pull metric reader), the call alone; then with ``testing.capture()``'s in-memory
providers (synchronous span export), each call inside a run (which adds the run's token and
amplification metrics an LLM call brings). Measured in one process: bare and instrumented batches
interleaved (the order alternating each round), the ratio of each round, median of the rounds.

For reference, the first section also times the least any GenAI-semconv instrumentation must do
per call (written by hand against the OpenTelemetry API): a ``chat {model}`` CLIENT span with
its request and response attributes, one
``gen_ai.client.operation.duration`` and two ``gen_ai.client.token.usage`` records. That floor
is the SDK's own cost; agentrel's figure is read against it.

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

from opentelemetry import trace
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
    labels: tuple[str, str] = ("bare", "instrumented"),
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
        f"{name:<28} {labels[0]} {statistics.median(t_bare) * 1e6:8.1f} µs   "
        f"{labels[1]} {statistics.median(t_inst) * 1e6:8.1f} µs   "
        f"ratio (median of {rounds} rounds) {statistics.median(ratios):.3f}"
    )


def handwritten(
    providers: tuple[Any, Any],
    bare: Callable[[], Any],
    provider: str,
    model: str,
    usage: Callable[[Any], tuple[int, int]],
) -> Callable[[], Any]:
    """The semconv floor: span + operation duration + token usage (input, output), by hand."""
    tracer = providers[0].get_tracer("handwritten")
    meter = providers[1].get_meter("handwritten")
    duration = meter.create_histogram("hw.gen_ai.client.operation.duration", unit="s")
    tokens = meter.create_histogram("hw.gen_ai.client.token.usage", unit="{token}")
    request = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
    }

    def call() -> Any:
        with tracer.start_as_current_span(
            f"chat {model}", kind=trace.SpanKind.CLIENT, attributes=request
        ) as span:
            t0 = time.perf_counter()
            result = bare()
            inp, out = usage(result)
            attrs = {**request, "gen_ai.response.model": result.model}
            span.set_attributes(
                {
                    "gen_ai.response.model": result.model,
                    "gen_ai.usage.input_tokens": inp,
                    "gen_ai.usage.output_tokens": out,
                }
            )
            duration.record(time.perf_counter() - t0, attrs)
            tokens.record(inp, {**attrs, "gen_ai.token.type": "input"})
            tokens.record(out, {**attrs, "gen_ai.token.type": "output"})
            return result

    return call


def bench_pricing(oa: Callable[[], Any], an: Callable[[], Any], rounds: int, calls: int) -> None:
    """The same instrumented call with pricing on and off (a fixed price table, so the price
    lookup is the cached dict hit it is in steady state), in a run and outside any run."""
    from agentrel import _cost

    _cost.set_prices(*_cost.validate({"gpt-4o": (2.5, 10, 1.25), "claude-mock-1": (1, 5, 0.1)}))

    def toggled(fn: Callable[[], Any], on: bool) -> Callable[[], Any]:
        def call() -> Any:
            _cost.PRICING.enabled = on
            return fn()

        return call

    labels = ("off", "on")
    for name, fn in (("openai chat.completions", oa), ("anthropic messages", an)):
        measure(name + " (run)", toggled(fn, False), toggled(fn, True), rounds, calls, True, labels)
        measure(name, toggled(fn, False), toggled(fn, True), rounds, calls, False, labels)
    # The pricing work itself, for one LLM call's tokens (the ratios above are within the
    # noise of a shared machine): Decimal cost, attributes, and the counter add.
    tokens = {("gpt-4o", "input"): 100, ("gpt-4o", "output"): 50}
    n = 20_000
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            spent, _unpriced = _cost.amounts("bench", "none", tokens, None)
            for dollars, attrs in spent:
                T.cost.add(dollars, attrs)
        times.append((time.perf_counter() - start) / n)
    print(
        f"{'pricing one call (amounts + counter add)':<28} "
        f"{statistics.median(times) * 1e6:8.2f} µs per LLM call (median of {rounds} rounds)"
    )
    _cost.reset()


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
    providers = configure_sdk()
    oa_hand = handwritten(
        providers,
        oa(oa_bare),
        "openai",
        "gpt-4o",
        lambda r: (r.usage.prompt_tokens, r.usage.completion_tokens),
    )
    an_hand = handwritten(
        providers,
        an(an_bare),
        "anthropic",
        "claude-mock-1",
        lambda r: (r.usage.input_tokens, r.usage.output_tokens),
    )
    try:
        measure("openai chat.completions", oa(oa_bare), oa(oa_inst), args.rounds, args.calls, False)
        measure("anthropic messages", an(an_bare), an(an_inst), args.rounds, args.calls, False)
        print("-- the semconv floor: hand-written span + duration + token usage ÷ bare client")
        floor = ("bare", "hand-written")
        measure(
            "openai chat.completions", oa(oa_bare), oa_hand, args.rounds, args.calls, False, floor
        )
        measure("anthropic messages", an(an_bare), an_hand, args.rounds, args.calls, False, floor)
        print("-- agentrel ÷ that hand-written floor")
        vs = ("hand-written", "agentrel")
        measure("openai chat.completions", oa_hand, oa(oa_inst), args.rounds, args.calls, False, vs)
        measure("anthropic messages", an_hand, an(an_inst), args.rounds, args.calls, False, vs)
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
        print("-- pricing: agentrel.cost on ÷ off, same instrumented client")
        bench_pricing(oa(oa_inst), an(an_inst), args.rounds, args.calls)
    print("-- unconfigured (no provider), outside any run: the fast path")
    measure("openai chat.completions", oa(oa_bare), oa(oa_inst), args.rounds, args.calls, run=False)
    print("target: instrumented ÷ bare <= 1.15 (the first section)")


if __name__ == "__main__":
    main()
