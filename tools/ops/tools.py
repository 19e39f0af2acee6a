"""dashboards/agentrel-tools.json: per tool, attempts per call, absorbed vs surfaced failures,
duration, retry delay."""

from __future__ import annotations

from typing import Any

from . import budgets, knobs
from ._series import ABSORBED, ERROR, OUTCOME, TOOL
from .dashboard import RUN_SEL, TOOL_SEL, Layout, dashboard, quantiles, target, timeseries
from .rules import (
    R_ATTEMPTS_PER_CALL,
    R_CALLS,
    R_DELAY_BUCKET,
    R_DELAY_SUM,
    R_DURATION_BUCKET,
    R_FAILURES,
    R_FIRST_CALL_BUCKET,
    R_HIDDEN_PER_CALL,
    R_RUNS,
    R_TOOL_ATTEMPTS_BUCKET,
    R_UNSAFE,
)


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
        f"{knobs.HIDDEN_FAILURES_PER_CALL_MAX}.",
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

    lay.row("Cold start")
    first = f"sum by ({TOOL}, le) ({R_FIRST_CALL_BUCKET}{{{TOOL_SEL}}})"
    lay.add(timeseries(
        "First call vs steady state p95",
        "p95 duration of the first call of each tool in a process (agentrel.tool.first_call."
        "duration: one per tool per process, processes of the last "
        f"{knobs.COLD_START_WINDOW} included) beside the p95 of all its calls "
        "(gen_ai.execute_tool.duration, last 5m). LLM clients and fallback chains have a "
        "first-call line only.",
        [target(f"histogram_quantile(0.95, {first})", f"{{{{{TOOL}}}}} first call p95", "A"),
         target(f"histogram_quantile(0.95, sum by ({TOOL}, le) "
                f"({R_DURATION_BUCKET}{{{TOOL_SEL}}}))", f"{{{{{TOOL}}}}} steady p95", "B")],
        "s", min=0), 12)  # fmt: skip
    lay.add(timeseries(
        "First calls seen",
        "Processes whose first call of the tool is in the p95 beside it (last "
        f"{knobs.COLD_START_WINDOW}): a p95 of a few cold starts is close to their maximum.",
        [target(f'sum by ({TOOL}) ({R_FIRST_CALL_BUCKET}{{{TOOL_SEL}, le="+Inf"}})',
                f"{{{{{TOOL}}}}}", "A")],
        "short", min=0, decimals=0), 12)  # fmt: skip

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
    budgets.tools_row(lay)
    return dashboard(
        "agentrel-tools", "agentrel / Tools",
        "Per tool: attempts per call, absorbed vs surfaced failures, duration, retry delay, "
        "cold starts.",
        lay,
    )  # fmt: skip
