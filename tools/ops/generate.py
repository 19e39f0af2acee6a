#!/usr/bin/env python3
"""Generate agentrel's ops kit: Prometheus recording rules, alerts and Grafana dashboards.

PromQL lives here, in one place (the kubernetes-mixin way): recording rules named
``level:metric:operation`` compute every rate and ratio once; the alerts and the dashboards
query those rules. Metric and label names come from ``agentrel._catalogue``.

    python3 tools/ops/generate.py            # rewrite prometheus/*.yml and dashboards/*.json
    python3 tools/ops/generate.py --check    # exit 1 if a generated file is out of date
    python3 tools/ops/generate.py --out DIR  # write into DIR instead of the repository

The knobs an operator is expected to change (SLO objective, alert thresholds, the matcher
that names the last tier of a fallback chain) are the constants just below; they are
documented in docs/operations.md. Run the generator after changing one.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import yaml

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

# --- operator knobs ---------------------------------------------------------------------------
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

# --- names from the catalogue -------------------------------------------------------------------
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

RETRY_DEPTH = cat.RUN_RETRY_DEPTH.prometheus_name
RUN_ATTEMPTS = cat.RUN_ATTEMPTS.prometheus_name
AMPLIFICATION = cat.RUN_TOKEN_AMPLIFICATION.prometheus_name
RECOVERY = cat.RUN_RECOVERY_TIME.prometheus_name
TOOL_ATTEMPTS = cat.TOOL_ATTEMPTS.prometheus_name
TOOL_FAILURES = cat.TOOL_FAILURES.prometheus_name
RETRY_DELAY = cat.RETRY_DELAY.prometheus_name
FALLBACKS = cat.FALLBACKS.prometheus_name
TOKENS = cat.TOKENS.prometheus_name
UNSAFE = cat.UNSAFE_RETRIES.prometheus_name
TOOL_DURATION = cat.EXECUTE_TOOL_DURATION.prometheus_name

FAILED_OUTCOMES = f"{cat.EXHAUSTED}|{cat.FAILED}"
SUCCEEDED_OUTCOMES = f"{cat.SUCCESS}|{cat.RECOVERED}"

# --- recording rules ----------------------------------------------------------------------------
R_RUNS = "agent_cohort_outcome:agentrel_runs:rate5m"
R_SELF_HEALING_COHORT = "agent_cohort:agentrel_runs_self_healing:ratio_rate5m"
R_SELF_HEALING = "agent:agentrel_runs_self_healing:ratio_rate5m"
R_ABSORBED = "agent_cohort:agentrel_runs_absorbed_failures:rate5m"
R_DEPTH_BUCKET = "agent_cohort_le:agentrel_run_retry_depth_bucket:rate5m"
R_DEPTH_P95 = "agent:agentrel_run_retry_depth:histogram_quantile"
R_ATTEMPTS_SUM = "agent_cohort_outcome:agentrel_run_attempts_sum:rate5m"
R_RECOVERY_BUCKET = "agent_cohort_le:agentrel_run_recovery_time_seconds_bucket:rate5m"
R_TOKENS = "agent_cohort_disposition:agentrel_tokens:rate5m"
R_AMPLIFICATION = "agent:agentrel_token_amplification:ratio_rate5m"
R_AMPLIFICATION_BUCKET = "agent_cohort_le:agentrel_run_token_amplification_bucket:rate5m"
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def r_surfaced(window: str) -> str:
    return f"agent:agentrel_runs_surfaced_failures:ratio_rate{window}"


R_CALLS = "tool_outcome:agentrel_tool_calls:rate5m"
R_ATTEMPTS_PER_CALL = "tool:agentrel_tool_attempts_per_call:ratio_rate5m"
R_TOOL_ATTEMPTS_BUCKET = "tool_le:agentrel_tool_attempts_bucket:rate5m"
R_FAILURES = "tool_error_absorbed:agentrel_tool_failures:rate5m"
R_HIDDEN_PER_CALL = "tool:agentrel_tool_absorbed_failures_per_call:ratio_rate5m"
R_DURATION_BUCKET = "tool_le:gen_ai_execute_tool_duration_seconds_bucket:rate5m"
R_DELAY_BUCKET = "tool_le:agentrel_retry_delay_seconds_bucket:rate5m"
R_DELAY_SUM = "tool:agentrel_retry_delay_seconds_sum:rate5m"
R_UNSAFE = "tool:agentrel_unsafe_retries:rate5m"
R_FALLBACKS = "chain_tier_error:agentrel_fallbacks:rate5m"
R_LAST_TIER = "chain_tier:agentrel_fallbacks_last_tier:rate5m"


def ratio(num: str, den: str) -> str:
    """num / den; a missing numerator (no such outcome yet) counts as 0, not as no data."""
    return f"(\n  {num}\n  or\n  0 * {den}\n)\n/\n{den}"


def recording_groups() -> list[dict[str, Any]]:
    ac = f"{AGENT}, {COHORT}"
    runs = [
        (R_RUNS, f"sum by ({AGENT}, {COHORT}, {OUTCOME}) (rate({RETRY_DEPTH}_count[5m]))"),
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
            f'sum by ({ac}) (rate({RETRY_DEPTH}_sum{{{OUTCOME}=~"{SUCCEEDED_OUTCOMES}"}}[5m]))',
        ),
        (R_DEPTH_BUCKET, f"sum by ({ac}, le) (rate({RETRY_DEPTH}_bucket[5m]))"),
        (
            R_DEPTH_P95,
            f"histogram_quantile(0.95, sum by ({AGENT}, le) ({R_DEPTH_BUCKET}))",
            {"quantile": "0.95"},
        ),
        (R_ATTEMPTS_SUM, f"sum by ({ac}, {OUTCOME}) (rate({RUN_ATTEMPTS}_sum[5m]))"),
        (R_RECOVERY_BUCKET, f"sum by ({ac}, le) (rate({RECOVERY}_bucket[5m]))"),
        (R_TOKENS, f"sum by ({ac}, {DISPOSITION}) (rate({TOKENS}[5m]))"),
        (
            R_AMPLIFICATION,
            f"sum by ({AGENT}) ({R_TOKENS})\n/\n"
            f'sum by ({AGENT}) ({R_TOKENS}{{{DISPOSITION}="{cat.USEFUL}"}})',
        ),
        (R_AMPLIFICATION_BUCKET, f"sum by ({ac}, le) (rate({AMPLIFICATION}_bucket[5m]))"),
    ]
    slo = []
    for w in SLO_WINDOWS:
        num = f'sum by ({AGENT}) (rate({RETRY_DEPTH}_count{{{OUTCOME}=~"{FAILED_OUTCOMES}"}}[{w}]))'
        den = f"sum by ({AGENT}) (rate({RETRY_DEPTH}_count[{w}]))"
        slo.append((r_surfaced(w), ratio(num, den)))
    tools = [
        (R_CALLS, f"sum by ({TOOL}, {OUTCOME}) (rate({TOOL_ATTEMPTS}_count[5m]))"),
        (
            R_ATTEMPTS_PER_CALL,
            f"sum by ({TOOL}) (rate({TOOL_ATTEMPTS}_sum[5m]))\n/\n"
            f"sum by ({TOOL}) (rate({TOOL_ATTEMPTS}_count[5m]))",
        ),
        (R_TOOL_ATTEMPTS_BUCKET, f"sum by ({TOOL}, le) (rate({TOOL_ATTEMPTS}_bucket[5m]))"),
        (R_FAILURES, f"sum by ({TOOL}, {ERROR}, {ABSORBED}) (rate({TOOL_FAILURES}[5m]))"),
        (
            R_HIDDEN_PER_CALL,
            ratio(
                f'sum by ({TOOL}) ({R_FAILURES}{{{ABSORBED}="true"}})',
                f"sum by ({TOOL}) ({R_CALLS})",
            ),
        ),
        (R_DURATION_BUCKET, f"sum by ({TOOL}, le) (rate({TOOL_DURATION}_bucket[5m]))"),
        (R_DELAY_BUCKET, f"sum by ({TOOL}, le) (rate({RETRY_DELAY}_bucket[5m]))"),
        (R_DELAY_SUM, f"sum by ({TOOL}) (rate({RETRY_DELAY}_sum[5m]))"),
        (R_UNSAFE, f"sum by ({TOOL}) (rate({UNSAFE}[5m]))"),
        (
            R_FALLBACKS,
            f"sum by ({CHAIN}, {FROM_TIER}, {TO_TIER}, {ERROR}) (rate({FALLBACKS}[5m]))",
        ),
        (
            R_LAST_TIER,
            f'sum by ({CHAIN}, {TO_TIER}) ({R_FALLBACKS}{{{TO_TIER}=~"{LAST_TIER_REGEX}"}})',
        ),
    ]

    def rules(items: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        out = []
        for item in items:
            rule: dict[str, Any] = {"record": item[0], "expr": item[1]}
            if len(item) > 2:
                rule["labels"] = item[2]
            out.append(rule)
        return out

    return [
        {"name": "agentrel.runs.rules", "rules": rules(runs)},
        {"name": "agentrel.slo.rules", "rules": rules(slo)},
        {"name": "agentrel.tools.rules", "rules": rules(tools)},
    ]


# --- alerts --------------------------------------------------------------------------------------
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
            "runbook_url": f"{RUNBOOK_URL}#{name.lower()}",
        },
    }


def burn(window_long: str, window_short: str, factor: float) -> str:
    budget = f"(1 - {SLO_OBJECTIVE})"
    return (
        f"(\n  {r_surfaced(window_long)} > ({factor} * {budget})\n  and\n"
        f"  {r_surfaced(window_short)} > ({factor} * {budget})\n)"
    )


def alert_groups() -> list[dict[str, Any]]:
    slo_pct = f"{SLO_OBJECTIVE * 100:g}%"

    def budget_desc(windows: str, speed: str) -> str:
        return (
            "Agent {{ $labels.gen_ai_agent_name }} fails {{ $value | humanizePercentage }} of "
            f"its runs visibly (outcome exhausted or failed) over the last {windows}: the "
            f"error budget of its {slo_pct} run SLO burns {speed} times faster than sustainable."
        )

    alerts = [
        alert(
            "AgentRetryDepthHigh",
            f'{R_DEPTH_P95}{{quantile="0.95"}} > {RETRY_DEPTH_P95_MAX}',
            "15m",
            "warning",
            "Agent runs absorb many failures each (p95 retry depth high).",
            "p95 retry depth of agent {{ $labels.gen_ai_agent_name }} is {{ $value }} "
            f"failures per run (threshold {RETRY_DEPTH_P95_MAX}): runs still answer, but only "
            "after many retries, fallbacks or rejected outputs.",
        ),
        alert(
            "AgentSelfHealingRateHigh",
            f"{R_SELF_HEALING} > {SELF_HEALING_RATE_MAX}",
            "15m",
            "warning",
            "Many successful agent runs needed self-healing.",
            "{{ $value | humanizePercentage }} of the successful runs of agent "
            "{{ $labels.gen_ai_agent_name }} only succeeded after absorbing a failure "
            f"(threshold {SELF_HEALING_RATE_MAX:.0%}). Success rate and MTBF do not show this.",
        ),
        alert(
            "AgentTokenAmplificationHigh",
            f"{R_AMPLIFICATION} > {TOKEN_AMPLIFICATION_MAX}",
            "15m",
            "warning",
            "Agent spends many tokens on work that is thrown away.",
            'Agent {{ $labels.gen_ai_agent_name }} spends {{ $value | printf "%.2f" }} tokens '
            f"for every useful token (threshold {TOKEN_AMPLIFICATION_MAX}): the rest goes to "
            "failed attempts, rejected outputs and failed runs.",
        ),
        alert(
            "AgentToolHiddenFailuresHigh",
            f"{R_HIDDEN_PER_CALL} > {HIDDEN_FAILURES_PER_CALL_MAX}",
            "15m",
            "warning",
            "A tool fails often, but the failures are absorbed and hidden from users.",
            'Tool {{ $labels.gen_ai_tool_name }} has {{ $value | printf "%.2f" }} absorbed '
            f"(hidden) failures per call (threshold {HIDDEN_FAILURES_PER_CALL_MAX}): retries and "
            "fallbacks hide a failing dependency.",
        ),
        alert(
            "AgentFallbackLastTierServing",
            f"{R_LAST_TIER} > 0",
            "5m",
            "warning",
            "A fallback chain is serving from its last tier.",
            "Fallback chain {{ $labels.agentrel_fallback_chain }} falls back to its last tier "
            '{{ $labels.agentrel_fallback_to_tier }} {{ $value | printf "%.2f" }} times per '
            "second: every better tier is failing and users get the last-resort answer.",
        ),
        alert(
            "AgentUnsafeRetries",
            f"{R_UNSAFE} > 0",
            "2m",
            "warning",
            "A tool declared not idempotent is being retried.",
            "Tool {{ $labels.gen_ai_tool_name }} (idempotent=False) is retried "
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


# --- dashboards ----------------------------------------------------------------------------------
DS = {"type": "prometheus", "uid": "${datasource}"}
RUN_SEL = f'{AGENT}=~"$agent", {COHORT}=~"$cohort"'
TOOL_SEL = f'{TOOL}=~"$tool"'


class Layout:
    """Places panels left to right on Grafana's 24-column grid."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.next_id = 1
        self.panels: list[dict[str, Any]] = []

    def add(self, panel: dict[str, Any], w: int, h: int = 8) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel["id"] = self.next_id
        self.next_id += 1
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_h = max(self.row_h, h)
        self.panels.append(panel)

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "id": self.next_id,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
            }
        )
        self.next_id += 1
        self.y += 1


