"""GenAI semconv per-invocation call counts (issue 13), recorded once per run at its end.

``gen_ai.invoke_agent.tool_calls`` and ``gen_ai.invoke_agent.inference_calls`` count the
attempts of the run's tool calls and LLM calls, failed ones and retries included (the
conventions count every call and cannot tell a retry from a first try; agentrel's
``agentrel.run.retry_depth`` can). Derived from the run's attempt counts by kind, which the
run keeps anyway: two histogram records per run, nothing per call. Their sum is
``agentrel.run.attempts`` minus the attempts of fallback tiers that ran no decorated call.
"""

from __future__ import annotations

from typing import Any

from . import _catalogue as cat
from . import _record

_attrs: dict[str, dict[str, str]] = {}
_ATTRS_MAX = 1024


def record(run: Any) -> None:
    """Record the two histograms for a finished run (with its span's context)."""
    attrs = _attrs.get(run.name)
    if attrs is None:
        attrs = {cat.AGENT: run.name}
        if len(_attrs) < _ATTRS_MAX:
            _attrs[run.name] = attrs
    kinds = run._kinds
    _record.call_counts(kinds.get("tool", 0), kinds.get("llm", 0), attrs, run._ctx)
