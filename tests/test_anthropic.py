"""The real Anthropic SDK, instrumented, against a mock transport: what is Anthropic's own. The
contract it shares with OpenAI (calls, hidden retries, errors, tokens, streams, content off by
default, uninstrument) is tests/test_llm_contract.py."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from anthropic.types import Message

import agentrel
from agentrel import testing
from llm_mocks import Script, anthropic_client, error, message_body

MODEL = "claude-mock-1"
MSGS = [{"role": "user", "content": "my secret question"}]


def _create(client: Any, **kw: Any) -> Any:
    return client.messages.create(model=MODEL, max_tokens=100, messages=MSGS, **kw)


def test_overloaded_529_is_named_by_the_sdk(cap: testing.Capture) -> None:
    """error.type follows the SDK's own status mapping (529 -> OverloadedError)."""
    script = Script(error(529), (200, message_body()))
    client = agentrel.instrument(anthropic_client(script))
    with agentrel.run("support"):
        _create(client)
    assert cap.counter("agentrel.tool.failures", {"error.type": "OverloadedError"}) == 1


def test_error_named_from_the_body_as_the_sdk_names_it(cap: testing.Capture) -> None:
    """The SDK picks some classes from the error's details, not the status: three 429s whose
    body says ``ramp_limit_exceeded`` raise ``RampLimitExceededError``, and every attempt is
    named so, not ``RateLimitError``."""
    body = {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "slow down",
            "details": {"error_code": "ramp_limit_exceeded"},
        },
    }
    script = Script((429, body), (429, body), (429, body))
    client = agentrel.instrument(anthropic_client(script))
    with pytest.raises(anthropic.RateLimitError) as info, agentrel.run("support"):
        _create(client)
    assert type(info.value).__qualname__ == "RampLimitExceededError"
    assert {a["error.type"]: p.value for a, p in cap.points("agentrel.tool.failures")} == {
        "RampLimitExceededError": 3
    }
    (span,) = cap.spans(f"chat {MODEL}")
    assert span.attributes["error.type"] == "RampLimitExceededError"


def test_with_raw_response_and_with_options(cap: testing.Capture) -> None:
    """with_raw_response and with_options keep working and stay instrumented."""
    script = Script((200, message_body()))
    client = agentrel.instrument(anthropic_client(script))
    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=10, messages=MSGS)
    assert type(raw.parse()) is Message
    other = client.with_options(timeout=5.0)
    assert isinstance(other, anthropic.Anthropic)
    _create(other)
    assert cap.histogram("agentrel.tool.attempts").count == 2
    assert cap.counter("agentrel.tokens") == 300
