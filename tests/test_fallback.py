"""agentrel.fallback / @agentrel.fallback_to: tiers, outcomes, moves, spans, exact counts."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

import agentrel
from agentrel import testing

FALLBACKS = "agentrel.fallbacks"
TOOL_ATTEMPTS = "agentrel.tool.attempts"
FAILURES = "agentrel.tool.failures"
DEPTH = "agentrel.run.retry_depth"


def primary(q: str) -> str:
    raise TimeoutError("primary down")


def secondary(q: str) -> str:
    return f"secondary:{q}"


def test_later_tier_serving_is_recovered(cap: testing.Capture) -> None:
    """Tier 1 raises, tier 2 serves: recovered chain and run, one fallback recorded."""
    answer = agentrel.fallback("answer", primary, secondary)
    with agentrel.run("support") as run:
        assert answer("q") == "secondary:q"
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 1, 2)
    assert cap.points(FALLBACKS)[0][0] == {
        "agentrel.fallback.chain": "answer",
        "agentrel.fallback.from_tier": "primary",
        "agentrel.fallback.to_tier": "secondary",
        "error.type": "TimeoutError",
    }
    assert cap.counter(FALLBACKS) == 1
    h = cap.histogram(
        TOOL_ATTEMPTS, {"gen_ai.tool.name": "answer", "agentrel.outcome": "recovered"}
    )
    assert (h.count, h.sum) == (1, 2)
    assert cap.counter(FAILURES, {"error.type": "TimeoutError", "agentrel.absorbed": "true"}) == 1
    chain_span = cap.spans("fallback answer")[0]
    assert chain_span.attributes["agentrel.fallback.served_tier"] == "secondary"
    assert chain_span.attributes["agentrel.outcome"] == "recovered"
    tiers = cap.spans()
    names = [s.name for s in tiers]
    assert names == [
        "fallback_tier primary",
        "fallback_tier secondary",
        "fallback answer",
        "invoke_agent support",
    ]
    assert tiers[0].attributes["error.type"] == "TimeoutError"
    assert tiers[0].parent.span_id == chain_span.context.span_id
    assert "error.type" not in tiers[1].attributes


def test_first_tier_serving_is_success(cap: testing.Capture) -> None:
    """No failure: success, no fallback, served by tier 1."""
    answer = agentrel.fallback("answer", secondary, primary)
    with agentrel.run("support") as run:
        assert answer("q") == "secondary:q"
    assert (run.outcome, run.retry_depth, run.attempts) == ("success", 0, 1)
    assert cap.counter(FALLBACKS) == 0
    assert (
        cap.spans("fallback answer")[0].attributes["agentrel.fallback.served_tier"] == "secondary"
    )


def test_all_tiers_failing_raises_the_last_error_with_earlier_ones_chained(
    cap: testing.Capture,
) -> None:
    """Exhausted: the last tier's very exception propagates, earlier ones in __context__."""
    errors = [TimeoutError("t1"), ConnectionError("t2"), KeyError("t3")]

    def make(i: int) -> Any:
        def tier(q: str) -> str:
            raise errors[i]

        tier.__name__ = f"tier{i + 1}"
        return tier

    chain = agentrel.fallback("answer", make(0), make(1), make(2))
    with pytest.raises(KeyError) as info, agentrel.run("support") as run:
        chain("q")
    assert info.value is errors[2]
    assert info.value.__context__ is errors[1]
    assert errors[1].__context__ is errors[0]
    assert (run.outcome, run.retry_depth, run.attempts) == ("exhausted", 3, 3)
    assert cap.counter(FALLBACKS) == 2
    assert (
        cap.counter(
            FALLBACKS, {"agentrel.fallback.from_tier": "tier2", "error.type": "ConnectionError"}
        )
        == 1
    )
    assert cap.counter(FAILURES, {"agentrel.absorbed": "false"}) == 3
    h = cap.histogram(TOOL_ATTEMPTS, {"agentrel.outcome": "exhausted"})
    assert (h.count, h.sum) == (1, 3)
    assert "agentrel.fallback.served_tier" not in cap.spans("fallback answer")[0].attributes


def test_failing_tool_tier_counts_once(cap: testing.Capture) -> None:
    """Tier 1 a failing @agentrel.tool, tier 2 serves: retry depth exactly 1, recovered."""

    @agentrel.tool("search_primary", system="kb")
    def search_primary(q: str) -> str:
        raise TimeoutError("down")

    chain = agentrel.fallback("search", search_primary, secondary)
    with agentrel.run("support") as run:
        assert chain("q") == "secondary:q"
    assert (run.outcome, run.retry_depth) == ("recovered", 1)
    depth = cap.histogram(DEPTH, {"agentrel.outcome": "recovered"})
    assert (depth.count, depth.sum) == (1, 1)
    assert cap.counter(FAILURES) == 1
    assert cap.counter(FAILURES, {"gen_ai.tool.name": "search_primary"}) == 1
    assert cap.histogram(TOOL_ATTEMPTS, {"gen_ai.tool.name": "search_primary"}).count == 1
    assert (
        cap.histogram(
            TOOL_ATTEMPTS, {"gen_ai.tool.name": "search", "agentrel.outcome": "recovered"}
        ).count
        == 1
    )
    assert cap.counter(FALLBACKS, {"agentrel.fallback.from_tier": "search_primary"}) == 1
    # Two executions: the tool tier's own attempt and the plain tier; the chain's tier
    # attempt around the tool tier is not counted again.
    assert run.attempts == 2


