"""A small Grafana DSL: panels placed left to right on the 24-column grid, Prometheus targets
on the ``${datasource}`` variable, and the agent / cohort / tool variables."""

from __future__ import annotations

from typing import Any

from ._series import AGENT, COHORT, RETRY_DEPTH, TOOL, TOOL_DURATION, series

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
        "agent": (f"label_values({series(RETRY_DEPTH, '_count')}, {AGENT})", "Agent"),
        "cohort": (
            f'label_values({series(RETRY_DEPTH, "_count")}{{{AGENT}=~"$agent"}}, {COHORT})',
            "Cohort",
        ),
        # Tools only: gen_ai.execute_tool.duration is recorded for tool calls, never for LLM
        # calls or fallback chains (which share gen_ai_tool_name on agentrel_tool_attempts).
        "tool": (f"label_values({series(TOOL_DURATION, '_count')}, {TOOL})", "Tool"),
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
