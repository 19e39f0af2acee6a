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
