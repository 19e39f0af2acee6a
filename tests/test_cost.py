"""What self-healing costs in dollars (``agentrel.cost``, ``Run.cost_usd``).

Every figure is computed by hand from a fixed price table with Decimal arithmetic; agentrel
rounds once, from the exact Decimal sum to the nearest float, so the assertions are ``==``.
"""

from __future__ import annotations

import sys
import threading
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import agentrel
from agentrel import _cost, testing
from llm_mocks import Script, anthropic_client, chat_body, error, message_body, openai_client

MSGS = [{"role": "user", "content": "q"}]
# $/Mtok: input, output, cached input
TABLE = {"big": (3, 15, "0.3"), "small": (0.25, 1.25, 0.025), "gpt-4o": (2.5, 10, 1.25)}
M = Decimal(1_000_000)


def usd(tokens: int, per_mtok: str) -> Decimal:
    return tokens * Decimal(per_mtok) / M


def _prices(table: Any = TABLE) -> None:
    _cost.set_prices(*_cost.validate(table))


@agentrel.llm(model="big", provider="sim")
def big(fail: bool = False) -> str:
    agentrel.record_tokens(input=1000, output=200)
    if fail:
        raise TimeoutError
    return "a"


@agentrel.llm(model="small", provider="sim")
def small() -> str:
    agentrel.record_tokens(input=4000, output=100)
    return "b"


def test_scripted_run_dollars_are_exact(cap: testing.Capture) -> None:
    """One failed big call (wasted), a small call rejected by the validator (wasted), then a
    big and a small call that serve the answer (useful)."""
    _prices()
    with agentrel.run("support", cohort=None) as run:
        with pytest.raises(TimeoutError):
            big(fail=True)
        small()
        agentrel.reject("invalid_json")
        big()
        small()
    big_call = usd(1000, "3") + usd(200, "15")  # 0.006
    small_call = usd(4000, "0.25") + usd(100, "1.25")  # 0.001125
    wasted = big_call + small_call
    total = 2 * big_call + 2 * small_call
    assert run.outcome == "recovered"
    assert run.cost_usd == float(total) == 0.01425
    assert run.wasted_cost_usd == float(wasted) == 0.007125
    assert run.tokens == 2 * 1200 + 2 * 4100  # tokens are unchanged by pricing
    cap.collect()
    base = {"gen_ai.agent.name": "support", "agentrel.cohort": "none"}
    for model, d, want in (
        ("big", "useful", big_call),
        ("big", "wasted", big_call),
        ("small", "useful", small_call),
        ("small", "wasted", small_call),
    ):
        attrs = {**base, "gen_ai.request.model": model, "agentrel.token.disposition": d}
        assert cap.counter("agentrel.cost", attrs) == float(want), (model, d)
    assert len(cap.label_sets("agentrel.cost")) == 4
    [span] = cap.spans("invoke_agent support")
    assert span.attributes["agentrel.run.cost_usd"] == float(total)
    assert span.attributes["agentrel.run.wasted_cost_usd"] == float(wasted)
    assert "agentrel.cost.unpriced_tokens" not in cap.metric_names()


def test_failed_run_wastes_every_dollar(cap: testing.Capture) -> None:
    _prices()
    with pytest.raises(ValueError), agentrel.run("support", cohort="x") as run:
        big()
        small()
        raise ValueError
    total = usd(1000, "3") + usd(200, "15") + usd(4000, "0.25") + usd(100, "1.25")
    assert run.cost_usd == run.wasted_cost_usd == float(total)
    cap.collect()
    assert cap.counter("agentrel.cost", {"agentrel.token.disposition": "useful"}) == 0
    assert cap.counter("agentrel.cost", {"agentrel.token.disposition": "wasted"}) == float(
        usd(1000, "3") + usd(200, "15")
    ) + float(usd(4000, "0.25") + usd(100, "1.25"))  # one record per model


def test_live_figures_during_the_run(cap: testing.Capture) -> None:
    _prices()
    with agentrel.run("support") as run:
        assert run.cost_usd == 0.0 and run.wasted_cost_usd == 0.0
        big()
        assert run.cost_usd == 0.006 and run.wasted_cost_usd == 0.0


def test_unpriced_model_is_counted_never_guessed(cap: testing.Capture) -> None:
    _prices()

    @agentrel.llm(model="in-house-ft", provider="self")
    def private() -> str:
        agentrel.record_tokens(input=700, output=30)
        return "c"

    @agentrel.tool
    def no_model() -> None:
        agentrel.record_tokens(input=5, output=6)

    with agentrel.run("support") as run:
        private()
        big()
        no_model()
    assert run.cost_usd == 0.006  # the priced model only
    cap.collect()
    assert (
        cap.counter("agentrel.cost.unpriced_tokens", {"gen_ai.request.model": "in-house-ft"}) == 730
    )
    labels = cap.label_sets("agentrel.cost.unpriced_tokens")
    assert sorted(labels, key=len) == [{}, {"gen_ai.request.model": "in-house-ft"}]
    assert cap.counter("agentrel.cost.unpriced_tokens") == 730 + 11
    assert {a["gen_ai.request.model"] for a in cap.label_sets("agentrel.cost")} == {"big"}


