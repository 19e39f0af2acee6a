"""The knobs an operator is expected to change; documented in docs/operations.md.

Run ``python3 tools/ops/generate.py`` after changing one (and update the expected values in
prometheus/tests/agentrel.alerts.test.yml: the unit tests pin the thresholds on purpose).
"""

from __future__ import annotations

#: Objective of the run SLO: the share of runs that must not fail visibly (exhausted|failed).
SLO_OBJECTIVE = 0.99
#: Alert thresholds (see docs/runbook.md for what each one means).
RETRY_DEPTH_P95_MAX = 3
SELF_HEALING_RATE_MAX = 0.25
TOKEN_AMPLIFICATION_MAX = 1.5
HIDDEN_FAILURES_PER_CALL_MAX = 0.5
#: Regex on ``agentrel_fallback_to_tier`` naming the last tier of every fallback chain
#: (the demo's chain ``answer`` is primary_model -> secondary_model -> cached_answer).
LAST_TIER_REGEX = "cached_answer|static_answer"
RUNBOOK_URL = "https://github.com/agentrel/agentrel/blob/main/docs/runbook.md"