def target(expr: str, legend: str, ref: str, **extra: Any) -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, **extra}


def panel(
    kind: str,
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    unit: str,
    *,
    options: dict[str, Any] | None = None,
    custom: dict[str, Any] | None = None,
    **defaults: Any,
) -> dict[str, Any]:
    fc_defaults: dict[str, Any] = {"unit": unit, **defaults}
    if custom is not None:
        fc_defaults["custom"] = custom
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": fc_defaults, "overrides": []},
        "options": options or {},
    }


def timeseries(title: str, description: str, targets: list[dict[str, Any]], unit: str,
               stack: bool = False, **defaults: Any) -> dict[str, Any]:  # fmt: skip
    custom: dict[str, Any] = {"drawStyle": "line", "fillOpacity": 10, "showPoints": "never"}
    if stack:
        custom.update({"stacking": {"mode": "normal", "group": "A"}, "fillOpacity": 60})
    return panel(
        "timeseries", title, description, targets, unit,
        options={"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                            "calcs": ["mean", "max"]},
                 "tooltip": {"mode": "multi", "sort": "desc"}},
        custom=custom, **defaults,
    )  # fmt: skip


def stat(title: str, description: str, expr: str, unit: str, **defaults: Any) -> dict[str, Any]:
    return panel(
        "stat", title, description, [target(expr, "", "A", instant=False)], unit,
        options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                 "colorMode": "value", "graphMode": "area", "textMode": "auto"},
        **defaults,
    )  # fmt: skip


