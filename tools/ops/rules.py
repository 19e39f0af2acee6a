"""Recording rules (prometheus/agentrel.rules.yml): every rate and ratio, computed once.

Rule names follow kubernetes-mixin's ``level:metric:operation``; the alerts and dashboards
import the ``R_*`` names from here.
"""

from __future__ import annotations

from typing import Any

from . import knobs
from ._series import (
    ABSORBED,
    AGENT,
    AMPLIFICATION,
    CHAIN,
    COHORT,
    COST,
    DISPOSITION,
    ERROR,
    FAILED_OUTCOMES,
    FALLBACKS,
    FIRST_CALL,
    FROM_TIER,
    INVOKE_INFERENCE_CALLS,
    INVOKE_TOOL_CALLS,
    MODEL,
    OUTCOME,
    RECOVERY,
    RETRY_DELAY,
    RETRY_DEPTH,
    RUN_ATTEMPTS,
    SUCCEEDED_OUTCOMES,
    TO_TIER,
    TOKENS,
    TOOL,
    TOOL_ATTEMPTS,
    TOOL_DURATION,
    TOOL_FAILURES,
    UNPRICED,
    UNSAFE,
    cat,
    own,
    rule_metric,
    series,
)

# --- names ---------------------------------------------------------------------------------------
R_RUNS = f"agent_cohort_outcome:{own('runs')}:rate5m"
R_SELF_HEALING_COHORT = f"agent_cohort:{own('runs_self_healing')}:ratio_rate5m"
R_SELF_HEALING = f"agent:{own('runs_self_healing')}:ratio_rate5m"
R_ABSORBED = f"agent_cohort:{own('runs_absorbed_failures')}:rate5m"
R_DEPTH_BUCKET = f"agent_cohort_le:{rule_metric(RETRY_DEPTH, '_bucket')}:rate5m"
R_DEPTH_P95 = f"agent:{rule_metric(RETRY_DEPTH)}:histogram_quantile"
R_ATTEMPTS_SUM = f"agent_cohort_outcome:{rule_metric(RUN_ATTEMPTS, '_sum')}:rate5m"
R_RECOVERY_BUCKET = f"agent_cohort_le:{rule_metric(RECOVERY, '_bucket')}:rate5m"
R_TOKENS = f"agent_cohort_disposition:{rule_metric(TOKENS)}:rate5m"
R_AMPLIFICATION = f"agent:{own('token_amplification')}:ratio_rate5m"
R_AMPLIFICATION_BUCKET = f"agent_cohort_le:{rule_metric(AMPLIFICATION, '_bucket')}:rate5m"
R_INVOKE_TOOL_CALLS_BUCKET = f"agent_le:{rule_metric(INVOKE_TOOL_CALLS, '_bucket')}:rate5m"
R_INVOKE_INFERENCE_CALLS_BUCKET = (
    f"agent_le:{rule_metric(INVOKE_INFERENCE_CALLS, '_bucket')}:rate5m"
)
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")

#: USD per second, by disposition; the ``*_per_hour`` rules are what dashboards show.
R_COST = f"agent_cohort_disposition:{rule_metric(COST)}:rate5m"
R_SPEND_HOURLY = f"agent_cohort:{rule_metric(COST, '_per_hour')}:rate5m"
R_WASTED_SPEND_HOURLY = f"agent_cohort:{rule_metric(COST, '_wasted_per_hour')}:rate5m"
R_WASTED_SPEND_SHARE_COHORT = f"agent_cohort:{rule_metric(COST, '_wasted')}:ratio_rate5m"
R_WASTED_SPEND_SHARE = f"agent:{rule_metric(COST, '_wasted')}:ratio_rate5m"
R_UNPRICED = f"model:{rule_metric(UNPRICED)}:rate5m"


def r_surfaced(window: str) -> str:
    return f"agent:{own('runs_surfaced_failures')}:ratio_rate{window}"


R_CALLS = f"tool_outcome:{own('tool_calls')}:rate5m"
R_ATTEMPTS_PER_CALL = f"tool:{rule_metric(TOOL_ATTEMPTS, '_per_call')}:ratio_rate5m"
R_TOOL_ATTEMPTS_BUCKET = f"tool_le:{rule_metric(TOOL_ATTEMPTS, '_bucket')}:rate5m"
R_FAILURES = f"tool_error_absorbed:{rule_metric(TOOL_FAILURES)}:rate5m"
R_HIDDEN_PER_CALL = f"tool:{own('tool_absorbed_failures_per_call')}:ratio_rate5m"
R_DURATION_BUCKET = f"tool_le:{rule_metric(TOOL_DURATION, '_bucket')}:rate5m"
R_DELAY_BUCKET = f"tool_le:{rule_metric(RETRY_DELAY, '_bucket')}:rate5m"
R_DELAY_SUM = f"tool:{rule_metric(RETRY_DELAY, '_sum')}:rate5m"
R_UNSAFE = f"tool:{rule_metric(UNSAFE)}:rate5m"
R_FALLBACKS = f"chain_tier_error:{rule_metric(FALLBACKS)}:rate5m"
R_LAST_TIER = f"chain_tier:{rule_metric(FALLBACKS, '_last_tier')}:rate5m"
#: First-call (cold start) buckets of every process seen in ``knobs.COLD_START_WINDOW``.
R_FIRST_CALL_BUCKET = (
    f"tool_le:{rule_metric(FIRST_CALL, '_bucket')}:last_over_time{knobs.COLD_START_WINDOW}"
)