def test_openai_cached_and_reasoning_tokens_priced_as_billed(cap: testing.Capture) -> None:
    """OpenAI: cached_tokens are part of prompt_tokens (billed at the cached price), reasoning
    tokens part of completion_tokens (billed as output). A 429 first: its retry is free."""
    _prices()
    body = chat_body(
        prompt=1000,
        completion=300,
        prompt_tokens_details={"cached_tokens": 600},
        completion_tokens_details={"reasoning_tokens": 120},
    )
    client = agentrel.instrument(openai_client(Script(error(429), (200, body))))
    with agentrel.run("chat") as run:
        client.chat.completions.create(model="gpt-4o", messages=MSGS)
    want = usd(400, "2.5") + usd(600, "1.25") + usd(300, "10")
    assert run.cost_usd == float(want) == 0.00475
    assert run.wasted_cost_usd == 0.0
    cap.collect()
    assert cap.counter("agentrel.cost") == float(want)
    assert cap.counter("agentrel.tokens") == 1300  # cached / reasoning are not added again
    assert run.tokens == 1300
    assert {a["gen_ai.token.type"] for a in cap.label_sets("gen_ai.client.token.usage")} == {
        "input",
        "output",
    }
    assert {a["gen_ai.token.type"] for a in cap.label_sets("agentrel.tokens")} == {
        "input",
        "output",
    }


def test_anthropic_cache_reads_and_writes_from_genai_prices(cap: testing.Capture) -> None:
    """Anthropic: input_tokens excludes cache reads and writes; genai-prices bills reads at
    the cache-read price and writes at the cache-write price. The expected figure is the one
    genai-prices itself computes for that usage."""
    genai_prices = pytest.importorskip("genai_prices")
    model = "claude-3-5-haiku-latest"
    body = message_body(model, inp=200, out=80, cache_read=1000, cache_creation=300)
    client = agentrel.instrument(anthropic_client(Script((200, body))))
    with agentrel.run("chat") as run:
        client.messages.create(model=model, max_tokens=10, messages=MSGS)
    usage = genai_prices.Usage(
        input_tokens=1500, output_tokens=80, cache_read_tokens=1000, cache_write_tokens=300
    )
    want = genai_prices.calc_price(usage, model).total_price
    assert isinstance(want, Decimal) and want > 0
    assert run.cost_usd == float(want)
    cap.collect()
    assert cap.counter("agentrel.cost", {"gen_ai.request.model": model}) == float(want)
    assert cap.counter("agentrel.tokens") == 1580


def test_mapping_overrides_genai_prices(cap: testing.Capture) -> None:
    pytest.importorskip("genai_prices")

    @agentrel.llm(model="gpt-4o-mini", provider="openai")
    def mini() -> None:
        agentrel.record_tokens(input=1_000_000, output=0)

    with agentrel.run("a") as run:
        big()  # not in genai-prices: our table has it
        mini()
    import genai_prices

    listed = genai_prices.calc_price(genai_prices.Usage(input_tokens=1_000_000), "gpt-4o-mini")
    assert run.cost_usd == 0.0 + float(listed.total_price)  # default: genai-prices only
    assert cap.counter("agentrel.cost.unpriced_tokens") == 1200  # "big" is not listed
    testing.reset()
    with testing.capture():
        _prices({"gpt-4o-mini": (0.1, 0.4, 0.05)})
        with agentrel.run("a") as run2:
            mini()
        assert run2.cost_usd == 0.1  # negotiated price wins


def test_without_the_extra_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """genai-prices missing (the import fails): no cost metric, no unpriced counter, no span
    attributes, ``cost_usd`` is None; tokens exactly as before."""
    monkeypatch.setitem(sys.modules, "genai_prices", None)
    _cost.reset()
    assert _cost.PRICING.enabled is False
    with testing.capture() as cap:
        with agentrel.run("support") as run:
            big()
        assert run.cost_usd is None and run.wasted_cost_usd is None
        cap.collect()
        names = cap.metric_names()
        assert "agentrel.cost" not in names and "agentrel.cost.unpriced_tokens" not in names
        assert cap.counter("agentrel.tokens") == 1200
        [span] = cap.spans("invoke_agent support")
        assert not any("cost" in k for k in span.attributes)
    # A mapping still prices its models; the rest are unpriced, not guessed.
    with testing.capture() as cap:
        _prices({"small": (0.25, 1.25, 0.025)})
        with agentrel.run("support") as run:
            big()
            small()
        assert run.cost_usd == 0.001125
        cap.collect()
        assert cap.counter("agentrel.cost.unpriced_tokens", {"gen_ai.request.model": "big"}) == 1200