def variables(*names: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {"selected": False, "text": "Prometheus", "value": "prometheus"},
            "hide": 0,
            "refresh": 1,
            "regex": "",
        }
    ]
    sources = {
        "agent": (f"label_values({RETRY_DEPTH}_count, {AGENT})", "Agent"),
        "cohort": (
            f'label_values({RETRY_DEPTH}_count{{{AGENT}=~"$agent"}}, {COHORT})',
            "Cohort",
        ),
        "tool": (f"label_values({TOOL_ATTEMPTS}_count, {TOOL})", "Tool"),
    }
    for name in names:
        query, label = sources[name]
        out.append(
            {
                "name": name,
                "label": label,
                "type": "query",
                "datasource": DS,
                "query": {"query": query, "refId": f"{name}-values"},
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "includeAll": True,
                "allValue": ".*",
                "multi": True,
                "hide": 0,
                "refresh": 2,
                "sort": 1,
                "regex": "",
            }
        )
    return out


def dashboard(uid: str, title: str, description: str, layout: Layout) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["agentrel", "llm", "agents"],
        "editable": True,
        "graphTooltip": 1,
        "id": None,
        "links": [
            {
                "title": "agentrel dashboards",
                "type": "dashboards",
                "tags": ["agentrel"],
                "asDropdown": False,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "panels": layout.panels,
        "refresh": "30s",
        "schemaVersion": 39,
        "templating": {"list": variables("agent", "cohort", "tool")},
        "time": {"from": "now-3h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "version": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
    }


def quantiles(rule: str, sel: str, by: str, title_fmt: str) -> list[dict[str, Any]]:
    by_le = f"{by}, le" if by else "le"
    return [
        target(
            f"histogram_quantile({q}, sum by ({by_le}) ({rule}{{{sel}}}))",
            title_fmt.format(q=f"p{int(q * 100)}"),
            ref,
        )
        for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
    ]


def overview() -> dict[str, Any]:
    lay = Layout()
    runs = f"{R_RUNS}{{{RUN_SEL}}}"
    lay.row("Headline: what users see and what agentrel sees")
    lay.add(stat("Runs", "Agent runs per second, all outcomes.", f"sum({runs})",
                 "reqps"), 4, 4)  # fmt: skip
    lay.add(
        stat(
            "Success rate (what users see)",
            "Share of runs that answered: success + recovered. This is what success rate "
            "and MTBF report.",
            f'sum({R_RUNS}{{{RUN_SEL}, {OUTCOME}=~"{SUCCEEDED_OUTCOMES}"}}) / sum({runs})',
            "percentunit", decimals=2,
        ), 5, 4,
    )  # fmt: skip
    lay.add(
        stat(
            "Self-healing rate",
            "recovered / (success + recovered): the share of successes that needed a retry, "
            "fallback or re-prompt.",
            f'sum({R_RUNS}{{{RUN_SEL}, {OUTCOME}="{cat.RECOVERED}"}}) / '
            f'sum({R_RUNS}{{{RUN_SEL}, {OUTCOME}=~"{SUCCEEDED_OUTCOMES}"}})',
            "percentunit", decimals=1,
            thresholds={"mode": "absolute", "steps": [
                {"color": "green", "value": None},
                {"color": "orange", "value": SELF_HEALING_RATE_MAX}]},
        ), 5, 4,
    )  # fmt: skip
    lay.add(
        stat(
            "Token amplification",
            "All tokens / useful tokens (1.0 = nothing wasted), fleet-wide from "
            "agentrel_tokens_total.",
            f"sum({R_TOKENS}{{{RUN_SEL}}}) / "
            f'sum({R_TOKENS}{{{RUN_SEL}, {DISPOSITION}="{cat.USEFUL}"}})',
            "suffix:×", decimals=2,
            thresholds={"mode": "absolute", "steps": [
                {"color": "green", "value": None},
                {"color": "orange", "value": TOKEN_AMPLIFICATION_MAX}]},
        ), 5, 4,
    )  # fmt: skip
    lay.add(
        stat(
            "p95 retry depth",
            "95th percentile of failures absorbed or fought inside one run.",
            f"histogram_quantile(0.95, sum by (le) ({R_DEPTH_BUCKET}{{{RUN_SEL}}}))",
            "short", decimals=1,
            thresholds={"mode": "absolute", "steps": [
                {"color": "green", "value": None},
                {"color": "orange", "value": RETRY_DEPTH_P95_MAX}]},
        ), 5, 4,
    )  # fmt: skip

    lay.row("Runs")
    lay.add(timeseries(
        "Runs by outcome",
        "success: no failure inside; recovered: succeeded after absorbing failures; "
        "exhausted: failed after retries or fallbacks; failed: failed with no recovery tried.",
        [target(f"sum by ({OUTCOME}) ({runs})", f"{{{{{OUTCOME}}}}}", "A")],
        "reqps", stack=True), 12)  # fmt: skip
    lay.add(timeseries(
        "Self-healing rate by cohort",
        "recovered / (success + recovered) per agent and cohort.",
        [target(f"{R_SELF_HEALING_COHORT}{{{RUN_SEL}}}", f"{{{{{AGENT}}}}} / {{{{{COHORT}}}}}",
                "A")],
        "percentunit", min=0, max=1), 12)  # fmt: skip
    lay.add(timeseries(
        "What MTBF sees: surfaced failures",
        "Runs that failed visibly (outcome exhausted or failed), per second. This is all a "
        "success rate or MTBF counts. Same unit and axis as the panel on the right.",
        [target(f'sum by ({COHORT}) ({R_RUNS}{{{RUN_SEL}, {OUTCOME}=~"{FAILED_OUTCOMES}"}})',
                f"{{{{{COHORT}}}}}", "A")],
        "suffix: failures/s", min=0), 12)  # fmt: skip
    lay.add(timeseries(
        "What agentrel sees: absorbed failures",
        "Failures absorbed inside runs that still succeeded, per second (retry-depth sum of "
        "successful runs, by cohort), and fleet-wide tool failures with absorbed=\"true\" "
        "(tool metrics carry no cohort label).",
        [target(f"sum by ({COHORT}) ({R_ABSORBED}{{{RUN_SEL}}})", f"{{{{{COHORT}}}}}", "A"),
         target(f'sum({R_FAILURES}{{{ABSORBED}="true"}})', "all tools (absorbed=true)", "B")],
        "suffix: failures/s", min=0), 12)  # fmt: skip

    lay.row("Retry depth and attempts")
    lay.add(timeseries(
        "Retry depth p50 / p95 / p99",
        "Failures inside a run (failed attempts and rejections), whatever the outcome.",
        quantiles(R_DEPTH_BUCKET, RUN_SEL, "", "{q}"), "short", min=0), 8)  # fmt: skip
    heat = panel(
        "heatmap", "Retry depth distribution (click an exemplar for its trace)",
        "Runs per retry-depth bucket. Exemplars carry the trace id of a run that landed in the "
        "bucket. Queries the raw histogram: recording rules do not keep exemplars.",
        [target(f"sum by (le) (increase({RETRY_DEPTH}_bucket{{{RUN_SEL}}}[$__rate_interval]))",
                "{{le}}", "A", format="heatmap", exemplar=True)],
        "short",
        options={"calculate": False, "cellGap": 1, "color": {"mode": "scheme",
                 "scheme": "Oranges", "exponent": 0.5, "steps": 64, "fill": "dark-orange",
                 "reverse": False, "scale": "exponential"},
                 "exemplars": {"color": "rgba(31, 120, 193, 0.9)"},
                 "filterValues": {"le": 1e-9}, "legend": {"show": True},
                 "rowsFrame": {"layout": "le"}, "showValue": "never",
                 "tooltip": {"mode": "single", "yHistogram": True, "showColorScale": False},
                 "yAxis": {"axisPlacement": "left", "reverse": False, "unit": "short"}},
    )  # fmt: skip
    lay.add(heat, 8)
    lay.add(timeseries(
        "Attempts per run",
        "Mean tool and LLM attempts per run, failed attempts included, by outcome.",
        [target(f"sum by ({OUTCOME}) ({R_ATTEMPTS_SUM}{{{RUN_SEL}}}) / "
                f"sum by ({OUTCOME}) ({runs})", f"{{{{{OUTCOME}}}}}", "A")],
        "short", min=0), 8)  # fmt: skip
    lay.add(timeseries(
        "Recovery time p50 / p95 / p99",
        "Time a run spent in failed attempts and backoff waits (runs with a failure).",
        quantiles(R_RECOVERY_BUCKET, RUN_SEL, "", "{q}"), "s", min=0), 12)  # fmt: skip
    lay.add(timeseries(
        "Per-run token amplification p50 / p95 / p99",
        "All / useful tokens of each successful run.",
        quantiles(R_AMPLIFICATION_BUCKET, RUN_SEL, "", "{q}"), "suffix:×", min=1),
        12)  # fmt: skip

    lay.row("Tokens")
    lay.add(timeseries(
        "Token amplification",
        "rate(all tokens) / rate(useful tokens), per cohort. 1.0 = nothing wasted.",
        [target(f"sum by ({COHORT}) ({R_TOKENS}{{{RUN_SEL}}}) / "
                f'sum by ({COHORT}) ({R_TOKENS}{{{RUN_SEL}, {DISPOSITION}="{cat.USEFUL}"}})',
                f"{{{{{COHORT}}}}}", "A"),
         target(f"{R_AMPLIFICATION}{{{AGENT}=~\"$agent\"}}", f"{{{{{AGENT}}}}} (all cohorts)",
                "B")],
        "suffix:×", min=1), 12)  # fmt: skip
    lay.add(timeseries(
        "Wasted tokens per second",
        "Tokens spent on failed attempts, rejected outputs and failed runs.",
        [target(f'sum by ({COHORT}) ({R_TOKENS}{{{RUN_SEL}, {DISPOSITION}="{cat.WASTED}"}})',
                f"{{{{{COHORT}}}}}", "A")],
        "suffix: tokens/s", stack=True, min=0), 12)  # fmt: skip

    lay.row("Fallbacks and unsafe retries")
    lay.add(timeseries(
        "Fallback tier serving",
        "Fallback activations per second by chain and the tier that took over. The last tier "
        f"(to_tier matching \"{LAST_TIER_REGEX}\") is the one AgentFallbackLastTierServing "
        "watches. Fallback metrics carry no agent or cohort label.",
        [target(f"sum by ({CHAIN}, {TO_TIER}) ({R_FALLBACKS})",
                f"{{{{{CHAIN}}}}} → {{{{{TO_TIER}}}}}", "A"),
         target(f"{R_LAST_TIER}", f"{{{{{CHAIN}}}}} last tier", "B")],
        "suffix: fallbacks/s", min=0), 12)  # fmt: skip
    lay.add(timeseries(
        "Unsafe retries",
        "Retries of tools declared idempotent=False: each may duplicate a side effect.",
        [target(f"sum by ({TOOL}) ({R_UNSAFE}{{{TOOL_SEL}}})", f"{{{{{TOOL}}}}}", "A")],
        "suffix: retries/s", min=0), 12)  # fmt: skip
    return dashboard(
        "agentrel-overview", "agentrel / Overview",
        "Agent runs by outcome, self-healing, retry depth, token amplification, fallbacks.",
        lay,
    )  # fmt: skip


def tools() -> dict[str, Any]:
    lay = Layout()
    lay.row("Calls")
    lay.add(timeseries(
        "Calls by outcome",
        "Logical tool and LLM calls per second, per tool and outcome.",
        [target(f"sum by ({TOOL}, {OUTCOME}) ({R_CALLS}{{{TOOL_SEL}}})",
                f"{{{{{TOOL}}}}} {{{{{OUTCOME}}}}}", "A")],
        "reqps", stack=True), 12)  # fmt: skip
    lay.add(timeseries(
        "Attempts per call",
        "Mean physical attempts per logical call (1.0 = no retries), and p95.",
        [target(f"{R_ATTEMPTS_PER_CALL}{{{TOOL_SEL}}}", f"{{{{{TOOL}}}}} mean", "A"),
         target(f"histogram_quantile(0.95, sum by ({TOOL}, le) "
                f"({R_TOOL_ATTEMPTS_BUCKET}{{{TOOL_SEL}}}))", f"{{{{{TOOL}}}}} p95", "B")],
        "short", min=1), 12)  # fmt: skip

    lay.row("Failures: absorbed vs surfaced")
    lay.add(timeseries(
        "Absorbed failures by error.type",
        "Failed attempts inside runs that still succeeded: invisible to users and to MTBF.",
        [target(f'sum by ({TOOL}, {ERROR}) ({R_FAILURES}{{{TOOL_SEL}, {ABSORBED}="true"}})',
                f"{{{{{TOOL}}}}} {{{{{ERROR}}}}}", "A")],
        "suffix: failures/s", stack=True, min=0), 8)  # fmt: skip
    lay.add(timeseries(
        "Surfaced failures by error.type",
        "Failed attempts inside runs that failed: the ones users saw.",
        [target(f'sum by ({TOOL}, {ERROR}) ({R_FAILURES}{{{TOOL_SEL}, {ABSORBED}="false"}})',
                f"{{{{{TOOL}}}}} {{{{{ERROR}}}}}", "A")],
        "suffix: failures/s", stack=True, min=0), 8)  # fmt: skip
    lay.add(timeseries(
        "Hidden failures per call",
        "Absorbed failures per logical call; AgentToolHiddenFailuresHigh fires above "
        f"{HIDDEN_FAILURES_PER_CALL_MAX}.",
        [target(f"{R_HIDDEN_PER_CALL}{{{TOOL_SEL}}}", f"{{{{{TOOL}}}}}", "A")],
        "short", min=0), 8)  # fmt: skip

    lay.row("Latency and backoff")
    lay.add(timeseries(
        "Tool duration p50 / p95 / p99",
        "Duration of a logical call, all its attempts and backoff waits included.",
        quantiles(R_DURATION_BUCKET, TOOL_SEL, TOOL, f"{{{{{TOOL}}}}} {{q}}"), "s", min=0),
        8)  # fmt: skip
    lay.add(timeseries(
        "Retry delay p50 / p95 / p99",
        "Backoff waits between attempts.",
        quantiles(R_DELAY_BUCKET, TOOL_SEL, TOOL, f"{{{{{TOOL}}}}} {{q}}"), "s", min=0),
        8)  # fmt: skip
    lay.add(timeseries(
        "Time spent backing off",
        "Seconds of backoff per second, per tool (1.0 = one call always waiting).",
        [target(f"{R_DELAY_SUM}{{{TOOL_SEL}}}", f"{{{{{TOOL}}}}}", "A")],
        "s", min=0), 8)  # fmt: skip

    lay.row("Side effects and run context")
    lay.add(timeseries(
        "Unsafe retries",
        "Retries of tools declared idempotent=False.",
        [target(f"sum by ({TOOL}) ({R_UNSAFE}{{{TOOL_SEL}}})", f"{{{{{TOOL}}}}}", "A")],
        "suffix: retries/s", min=0), 12)  # fmt: skip
    lay.add(timeseries(
        "Runs by outcome (agent, cohort)",
        "Run context for the selected agents and cohorts; tool metrics carry no agent or "
        "cohort label.",
        [target(f"sum by ({OUTCOME}) ({R_RUNS}{{{RUN_SEL}}})", f"{{{{{OUTCOME}}}}}", "A")],
        "reqps", stack=True), 12)  # fmt: skip
    return dashboard(
        "agentrel-tools", "agentrel / Tools",
        "Per tool: attempts per call, absorbed vs surfaced failures, duration, retry delay.",
        lay,
    )  # fmt: skip


# --- output --------------------------------------------------------------------------------------
HEADER = (
    "# Generated by tools/ops/generate.py from agentrel._catalogue: do not edit by hand.\n"
    "# Change the generator (or its knobs at the top) and run `python3 tools/ops/generate.py`.\n"
)


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render() -> dict[str, str]:
    def dump_yaml(groups: list[dict[str, Any]]) -> str:
        body = yaml.dump({"groups": groups}, Dumper=_Dumper, sort_keys=False, width=1000,
                         allow_unicode=True)  # fmt: skip
        return HEADER + body

    def dump_json(d: dict[str, Any]) -> str:
        return json.dumps(d, indent=2, ensure_ascii=False) + "\n"

    return {
        "prometheus/agentrel.rules.yml": dump_yaml(recording_groups()),
        "prometheus/agentrel.alerts.yml": dump_yaml(alert_groups()),
        "dashboards/agentrel-overview.json": dump_json(overview()),
        "dashboards/agentrel-tools.json": dump_json(tools()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if files are out of date")
    parser.add_argument("--out", type=Path, default=ROOT, help="root to write into")
    args = parser.parse_args(argv)
    stale = []
    for rel, text in render().items():
        path = args.out / rel
        if args.check:
            old = path.read_text(encoding="utf-8") if path.exists() else ""
            if old != text:
                stale.append(rel)
                sys.stdout.writelines(
                    difflib.unified_diff(old.splitlines(True), text.splitlines(True), rel, rel)
                )
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python3 tools/ops/generate.py",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