def test_result_predicate_moves_on(cap: testing.Capture) -> None:
    """failure_when flags an empty answer: moves on with error.type result_flagged."""
    calls: list[str] = []

    def model_a(q: str) -> str:
        calls.append("a")
        agentrel.record_tokens(input=10, output=0, model="a")
        return ""

    def model_b(q: str) -> str:
        calls.append("b")
        agentrel.record_tokens(input=10, output=5, model="b")
        return "answer"

    chain = agentrel.fallback("answer", model_a, model_b, failure_when=lambda r: not r)
    with agentrel.run("support") as run:
        assert chain("q") == "answer"
    assert calls == ["a", "b"]
    assert (run.outcome, run.retry_depth) == ("recovered", 1)
    assert cap.counter(FALLBACKS, {"error.type": "result_flagged"}) == 1
    assert cap.counter(FAILURES, {"error.type": "result_flagged", "agentrel.absorbed": "true"}) == 1
    # model_a's tokens were thrown away with its empty answer.
    assert (run.useful_tokens, run.wasted_tokens) == (15, 10)
    assert run.token_amplification == pytest.approx(25 / 15)


def test_last_tier_flagged_returns_its_value_exhausted(cap: testing.Capture) -> None:
    """Every tier's answer flagged: the last value is returned, the chain is exhausted."""
    chain = agentrel.fallback(
        "answer", ("a", lambda q: ""), ("b", lambda q: ""), failure_when=lambda r: not r
    )
    with agentrel.run("support") as run:
        assert chain("q") == ""
    assert run.retry_depth == 2
    assert cap.histogram(TOOL_ATTEMPTS, {"agentrel.outcome": "exhausted"}).count == 1
    assert cap.counter(FALLBACKS) == 1


def test_on_limits_which_errors_move_on(cap: testing.Capture) -> None:
    """on=TimeoutError: a ValueError propagates at once, the next tier is not tried."""
    called: list[str] = []

    def bad(q: str) -> str:
        raise ValueError("bad input")

    def other(q: str) -> str:
        called.append("other")
        return "x"

    chain = agentrel.fallback("answer", bad, other, on=TimeoutError)
    with pytest.raises(ValueError), agentrel.run("support") as run:
        chain("q")
    assert called == []
    assert (run.outcome, run.retry_depth) == ("failed", 1)
    assert cap.counter(FALLBACKS) == 0
    assert cap.histogram(TOOL_ATTEMPTS, {"agentrel.outcome": "failed"}).count == 1


def test_named_tiers_and_callables_validated() -> None:
    """(name, callable) tiers are named; bad arguments fail at definition."""
    with pytest.raises(TypeError):
        agentrel.fallback("x")
    with pytest.raises(TypeError):
        agentrel.fallback("x", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        agentrel.fallback("x", secondary, on=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        agentrel.fallback("", secondary)
    with pytest.raises(TypeError):
        agentrel.fallback("x", ("", secondary))


def test_async_chain_with_mixed_tiers(cap: testing.Capture) -> None:
    """An async tier makes the chain async; sync tiers still run; exact counts."""

    async def primary_model(q: str) -> str:
        raise TimeoutError()

    async def secondary_model(q: str) -> str:
        raise ConnectionError()

    chain = agentrel.fallback(
        "answer", primary_model, secondary_model, ("static", lambda q: "sorry")
    )
    assert inspect.iscoroutinefunction(chain)

    async def main() -> Any:
        async with agentrel.run("support") as run:
            value = await chain("q")
        return value, run

    value, run = asyncio.run(main())
    assert value == "sorry"
    assert (run.outcome, run.retry_depth, run.attempts) == ("recovered", 2, 3)
    assert (
        cap.counter(
            FALLBACKS, {"agentrel.fallback.to_tier": "static", "error.type": "ConnectionError"}
        )
        == 1
    )
    assert cap.spans("fallback answer")[0].attributes["agentrel.fallback.served_tier"] == "static"


def test_fallback_to_decorator_keeps_the_function(cap: testing.Capture) -> None:
    """@fallback_to: signature, docstring and async-ness kept; the function is tier 1."""

    @agentrel.fallback_to(secondary)
    def answer(q: str) -> str:
        """Answer a question."""
        raise TimeoutError()

    assert answer.__doc__ == "Answer a question."
    assert str(inspect.signature(answer)) == "(q: 'str') -> 'str'"  # postponed annotations
    with agentrel.run("support") as run:
        assert answer("q") == "secondary:q"
    assert run.outcome == "recovered"
    assert (
        cap.counter(
            FALLBACKS,
            {"agentrel.fallback.chain": "answer", "agentrel.fallback.from_tier": "answer"},
        )
        == 1
    )

    async def backup(q: str) -> str:
        return "b"

    @agentrel.fallback_to(backup, name="chat")
    async def chat(q: str) -> str:
        raise TimeoutError()

    assert inspect.iscoroutinefunction(chat)
    assert asyncio.run(chat("q")) == "b"
    with pytest.raises(TypeError):
        agentrel.fallback_to(backup)(secondary)


def test_quiet_without_telemetry_or_run() -> None:
    """Unconfigured, outside a run: the chain still falls back, nothing else happens."""
    assert agentrel.fallback("answer", primary, secondary)("q") == "secondary:q"
    assert agentrel.telemetry_errors() == {}


def test_a_telemetry_failure_never_breaks_the_chain(
    cap: testing.Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken fallbacks counter: the chain still serves tier 2, the error is counted."""

    class Broken:
        def add(self, *a: Any, **k: Any) -> None:
            raise RuntimeError("exporter bug")

    from agentrel._runtime import T

    monkeypatch.setattr(T, "fallbacks", Broken())
    with agentrel.run("support") as run:
        assert agentrel.fallback("answer", primary, secondary)("q") == "secondary:q"
    assert run.outcome == "recovered"
    assert agentrel.telemetry_errors() == {"fallback.move": 1}
