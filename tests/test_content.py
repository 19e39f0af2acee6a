"""Arguments, results and messages reach spans only when the user opts in, and then only
through the redaction hook; never metrics."""

from __future__ import annotations

from typing import Any

import pytest

import agentrel
from agentrel import testing

SECRET = "card 4242-4242-4242-4242"


def _all_text(cap: testing.Capture) -> str:
    parts: list[str] = []
    for span in cap.spans():
        parts += [f"{k}={v}" for k, v in (span.attributes or {}).items()]
        for e in span.events:
            parts += [f"{k}={v}" for k, v in (e.attributes or {}).items()]
        parts.append(str(span.status.description))
    for name in cap.metric_names():
        parts += [str(a) for a in cap.label_sets(name)]
    return "\n".join(parts)


def _scenario() -> None:
    @agentrel.tool
    def pay(note: str) -> dict[str, str]:
        if "fail" in note:
            raise ValueError(SECRET)
        return {"receipt": SECRET}

    with pytest.raises(ValueError), agentrel.run("r"):
        pay(SECRET)
        pay("fail " + SECRET)


def test_nothing_recorded_by_default(cap: testing.Capture) -> None:
    """Default: no argument, result or exception message anywhere in spans or labels."""
    _scenario()
    text = _all_text(cap)
    assert "4242" not in text
    assert "ValueError" in text  # the type is recorded, the message is not


def _inject(cap: testing.Capture, **kw: Any) -> None:
    agentrel.configure(tracer_provider=cap.tracer_provider, meter_provider=cap.meter_provider, **kw)


def test_opt_in_goes_through_redaction(cap: testing.Capture) -> None:
    """capture_content=True records arguments, results and messages, redacted."""
    _inject(cap, capture_content=True, redact=lambda s: s.replace("4242", "****"))
    _scenario()
    [ok, failed] = cap.spans("execute_tool pay")
    assert ok.attributes["gen_ai.tool.call.arguments"] == (
        '{"args": ["card ****-****-****-****"], "kwargs": {}}'
    )
    assert ok.attributes["gen_ai.tool.call.result"] == '{"receipt": "card ****-****-****-****"}'
    [event] = failed.events
    assert event.attributes["exception.message"] == "card ****-****-****-****"
    [run_span] = cap.spans("invoke_agent r")
    assert run_span.attributes["exception.message"] == "card ****-****-****-****"
    text = _all_text(cap)
    assert "4242" not in text
    assert all("4242" not in str(a) for n in cap.metric_names() for a in cap.label_sets(n))


def test_raising_redactor_records_nothing(cap: testing.Capture) -> None:
    """If redaction fails, the text is dropped (never recorded unredacted) and counted."""

    def redact(text: str) -> str:
        raise RuntimeError("redactor down")

    _inject(cap, capture_content=True, redact=redact)
    _scenario()
    assert "4242" not in _all_text(cap)
    assert agentrel.telemetry_errors()["redact"] >= 3


def _circular() -> list[Any]:
    items: list[Any] = [1]
    items.append(items)
    return items


def _self_dict() -> dict[str, Any]:
    d: dict[str, Any] = {"a": 1}
    d["self"] = d
    return d


SMALL_VALUES = [
    1,
    1.5,
    None,
    [1, 2, 3],
    {"a": [1, {"b": None}]},
    {1: "a"},
    (1,),
    b"bytes",
    object,
    [float("inf")],
    {"x": {1, 2}},
    "é ü",
    {(1, 2): 3, (0,): [1]},  # not JSON (a tuple key): repr
    set(),
    {1, 2},
    frozenset({3}),
    frozenset(),
    ((),),
    _circular(),  # not JSON (a circular reference): repr, "[1, [...]]"
    _self_dict(),
    {(1,): [_circular()]},
]


@pytest.mark.parametrize("value", SMALL_VALUES, ids=lambda v: type(v).__name__)
def test_small_values_are_captured_as_before(value: Any) -> None:
    """A value whose text fits the limit is written exactly as ``json.dumps(value,
    default=repr, ensure_ascii=False)`` writes it, or as ``repr(value)`` where JSON fails."""
    import json

    from agentrel._content import LIMIT, serialise

    try:
        want = json.dumps(value, default=repr, ensure_ascii=False)
    except (TypeError, ValueError):
        want = repr(value)
    assert serialise(value, LIMIT) == want


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: list(range(4_000_000)), id="list-json"),
        pytest.param(lambda: [{(1,): 2}, *range(4_000_000)], id="list-repr"),
        pytest.param(lambda: {(i,): i for i in range(1_000_000)}, id="dict-repr"),
    ],
)
def test_a_huge_result_is_captured_with_bounded_work(cap: testing.Capture, make: Any) -> None:
    """A tool returning a 4,000,000-element list (or a million-entry value JSON cannot write)
    with ``capture_content=True``: the result attribute is the first 4,096 characters and
    "…", and capturing it allocates under 1 MiB at its peak (serialising the whole value
    first took 38–69 MiB)."""
    import tracemalloc

    from agentrel._content import LIMIT

    value = make()

    @agentrel.tool
    def big() -> Any:
        return value

    _inject(cap, capture_content=True)
    tracemalloc.start()
    try:
        assert big() is value
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024
    [span] = cap.spans("execute_tool big")
    text = span.attributes["gen_ai.tool.call.result"]
    assert len(text) == LIMIT + 1 and text.endswith("…")
    starts = ("[0, 1, 2, 3, ", "[{(1,): 2}, 0, 1, 2, ", "{(0,): 0, (1,): 1, ")  # JSON, repr
    assert text.startswith(starts)