def ratio(num: str, den: str) -> str:
    """num / den; a missing numerator (no such outcome yet) counts as 0, not as no data."""
    return f"(\n  {num}\n  or\n  0 * {den}\n)\n/\n{den}"


def _rules(items: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        rule: dict[str, Any] = {"record": item[0], "expr": item[1]}
        if len(item) > 2:
            rule["labels"] = item[2]
        out.append(rule)
    return out


def _runs() -> list[tuple[Any, ...]]:
    ac = f"{AGENT}, {COHORT}"
    depth_count, depth_sum = series(RETRY_DEPTH, "_count"), series(RETRY_DEPTH, "_sum")
    return [
        (R_RUNS, f"sum by ({AGENT}, {COHORT}, {OUTCOME}) (rate({depth_count}[5m]))"),
        (
            R_SELF_HEALING_COHORT,
            ratio(
                f'sum by ({ac}) ({R_RUNS}{{{OUTCOME}="{cat.RECOVERED}"}})',
                f'sum by ({ac}) ({R_RUNS}{{{OUTCOME}=~"{SUCCEEDED_OUTCOMES}"}})',
            ),
        ),
        (
            R_SELF_HEALING,
            ratio(
                f'sum by ({AGENT}) ({R_RUNS}{{{OUTCOME}="{cat.RECOVERED}"}})',
                f'sum by ({AGENT}) ({R_RUNS}{{{OUTCOME}=~"{SUCCEEDED_OUTCOMES}"}})',
            ),
        ),
        (
            R_ABSORBED,
            f'sum by ({ac}) (rate({depth_sum}{{{OUTCOME}=~"{SUCCEEDED_OUTCOMES}"}}[5m]))',
        ),
        (
            R_DEPTH_BUCKET,
            f"sum by ({ac}, le) (rate({series(RETRY_DEPTH, '_bucket')}[5m]))",
        ),
        (
            R_DEPTH_P95,
            f"histogram_quantile(0.95, sum by ({AGENT}, le) ({R_DEPTH_BUCKET}))",
            {"quantile": "0.95"},
        ),
        (
            R_ATTEMPTS_SUM,
            f"sum by ({ac}, {OUTCOME}) (rate({series(RUN_ATTEMPTS, '_sum')}[5m]))",
        ),
        (R_RECOVERY_BUCKET, f"sum by ({ac}, le) (rate({series(RECOVERY, '_bucket')}[5m]))"),
        (R_TOKENS, f"sum by ({ac}, {DISPOSITION}) (rate({series(TOKENS)}[5m]))"),
        (
            R_AMPLIFICATION,
            f"sum by ({AGENT}) ({R_TOKENS})\n/\n"
            f'sum by ({AGENT}) ({R_TOKENS}{{{DISPOSITION}="{cat.USEFUL}"}})',
        ),
        (
            R_AMPLIFICATION_BUCKET,
            f"sum by ({ac}, le) (rate({series(AMPLIFICATION, '_bucket')}[5m]))",
        ),
        (
            R_INVOKE_TOOL_CALLS_BUCKET,
            f"sum by ({AGENT}, le) (rate({series(INVOKE_TOOL_CALLS, '_bucket')}[5m]))",
        ),
        (
            R_INVOKE_INFERENCE_CALLS_BUCKET,
            f"sum by ({AGENT}, le) (rate({series(INVOKE_INFERENCE_CALLS, '_bucket')}[5m]))",
        ),
    ]


def _cost() -> list[tuple[Any, ...]]:
    ac = f"{AGENT}, {COHORT}"
    wasted = f'{R_COST}{{{DISPOSITION}="{cat.WASTED}"}}'
    return [
        (R_COST, f"sum by ({ac}, {DISPOSITION}) (rate({series(COST)}[5m]))"),
        (R_SPEND_HOURLY, f"3600 * sum by ({ac}) ({R_COST})"),
        (
            R_WASTED_SPEND_HOURLY,
            f"3600 * (\n  sum by ({ac}) ({wasted})\n  or\n  0 * sum by ({ac}) ({R_COST})\n)",
        ),
        (
            R_WASTED_SPEND_SHARE_COHORT,
            ratio(f"sum by ({ac}) ({wasted})", f"sum by ({ac}) ({R_COST})"),
        ),
        (
            R_WASTED_SPEND_SHARE,
            ratio(f"sum by ({AGENT}) ({wasted})", f"sum by ({AGENT}) ({R_COST})"),
        ),
        (R_UNPRICED, f"sum by ({MODEL}) (rate({series(UNPRICED)}[5m]))"),
    ]


def _slo() -> list[tuple[Any, ...]]:
    count = series(RETRY_DEPTH, "_count")
    out = []
    for w in SLO_WINDOWS:
        num = f'sum by ({AGENT}) (rate({count}{{{OUTCOME}=~"{FAILED_OUTCOMES}"}}[{w}]))'
        den = f"sum by ({AGENT}) (rate({count}[{w}]))"
        out.append((r_surfaced(w), ratio(num, den)))
    return out


def _tools() -> list[tuple[Any, ...]]:
    attempts_count, attempts_sum = series(TOOL_ATTEMPTS, "_count"), series(TOOL_ATTEMPTS, "_sum")
    return [
        (R_CALLS, f"sum by ({TOOL}, {OUTCOME}) (rate({attempts_count}[5m]))"),
        (
            R_ATTEMPTS_PER_CALL,
            f"sum by ({TOOL}) (rate({attempts_sum}[5m]))\n/\n"
            f"sum by ({TOOL}) (rate({attempts_count}[5m]))",
        ),
        (
            R_TOOL_ATTEMPTS_BUCKET,
            f"sum by ({TOOL}, le) (rate({series(TOOL_ATTEMPTS, '_bucket')}[5m]))",
        ),
        (
            R_FAILURES,
            f"sum by ({TOOL}, {ERROR}, {ABSORBED}) (rate({series(TOOL_FAILURES)}[5m]))",
        ),
        (
            R_HIDDEN_PER_CALL,
            ratio(
                f'sum by ({TOOL}) ({R_FAILURES}{{{ABSORBED}="true"}})',
                f"sum by ({TOOL}) ({R_CALLS})",
            ),
        ),
        (
            R_DURATION_BUCKET,
            f"sum by ({TOOL}, le) (rate({series(TOOL_DURATION, '_bucket')}[5m]))",
        ),
        (R_DELAY_BUCKET, f"sum by ({TOOL}, le) (rate({series(RETRY_DELAY, '_bucket')}[5m]))"),
        (R_DELAY_SUM, f"sum by ({TOOL}) (rate({series(RETRY_DELAY, '_sum')}[5m]))"),
        (R_UNSAFE, f"sum by ({TOOL}) (rate({series(UNSAFE)}[5m]))"),
        (
            R_FALLBACKS,
            f"sum by ({CHAIN}, {FROM_TIER}, {TO_TIER}, {ERROR}) (rate({series(FALLBACKS)}[5m]))",
        ),
        (R_LAST_TIER, _last_tier()),
        (
            R_FIRST_CALL_BUCKET,
            f"sum by ({TOOL}, le) "
            f"(last_over_time({series(FIRST_CALL, '_bucket')}[{knobs.COLD_START_WINDOW}]))",
        ),
    ]


def _last_tier() -> str:
    """Fallbacks into a chain's last tier, with no tier named: the tiers a chain moved to,
    less every tier it moved *from* in the evidence window, for chains that were exhausted
    (every tier failed, so every tier but the last was left) in that window. Series presence
    is the evidence, not increases, so a counter's first increment counts. A chain never
    exhausted has no known last tier; ``knobs.LAST_TIER_REGEX`` can name its last tier."""
    w = knobs.LAST_TIER_EVIDENCE_WINDOW
    exhausted = f'{series(TOOL_ATTEMPTS, "_count")}{{{OUTCOME}="{cat.EXHAUSTED}"}}'
    expr = (
        f"(\n  sum by ({CHAIN}, {TO_TIER}) ({R_FALLBACKS})\n"
        f"  unless on ({CHAIN}, {TO_TIER})\n"
        f"  label_replace(\n"
        f"    count by ({CHAIN}, {FROM_TIER}) (present_over_time({series(FALLBACKS)}[{w}])),\n"
        f'    "{TO_TIER}", "$1", "{FROM_TIER}", "(.*)"\n'
        f"  )\n)\n"
        f"and on ({CHAIN})\n"
        f"label_replace(\n"
        f"  count by ({TOOL}) (present_over_time({exhausted}[{w}])),\n"
        f'  "{CHAIN}", "$1", "{TOOL}", "(.*)"\n'
        f")"
    )
    if knobs.LAST_TIER_REGEX:
        expr += (
            f"\nor\nsum by ({CHAIN}, {TO_TIER}) "
            f'({R_FALLBACKS}{{{TO_TIER}=~"{knobs.LAST_TIER_REGEX}"}})'
        )
    return expr


def recording_groups() -> list[dict[str, Any]]:
    return [
        {"name": "agentrel.runs.rules", "rules": _rules(_runs())},
        {"name": "agentrel.slo.rules", "rules": _rules(_slo())},
        {"name": "agentrel.tools.rules", "rules": _rules(_tools())},
        {"name": "agentrel.cost.rules", "rules": _rules(_cost())},
    ]
