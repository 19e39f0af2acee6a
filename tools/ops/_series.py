"""Every series, label and label value the ops kit names, read from agentrel's catalogue.

Nothing else in tools/ops spells an ``agentrel_*`` / ``gen_ai_*`` series or a label: rename
an instrument or an attribute in ``src/agentrel/_catalogue.py`` and the rules, alerts and
dashboards follow on the next ``python3 tools/ops/generate.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _load_catalogue() -> Any:
    """Load src/agentrel/_catalogue.py by path: it needs only the standard library, so the
    generator runs without agentrel's dependencies installed."""
    spec = importlib.util.spec_from_file_location(
        "_agentrel_catalogue", ROOT / "src" / "agentrel" / "_catalogue.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


cat = _load_catalogue()

# --- labels --------------------------------------------------------------------------------------
AGENT = cat.prometheus_label(cat.AGENT)
COHORT = cat.prometheus_label(cat.COHORT)
OUTCOME = cat.prometheus_label(cat.OUTCOME)
TOOL = cat.prometheus_label(cat.TOOL)
ERROR = cat.prometheus_label(cat.ERROR_TYPE)
ABSORBED = cat.prometheus_label(cat.ABSORBED)
DISPOSITION = cat.prometheus_label(cat.DISPOSITION)
CHAIN = cat.prometheus_label(cat.FALLBACK_CHAIN)
FROM_TIER = cat.prometheus_label(cat.FALLBACK_FROM)
TO_TIER = cat.prometheus_label(cat.FALLBACK_TO)
MODEL = cat.prometheus_label(cat.REQUEST_MODEL)

# --- label values --------------------------------------------------------------------------------
FAILED_OUTCOMES = f"{cat.EXHAUSTED}|{cat.FAILED}"
SUCCEEDED_OUTCOMES = f"{cat.SUCCESS}|{cat.RECOVERED}"


# --- series --------------------------------------------------------------------------------------
def series(spec: Any, suffix: str = "") -> str:
    """The Prometheus series of a catalogue metric: a counter as is (``*_total``), a histogram
    with one of ``_bucket``, ``_sum``, ``_count`` (or none, for a recording rule's name)."""
    if spec.kind == "counter":
        assert not suffix, f"{spec.name} is a counter: no {suffix}"
    else:
        assert suffix in ("", "_bucket", "_sum", "_count"), suffix
    return spec.prometheus_name + suffix


def rule_metric(spec: Any, suffix: str = "") -> str:
    """The ``metric`` part of a recording rule's ``level:metric:operation`` name for a catalogue
    metric: the series name, a counter's ``_total`` dropped (kubernetes-mixin style), in the
    lower case the rule names use."""
    return (spec.prometheus_name.removesuffix("_total") + suffix).lower()


#: Namespace of the rule metrics that are agentrel's own ideas, not one catalogue metric
#: (``agentrel_runs``, ``agentrel_tool_calls``): the catalogue's own namespace.
NAMESPACE = cat.prometheus_label(cat.OUTCOME.split(".", 1)[0])


def own(name: str) -> str:
    """A rule metric in agentrel's namespace: ``own("runs")`` -> ``agentrel_runs``."""
    return f"{NAMESPACE}_{name}"


RETRY_DEPTH = cat.RUN_RETRY_DEPTH
RUN_ATTEMPTS = cat.RUN_ATTEMPTS
AMPLIFICATION = cat.RUN_TOKEN_AMPLIFICATION
RECOVERY = cat.RUN_RECOVERY_TIME
TOOL_ATTEMPTS = cat.TOOL_ATTEMPTS
TOOL_FAILURES = cat.TOOL_FAILURES
RETRY_DELAY = cat.RETRY_DELAY
FALLBACKS = cat.FALLBACKS
TOKENS = cat.TOKENS
UNSAFE = cat.UNSAFE_RETRIES
TOOL_DURATION = cat.EXECUTE_TOOL_DURATION
COST = cat.COST
UNPRICED = cat.UNPRICED_TOKENS
FIRST_CALL = cat.FIRST_CALL_DURATION
INVOKE_TOOL_CALLS = cat.INVOKE_AGENT_TOOL_CALLS
INVOKE_INFERENCE_CALLS = cat.INVOKE_AGENT_INFERENCE_CALLS


def template(label: str) -> str:
    """``{{ $labels.<label> }}`` for an alert annotation."""
    return f"{{{{ $labels.{label} }}}}"


def legend(label: str) -> str:
    """``{{<label>}}`` for a Grafana legend."""
    return f"{{{{{label}}}}}"
