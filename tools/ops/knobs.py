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
#: Share of an agent's LLM spend (agentrel.cost) that paid for wasted tokens.
WASTED_SPEND_SHARE_MAX = 0.25
#: How long a process's first-call durations (cold starts) stay on the Tools dashboard after
#: the process is gone (a replaced pod, a finished job).
COLD_START_WINDOW = "1h"
#: How far back the last-tier rule looks for a chain's shape: a tier the chain fell back
#: *from* in this window is not its last, and the chain must have been exhausted (every tier
#: failed) in it for the tiers it never left to count as last (docs/operations.md).
LAST_TIER_EVIDENCE_WINDOW = "1d"
#: Optional regex on the to-tier label naming last tiers the data cannot show (a chain whose
#: last tier never fails is never exhausted); "" adds none.
LAST_TIER_REGEX = ""
RUNBOOK_URL = "https://github.com/agentrel/agentrel/blob/main/docs/runbook.md"
#: Verdicts after the run (agentrel.verdict): the window the verdict rules rate over, the share
#: of verdicts on runs that passed (success or recovered) that may say "wrong" before
#: AgentPassedRunsFoundWrong fires, and how many such verdicts the window must hold first.
VERDICT_WINDOW = "1h"
PASSED_WRONG_SHARE_MAX = 0.05
PASSED_VERDICTS_MIN = 10
#: The model changed under you (AgentServedModelChanged): a response model is new for a
#: request model when it was not served for it in the MODEL_LOOKBACK window that ends
#: MODEL_NEW_FOR ago (while the request model was); it stays new for MODEL_NEW_FOR.
MODEL_LOOKBACK = "1d"
MODEL_NEW_FOR = "30m"
#: Retry budgets (AgentToolRetryBudgetExceeded): the share of a tool's attempts that may be
#: retries (attempts beyond the first of each call) over 5m, and how long it may stay above.
RETRY_BUDGET = 0.2
RETRY_BUDGET_FOR = "15m"
