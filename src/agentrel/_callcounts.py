"""GenAI semconv per-invocation call counts, recorded once per run at its end.

``gen_ai.invoke_agent.tool_calls`` and ``gen_ai.invoke_agent.inference_calls`` count the
attempts of the run's tool calls and LLM calls, failed ones and retries included (the
conventions count every call and cannot tell a retry from a first try; agentrel's
``agentrel.run.retry_depth`` can). Derived from the run's attempt counts by kind, which the
run keeps anyway: two histogram records per run, nothing per call. Their sum is
``agentrel.run.attempts`` minus the attempts of fallback tiers that ran no decorated call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _catalogue as cat
from . import _record

_attrs: dict[str, dict[str, str]] = {}
_ATTRS_MAX = 1024


def record(agent: str, kinds: Mapping[str, int], ctx: Any) -> None:
    """Record the two histograms for a finished run: its name, its attempts by call kind, its
    span's context."""
    attrs = _attrs.get(agent)
    if attrs is None:
        attrs = {cat.AGENT: agent}
        if len(_attrs) < _ATTRS_MAX:
            _attrs[agent] = attrs
    _record.call_counts(kinds.get("tool", 0), kinds.get("llm", 0), attrs, ctx)
