"""Retry budgets: per tool, the share of attempts that are retries (every attempt beyond the
first of its call), its recording rule, the alert when it stays above the budget
(``knobs.RETRY_BUDGET``) and the Tools dashboard's "Retry budget" row."""

from __future__ import annotations

from typing import Any

from . import knobs
from ._series import TOOL, TOOL_ATTEMPTS, own, series
from ._series import template as label_template
from .alerts import alert
from .dashboard import TOOL_SEL, Layout, target, timeseries
from .rules import _rules

#: retries / attempts per tool over 5m
R_RETRY_SHARE = f"tool:{own('tool_retries')}:ratio_rate5m"


def _recording() -> list[tuple[Any, ...]]:
    attempts = f"sum by ({TOOL}) (rate({series(TOOL_ATTEMPTS, '_sum')}[5m]))"
    calls = f"sum by ({TOOL}) (rate({series(TOOL_ATTEMPTS, '_count')}[5m]))"
    return [(R_RETRY_SHARE, f"(\n  {attempts}\n  -\n  {calls}\n)\n/\n{attempts}")]


def recording_groups() -> list[dict[str, Any]]:
    return [{"name": "agentrel.budgets.rules", "rules": _rules(_recording())}]


def alert_groups() -> list[dict[str, Any]]:
    return [
        {
            "name": "agentrel.budgets.alerts",
            "rules": [
                alert(
                    "AgentToolRetryBudgetExceeded",
                    f"{R_RETRY_SHARE} > {knobs.RETRY_BUDGET}",
                    knobs.RETRY_BUDGET_FOR,
                    "warning",
                    "A tool spends more of its attempts on retries than its budget allows.",
                    "{{ $value | humanizePercentage }} of the attempts of tool "
                    f"{label_template(TOOL)} are retries (budget "
                    f"{knobs.RETRY_BUDGET:.0%}): its downstream is failing and the retries "
                    "add load to it.",
                ),
            ],
        }
    ]


def tools_row(lay: Layout) -> None:
    """The Tools dashboard's "Retry budget" row."""
    lay.row("Retry budget")
    lay.add(timeseries(
        "Retry share of attempts",
        "Per tool, the share of attempts that are retries (attempts beyond the first of "
        f"each call) over 5m. AgentToolRetryBudgetExceeded fires above the "
        f"{knobs.RETRY_BUDGET:.0%} budget for {knobs.RETRY_BUDGET_FOR}.",
        [target(f"{R_RETRY_SHARE}{{{TOOL_SEL}}}", f"{{{{{TOOL}}}}}", "A")],
        "percentunit", min=0, max=1,
        thresholds={"mode": "absolute", "steps": [
            {"color": "green", "value": None},
            {"color": "orange", "value": knobs.RETRY_BUDGET}]}), 24)  # fmt: skip
