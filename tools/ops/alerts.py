"""Alerts (prometheus/agentrel.alerts.yml); each one has a section in docs/runbook.md."""

from __future__ import annotations

from typing import Any

from . import knobs
from ._series import AGENT, CHAIN, TO_TIER, TOOL, template
from .rules import (
    R_AMPLIFICATION,
    R_DEPTH_P95,
    R_HIDDEN_PER_CALL,
    R_LAST_TIER,
    R_SELF_HEALING,
    R_UNSAFE,
    R_WASTED_SPEND_SHARE,
    r_surfaced,
)

#: The severity policy (docs/operations.md): critical pages now, warning opens a ticket.
SEVERITIES = ("critical", "warning")


def alert(
    name: str,
    expr: str,
    for_: str,
    severity: str,
    summary: str,
    description: str,
    extra_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    assert severity in SEVERITIES
    labels = {"severity": severity, **(extra_labels or {})}
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": labels,
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"{knobs.RUNBOOK_URL}#{name.lower()}",
        },
    }


def burn(window_long: str, window_short: str, factor: float) -> str:
    budget = f"(1 - {knobs.SLO_OBJECTIVE})"
    return (
        f"(\n  {r_surfaced(window_long)} > ({factor} * {budget})\n  and\n"
        f"  {r_surfaced(window_short)} > ({factor} * {budget})\n)"
    )


def alert_groups() -> list[dict[str, Any]]:
    slo_pct = f"{knobs.SLO_OBJECTIVE * 100:g}%"
    agent, tool = template(AGENT), template(TOOL)

    def budget_desc(windows: str, speed: str) -> str:
        return (
            f"Agent {agent} fails {{{{ $value | humanizePercentage }}}} of "
            f"its runs visibly (outcome exhausted or failed) over the last {windows}: the "
            f"error budget of its {slo_pct} run SLO burns {speed} times faster than sustainable."
        )

    alerts = [
        alert(
            "AgentRetryDepthHigh",
            f'{R_DEPTH_P95}{{quantile="0.95"}} > {knobs.RETRY_DEPTH_P95_MAX}',
            "15m",
            "warning",
            "Agent runs absorb many failures each (p95 retry depth high).",
            f"p95 retry depth of agent {agent} is {{{{ $value }}}} "
            f"failures per run (threshold {knobs.RETRY_DEPTH_P95_MAX}): runs still answer, but "
            "only after many retries, fallbacks or rejected outputs.",
        ),
        alert(
            "AgentSelfHealingRateHigh",
            f"{R_SELF_HEALING} > {knobs.SELF_HEALING_RATE_MAX}",
            "15m",
            "warning",
            "Many successful agent runs needed self-healing.",
            "{{ $value | humanizePercentage }} of the successful runs of agent "
            f"{agent} only succeeded after absorbing a failure "
            f"(threshold {knobs.SELF_HEALING_RATE_MAX:.0%}). Success rate and MTBF do not show "
            "this.",
        ),
        alert(
            "AgentTokenAmplificationHigh",
            f"{R_AMPLIFICATION} > {knobs.TOKEN_AMPLIFICATION_MAX}",
            "15m",
            "warning",
            "Agent spends many tokens on work that is thrown away.",
            f'Agent {agent} spends {{{{ $value | printf "%.2f" }}}} tokens '
            f"for every useful token (threshold {knobs.TOKEN_AMPLIFICATION_MAX}): the rest goes "
            "to failed attempts, rejected outputs and failed runs.",
        ),
        alert(
            "AgentWastedSpendShareHigh",
            f"{R_WASTED_SPEND_SHARE} > {knobs.WASTED_SPEND_SHARE_MAX}",
            "15m",
            "warning",
            "A large share of an agent's LLM spend pays for work that is thrown away.",
            f"{{{{ $value | humanizePercentage }}}} of the LLM spend of agent {agent} pays for "
            "wasted tokens: failed attempts, rejected outputs and failed runs (threshold "
            f"{knobs.WASTED_SPEND_SHARE_MAX:.0%}). Only tokens of priced models are counted.",
        ),
        alert(
            "AgentToolHiddenFailuresHigh",
            f"{R_HIDDEN_PER_CALL} > {knobs.HIDDEN_FAILURES_PER_CALL_MAX}",
            "15m",
            "warning",
            "A tool fails often, but the failures are absorbed and hidden from users.",
            f'Tool {tool} has {{{{ $value | printf "%.2f" }}}} absorbed '
            f"(hidden) failures per call (threshold {knobs.HIDDEN_FAILURES_PER_CALL_MAX}): "
            "retries and fallbacks hide a failing dependency.",
        ),
        alert(
            "AgentFallbackLastTierServing",
            f"{R_LAST_TIER} > 0",
            "5m",
            "warning",
            "A fallback chain is serving from its last tier.",
            f"Fallback chain {template(CHAIN)} falls back to its last tier "
            f'{template(TO_TIER)} {{{{ $value | printf "%.2f" }}}} times per '
            "second: every better tier is failing and users get the last-resort answer.",
        ),
        alert(
            "AgentUnsafeRetries",
            f"{R_UNSAFE} > 0",
            "2m",
            "warning",
            "A tool declared not idempotent is being retried.",
            f"Tool {tool} (idempotent=False) is retried "
            '{{ $value | printf "%.2f" }} times per second: each retry may duplicate a side '
            "effect (a refund, an email, a write).",
        ),
        alert(
            "AgentRunsErrorBudgetBurn",
            f"{burn('1h', '5m', 14.4)}\nor\n{burn('6h', '30m', 6)}",
            "2m",
            "critical",
            "Agent runs fail visibly fast enough to exhaust the SLO error budget within days.",
            budget_desc("1h (or 6h)", "14.4 (or 6)"),
            {"long_window": "1h"},
        ),
        alert(
            "AgentRunsErrorBudgetBurn",
            f"{burn('1d', '2h', 3)}\nor\n{burn('3d', '6h', 1)}",
            "15m",
            "warning",
            "Agent runs fail visibly fast enough to exhaust the SLO error budget.",
            budget_desc("1d (or 3d)", "3 (or 1)"),
            {"long_window": "1d"},
        ),
    ]
    return [{"name": "agentrel.alerts", "rules": alerts}]
