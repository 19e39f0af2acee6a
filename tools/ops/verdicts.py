"""Verdicts after the run (``agentrel.verdict``): their recording rules, their alert and the
Overview dashboard's "Verdicts after the run" row.

A verdict arrives after its run closed (minutes or hours later), labelled with the outcome the
run closed with, so the questions are asked per outcome at close: of the runs called clean or
recovered, how many were later found wrong, and are recovered runs wrong more often than
clean ones.
"""

from __future__ import annotations

from typing import Any

from . import knobs
from ._series import AGENT, COHORT, OUTCOME, RETRY_DEPTH, SUCCEEDED_OUTCOMES, cat, own, series
from ._series import template as label_template
from .alerts import alert
from .dashboard import Layout, target, timeseries
from .rules import _rules, ratio

VERDICTS = cat.VERDICTS
VERDICT = cat.prometheus_label(cat.VERDICT)
SOURCE = cat.prometheus_label(cat.VERDICT_SOURCE)
W = knobs.VERDICT_WINDOW

R_VERDICTS = f"agent_cohort_outcome_verdict_source:{own('verdicts')}:rate{W}"
#: wrong / all verdicts, per agent and outcome at close
R_WRONG_SHARE = f"agent_outcome:{own('verdicts_wrong')}:ratio_rate{W}"
#: wrong verdicts / runs closed, per agent and outcome at close
R_FOUND_WRONG = f"agent_outcome:{own('runs_found_wrong')}:ratio_rate{W}"
#: wrong / all verdicts on runs that passed (success or recovered), per agent
R_PASSED_WRONG = f"agent:{own('verdicts_passed_wrong')}:ratio_rate{W}"
#: verdicts on runs that passed in the window, per agent (the alert's minimum volume)
R_PASSED_VERDICTS = f"agent:{own('verdicts_passed')}:increase{W}"


def _recording() -> list[tuple[Any, ...]]:
    ao = f"{AGENT}, {OUTCOME}"
    wrong = f'{R_VERDICTS}{{{VERDICT}="{cat.WRONG}"}}'
    passed = f'{OUTCOME}=~"{SUCCEEDED_OUTCOMES}"'
    return [
        (
            R_VERDICTS,
            f"sum by ({AGENT}, {COHORT}, {OUTCOME}, {VERDICT}, {SOURCE}) "
            f"(rate({series(VERDICTS)}[{W}]))",
        ),
        (R_WRONG_SHARE, ratio(f"sum by ({ao}) ({wrong})", f"sum by ({ao}) ({R_VERDICTS})")),
        (
            R_FOUND_WRONG,
            ratio(
                f"sum by ({ao}) ({wrong})",
                f"sum by ({ao}) (rate({series(RETRY_DEPTH, '_count')}[{W}]))",
            ),
        ),
        (
            R_PASSED_WRONG,
            ratio(
                f'sum by ({AGENT}) ({R_VERDICTS}{{{passed}, {VERDICT}="{cat.WRONG}"}})',
                f"sum by ({AGENT}) ({R_VERDICTS}{{{passed}}})",
            ),
        ),
        (
            R_PASSED_VERDICTS,
            f"sum by ({AGENT}) (increase({series(VERDICTS)}{{{passed}}}[{W}]))",
        ),
    ]


def recording_groups() -> list[dict[str, Any]]:
    return [{"name": "agentrel.verdicts.rules", "rules": _rules(_recording())}]


def alert_groups() -> list[dict[str, Any]]:
    agent = label_template(AGENT)
    return [
        {
            "name": "agentrel.verdicts.alerts",
            "rules": [
                alert(
                    "AgentPassedRunsFoundWrong",
                    f"{R_PASSED_WRONG} > {knobs.PASSED_WRONG_SHARE_MAX}\n"
                    f"and on ({AGENT})\n"
                    f"{R_PASSED_VERDICTS} >= {knobs.PASSED_VERDICTS_MIN}",
                    "30m",
                    "warning",
                    "Runs that passed are later found wrong.",
                    f"{{{{ $value | humanizePercentage }}}} of the verdicts given over the last "
                    f"{W} to runs of agent {agent} that passed (success or recovered) say they "
                    f"were wrong (threshold {knobs.PASSED_WRONG_SHARE_MAX:.0%}, at least "
                    f"{knobs.PASSED_VERDICTS_MIN} verdicts): the success rate over-counts.",
                ),
            ],
        }
    ]


def overview_row(lay: Layout) -> None:
    """The Overview dashboard's "Verdicts after the run" row."""
    agent_sel = f'{AGENT}=~"$agent"'
    passed = f'{OUTCOME}=~"{SUCCEEDED_OUTCOMES}"'
    lay.row("Verdicts after the run")
    lay.add(timeseries(
        "Runs later found wrong, by outcome at close",
        f"Wrong verdicts / runs closed, over {W}, per agent and the outcome the runs closed "
        "with: of the runs called clean (success) or recovered, the share later found wrong "
        "(a thumbs down, a reopened ticket, an offline judge: agentrel.verdict). Verdicts "
        "arrive after their runs, so read it over windows longer than that delay.",
        [target(f"{R_FOUND_WRONG}{{{agent_sel}, {passed}}}",
                f"{{{{{AGENT}}}}} / {{{{{OUTCOME}}}}}", "A")],
        "percentunit", min=0), 8)  # fmt: skip
    lay.add(timeseries(
        "Found wrong: recovered vs clean runs",
        f"Share of the verdicts saying wrong, over {W}, per outcome at close: recovered runs "
        "above clean ones means self-healing produced wrong answers. "
        f"AgentPassedRunsFoundWrong fires when runs that passed are found wrong above "
        f"{knobs.PASSED_WRONG_SHARE_MAX:.0%}.",
        [target(f"{R_WRONG_SHARE}{{{agent_sel}, {passed}}}",
                f"{{{{{AGENT}}}}} / {{{{{OUTCOME}}}}}", "A"),
         target(f"{R_PASSED_WRONG}{{{agent_sel}}}", f"{{{{{AGENT}}}}} (passed)", "B")],
        "percentunit", min=0, max=1,
        thresholds={"mode": "absolute", "steps": [
            {"color": "green", "value": None},
            {"color": "orange", "value": knobs.PASSED_WRONG_SHARE_MAX}]}), 8)  # fmt: skip
    lay.add(timeseries(
        "Verdicts per hour by verdict and source",
        "Verdicts received per hour by verdict and source (each after its allowlist: "
        "configure(verdicts=..., verdict_sources=...)).",
        [target(f'3600 * sum by ({VERDICT}, {SOURCE}) ({R_VERDICTS}{{{agent_sel}, '
                f'{COHORT}=~"$cohort"}})',
                f"{{{{{VERDICT}}}}} / {{{{{SOURCE}}}}}", "A")],
        "suffix: /h", stack=True, min=0), 8)  # fmt: skip
