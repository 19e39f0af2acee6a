"""The model changed under you: which response model serves each request model, an alert when
a request model starts being served by a response model not seen in the previous window, and
the Overview's "Served models" row (which model and when, beside the runs' retry depth and
token amplification before and after)."""

from __future__ import annotations

from typing import Any

from . import knobs
from ._series import AGENT, MODEL, cat, own, series
from ._series import template as label_template
from .alerts import alert
from .dashboard import Layout, target, timeseries
from .rules import R_AMPLIFICATION, R_DEPTH_P95, _rules

RESPONSE = cat.prometheus_label(cat.RESPONSE_MODEL)
OPERATION_DURATION = cat.CLIENT_OPERATION_DURATION

#: LLM operations per second by request model and the response model that served them
R_SERVED = f"request_response:{own('llm_operations')}:rate5m"


def _recording() -> list[tuple[Any, ...]]:
    return [
        (
            R_SERVED,
            f"sum by ({MODEL}, {RESPONSE}) (rate({series(OPERATION_DURATION, '_count')}[5m]))",
        ),
    ]


def recording_groups() -> list[dict[str, Any]]:
    return [{"name": "agentrel.models.rules", "rules": _rules(_recording())}]


def new_response_model_expr() -> str:
    """Pairs served now whose response model was not served for that request model in the
    lookback window ending ``MODEL_NEW_FOR`` ago, while the request model was."""
    past = f"present_over_time({R_SERVED}[{knobs.MODEL_LOOKBACK}] offset {knobs.MODEL_NEW_FOR})"
    return (
        f'{R_SERVED}{{{RESPONSE}!=""}}\n'
        f"unless on ({MODEL}, {RESPONSE})\n{past}\n"
        f"and on ({MODEL})\n{past}"
    )


def alert_groups() -> list[dict[str, Any]]:
    req, resp = label_template(MODEL), label_template(RESPONSE)
    return [
        {
            "name": "agentrel.models.alerts",
            "rules": [
                alert(
                    "AgentServedModelChanged",
                    new_response_model_expr(),
                    "5m",
                    "warning",
                    "A request model is served by a response model not seen before.",
                    f"Requests for model {req} are answered by {resp} "
                    f'({{{{ $value | printf "%.2f" }}}} operations per second), which did not '
                    f"serve them in the {knobs.MODEL_LOOKBACK} before the last "
                    f"{knobs.MODEL_NEW_FOR}: the provider changed the model under you.",
                ),
            ],
        }
    ]


def overview_row(lay: Layout) -> None:
    """The Overview dashboard's "Served models" row."""
    agent_sel = f'{AGENT}=~"$agent"'
    lay.row("Served models: the model changed under you")
    lay.add(timeseries(
        "Served model per request model",
        "LLM operations per second by request model and the response model the provider "
        "answered with (gen_ai.response.model): a new line is a new model behind the same "
        "name. AgentServedModelChanged fires for a response model not seen in the "
        f"{knobs.MODEL_LOOKBACK} before the last {knobs.MODEL_NEW_FOR}.",
        [target(f"{R_SERVED}", f"{{{{{MODEL}}}}} → {{{{{RESPONSE}}}}}", "A")],
        "reqps", min=0), 12)  # fmt: skip
    lay.add(timeseries(
        "Retry depth p95 and token amplification around a model change",
        "p95 retry depth and token amplification per agent, on the same time axis as the "
        "served models: compare before and after a response model changed.",
        [target(f'{R_DEPTH_P95}{{{agent_sel}, quantile="0.95"}}',
                f"{{{{{AGENT}}}}} retry depth p95", "A"),
         target(f"{R_AMPLIFICATION}{{{agent_sel}}}", f"{{{{{AGENT}}}}} amplification", "B")],
        "short", min=0), 12)  # fmt: skip
