"""dashboards/agentrel-overview.json: runs by outcome, self-healing, retry depth, tokens,
fallbacks."""

from __future__ import annotations

from typing import Any

from . import knobs, models, verdicts
from ._series import (
    ABSORBED,
    AGENT,
    CHAIN,
    COHORT,
    DISPOSITION,
    FAILED_OUTCOMES,
    MODEL,
    OUTCOME,
    RETRY_DEPTH,
    SUCCEEDED_OUTCOMES,
    TO_TIER,
    TOKENS,
    TOOL,
    cat,
    series,
)
from .dashboard import (
    RUN_SEL,
    TOOL_SEL,
    Layout,
    dashboard,
    panel,
    quantiles,
    stat,
    target,
    timeseries,
)
from .rules import (
    R_ABSORBED,
    R_AMPLIFICATION,
    R_AMPLIFICATION_BUCKET,
    R_ATTEMPTS_SUM,
    R_DEPTH_BUCKET,
    R_FAILURES,
    R_FALLBACKS,
    R_INVOKE_INFERENCE_CALLS_BUCKET,
    R_INVOKE_TOOL_CALLS_BUCKET,
    R_LAST_TIER,
    R_RECOVERY_BUCKET,
    R_RUNS,
    R_SELF_HEALING_COHORT,
    R_SPEND_HOURLY,
    R_TOKENS,
    R_UNPRICED,
    R_UNSAFE,
    R_WASTED_SPEND_HOURLY,
    R_WASTED_SPEND_SHARE,
    R_WASTED_SPEND_SHARE_COHORT,
)


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
                {"color": "orange", "value": knobs.SELF_HEALING_RATE_MAX}]},
        ), 5, 4,
    )  # fmt: skip
    lay.add(
        stat(
            "Token amplification",
            "All tokens / useful tokens (1.0 = nothing wasted), fleet-wide from "
            f"{series(TOKENS)}.",
            f"sum({R_TOKENS}{{{RUN_SEL}}}) / "
            f'sum({R_TOKENS}{{{RUN_SEL}, {DISPOSITION}="{cat.USEFUL}"}})',
            "suffix:×", decimals=2,
            thresholds={"mode": "absolute", "steps": [
                {"color": "green", "value": None},
                {"color": "orange", "value": knobs.TOKEN_AMPLIFICATION_MAX}]},
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
                {"color": "orange", "value": knobs.RETRY_DEPTH_P95_MAX}]},
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
    buckets = series(RETRY_DEPTH, "_bucket")
    heat = panel(
        "heatmap", "Retry depth distribution (click an exemplar for its trace)",
        "Runs per retry-depth bucket. Exemplars carry the trace id of a run that landed in the "
        "bucket. Queries the raw histogram: recording rules do not keep exemplars.",
        [target(f"sum by (le) (increase({buckets}{{{RUN_SEL}}}[$__rate_interval]))",
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
    agent_sel = f'{AGENT}=~"$agent"'
    lay.add(timeseries(
        "Calls per run (GenAI semconv) p50 / p95",
        "gen_ai.invoke_agent.tool_calls and .inference_calls: tool and LLM calls made in one "
        "run, failed attempts included, by agent. The conventions cannot tell a retry from a "
        "first try; retry depth above can. These metrics carry no cohort label.",
        [target(f"histogram_quantile({q}, sum by ({AGENT}, le) ({rule}{{{agent_sel}}}))",
                f"{{{{{AGENT}}}}} {what} p{int(q * 100)}", ref)
         for ref, (q, rule, what) in zip("ABCD", (
             (0.5, R_INVOKE_TOOL_CALLS_BUCKET, "tool calls"),
             (0.95, R_INVOKE_TOOL_CALLS_BUCKET, "tool calls"),
             (0.5, R_INVOKE_INFERENCE_CALLS_BUCKET, "inference calls"),
             (0.95, R_INVOKE_INFERENCE_CALLS_BUCKET, "inference calls")), strict=True)],
        "short", min=0), 24)  # fmt: skip

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

    lay.row("Spend (priced models only)")
    lay.add(timeseries(
        "Spend per hour",
        "LLM spend (agentrel.cost) in US dollars per hour, useful and wasted tokens, per agent "
        "and cohort. Tokens of models with no known price are not in it (see Unpriced tokens).",
        [target(f"{R_SPEND_HOURLY}{{{RUN_SEL}}}", f"{{{{{AGENT}}}}} / {{{{{COHORT}}}}}", "A")],
        "currencyUSD", stack=True, min=0), 8)  # fmt: skip
    lay.add(timeseries(
        "Wasted spend per hour",
        "US dollars per hour paid for wasted tokens (failed attempts, rejected outputs, "
        "failed runs), per agent and cohort: the bill for the failures self-healing absorbed.",
        [target(f"{R_WASTED_SPEND_HOURLY}{{{RUN_SEL}}}", f"{{{{{AGENT}}}}} / {{{{{COHORT}}}}}",
                "A")],
        "currencyUSD", stack=True, min=0), 8)  # fmt: skip
    lay.add(timeseries(
        "Share of spend wasted",
        "Wasted / all spend per agent and cohort, and per agent (all cohorts); "
        f"AgentWastedSpendShareHigh fires above {knobs.WASTED_SPEND_SHARE_MAX:.0%}.",
        [target(f"{R_WASTED_SPEND_SHARE_COHORT}{{{RUN_SEL}}}",
                f"{{{{{AGENT}}}}} / {{{{{COHORT}}}}}", "A"),
         target(f"{R_WASTED_SPEND_SHARE}{{{agent_sel}}}", f"{{{{{AGENT}}}}} (all cohorts)",
                "B")],
        "percentunit", min=0, max=1,
        thresholds={"mode": "absolute", "steps": [
            {"color": "green", "value": None},
            {"color": "orange", "value": knobs.WASTED_SPEND_SHARE_MAX}]}), 8)  # fmt: skip
    lay.add(timeseries(
        "Unpriced tokens",
        "Tokens per second of models with no known price, by request model: counted, never "
        "guessed, and missing from the spend above. Price them with configure(prices=...). "
        "This metric carries no agent or cohort label.",
        [target(f"sum by ({MODEL}) ({R_UNPRICED})", f"{{{{{MODEL}}}}}", "A")],
        "suffix: tokens/s", min=0), 24)  # fmt: skip

    lay.row("Fallbacks and unsafe retries")
    lay.add(timeseries(
        "Fallback tier serving",
        "Fallback activations per second by chain and the tier that took over. The last tier "
        "(a tier the chain never fell back from, in a chain exhausted within the last "
        f"{knobs.LAST_TIER_EVIDENCE_WINDOW}) is the one AgentFallbackLastTierServing watches. "
        "Fallback metrics carry no agent or cohort label.",
        [target(f"sum by ({CHAIN}, {TO_TIER}) ({R_FALLBACKS})",
                f"{{{{{CHAIN}}}}} → {{{{{TO_TIER}}}}}", "A"),
         target(f"{R_LAST_TIER}", f"{{{{{CHAIN}}}}} last tier", "B")],
        "suffix: fallbacks/s", min=0), 12)  # fmt: skip
    lay.add(timeseries(
        "Unsafe retries",
        "Retries of tools declared idempotent=False: each may duplicate a side effect.",
        [target(f"sum by ({TOOL}) ({R_UNSAFE}{{{TOOL_SEL}}})", f"{{{{{TOOL}}}}}", "A")],
        "suffix: retries/s", min=0), 12)  # fmt: skip
    verdicts.overview_row(lay)
    models.overview_row(lay)
    return dashboard(
        "agentrel-overview", "agentrel / Overview",
        "Agent runs by outcome, self-healing, retry depth, token amplification, spend, "
        "fallbacks.",
        lay,
    )  # fmt: skip