def test_prices_false_turns_pricing_off(cap: testing.Capture) -> None:
    _cost.set_prices(*_cost.validate(False))
    with agentrel.run("support") as run:
        big()
    assert run.cost_usd is None
    cap.collect()
    assert "agentrel.cost" not in cap.metric_names()


def test_outside_a_run_the_call_is_priced_at_its_end(cap: testing.Capture) -> None:
    _prices()
    small()
    cap.collect()
    [attrs] = cap.label_sets("agentrel.cost")
    assert attrs == {"gen_ai.request.model": "small", "agentrel.token.disposition": "useful"}
    assert cap.counter("agentrel.cost") == 0.001125


def test_genai_prices_updater_is_never_started(cap: testing.Capture) -> None:
    pytest.importorskip("genai_prices")
    before = {t.ident for t in threading.enumerate()}
    _cost.reset()

    @agentrel.llm(model="gpt-4o", provider="openai")
    def ask() -> None:
        agentrel.record_tokens(input=10, output=10)

    with agentrel.run("a") as run:
        ask()
    assert run.cost_usd == float(usd(10, "2.5") + usd(10, "10"))
    assert {t.ident for t in threading.enumerate()} == before
    from genai_prices import data_snapshot

    assert data_snapshot.get_snapshot().from_auto_update is False


@pytest.mark.parametrize(
    ("prices", "exc", "match"),
    [
        ([("m", (1, 2, 3))], TypeError, "mapping"),
        ("m", TypeError, "mapping"),
        ({"": (1, 2, 3)}, TypeError, "non-empty str"),
        ({1: (1, 2, 3)}, TypeError, "non-empty str"),
        ({"m": 1.0}, TypeError, "tuple"),
        ({"m": "1,2,3"}, TypeError, "tuple"),
        ({"m": (1, 2)}, ValueError, "3 prices"),
        ({"m": (1, 2, 3, 4)}, ValueError, "3 prices"),
        ({"m": (1, -2, 0)}, ValueError, ">= 0"),
        ({"m": (1, float("nan"), 0)}, ValueError, "finite"),
        ({"m": (1, float("inf"), 0)}, ValueError, "finite"),
        ({"m": (True, 2, 0)}, TypeError, "number"),
        ({"m": (None, 2, 0)}, TypeError, "number"),
        ({"m": ("cheap", 2, 0)}, ValueError, "not a number"),
        (True, TypeError, "mapping"),
    ],
)
def test_configure_rejects_bad_prices(prices: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        agentrel.configure(prices=prices)
    assert agentrel.current_configuration() is None  # nothing was set up


def test_configure_applies_prices() -> None:
    tp, reader = TracerProvider(), InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    cfg = agentrel.configure(
        tracer_provider=tp, meter_provider=mp, prices={"big": (Decimal("3"), 15, 0.3)}
    )
    try:
        with agentrel.run("a") as run:
            big()
        assert run.cost_usd == 0.006
    finally:
        cfg.shutdown()
        mp.shutdown()


def test_a_broken_counter_never_breaks_the_host(cap: testing.Capture) -> None:
    _prices()

    class Broken:
        def add(self, *a: Any, **k: Any) -> None:
            raise RuntimeError("meter down")

    from agentrel._runtime import T

    T.cost = Broken()  # type: ignore[assignment]
    with agentrel.run("a") as run:
        assert big() == "a"
    assert run.outcome == "success"
    assert agentrel.telemetry_errors()["cost.emit"] == 1
    cap.collect()
    assert cap.counter("agentrel.tokens") == 1200


def test_demo_readout_spend_is_exact() -> None:
    """The demo's spend figures, read back from the /metrics registry, per cohort."""
    from agentrel._cli.readout import Readout
    from agentrel._cli.view import cohort_rows
    from agentrel._prometheus import registry_for

    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    agentrel.configure(
        cohorts=["smb", "free"],
        tracer_provider=TracerProvider(),
        meter_provider=mp,
        prices={"big": (3, 15, 0.3)},
    )
    try:
        with agentrel.run("support", cohort="smb"):
            with pytest.raises(TimeoutError):
                big(fail=True)
            big()
        with pytest.raises(KeyError), agentrel.run("support", cohort="free"):
            big()
            small()  # not in the table: unpriced
            raise KeyError
        r = Readout.collect(registry_for(reader).collect(), lambda a, c: 1.0)
    finally:
        mp.shutdown()
    call = usd(1000, "3") + usd(200, "15")
    assert r.cohorts["smb"].cost == {"useful": float(call), "wasted": float(call)}
    assert r.cohorts["free"].cost == {"useful": 0.0, "wasted": float(call)}
    assert r.fleet.spend == float(call) * 3
    assert r.cohorts["smb"].wasted_spend_share == 0.5
    assert r.unpriced_tokens == 4100
    assert r.first_calls == {"chat big": 1.0, "chat small": 1.0}
    assert [row[7:9] for row in cohort_rows(r)] == [("$0.0120", "50.0%"), ("$0.0060", "100.0%")]
