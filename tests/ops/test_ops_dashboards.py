"""The Grafana dashboards: stable uids, variables, datasource, units, required panels."""

from __future__ import annotations

import pytest

from .conftest import dashboards, panels

EXPECTED = {
    "agentrel-overview.json": "agentrel-overview",
    "agentrel-tools.json": "agentrel-tools",
}
OVERVIEW_PANELS = {
    "Runs by outcome",
    "Self-healing rate",
    "Self-healing rate by cohort",
    "What MTBF sees: surfaced failures",
    "What agentrel sees: absorbed failures",
    "Retry depth p50 / p95 / p99",
    "Retry depth distribution (click an exemplar for its trace)",
    "Attempts per run",
    "Token amplification",
    "Wasted tokens per second",
    "Fallback tier serving",
    "Unsafe retries",
    "Spend per hour",
    "Wasted spend per hour",
    "Share of spend wasted",
    "Unpriced tokens",
    "Calls per run (GenAI semconv) p50 / p95",
    "Runs later found wrong, by outcome at close",
    "Found wrong: recovered vs clean runs",
    "Verdicts per hour by verdict and source",
    "Served model per request model",
    "Retry depth p95 and token amplification around a model change",
}
TOOLS_PANELS = {
    "Attempts per call",
    "Absorbed failures by error.type",
    "Surfaced failures by error.type",
    "Tool duration p50 / p95 / p99",
    "Retry delay p50 / p95 / p99",
    "First call vs steady state p95",
    "Retry share of attempts",
}


def test_both_dashboards_with_stable_uids() -> None:
    """Each file has its fixed uid (links and provisioning depend on it) and no numeric id."""
    found = dashboards()
    assert {name: d["uid"] for name, d in found.items()} == EXPECTED
    assert all(d["id"] is None for d in found.values())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_variables(name: str) -> None:
    """A Prometheus datasource variable, then multi-value agent, cohort and tool variables
    that read from it and default to All."""
    variables = {v["name"]: v for v in dashboards()[name]["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for var in ("agent", "cohort", "tool"):
        v = variables[var]
        assert v["type"] == "query" and v["multi"] and v["includeAll"]
        assert v["allValue"] == ".*"
        assert v["datasource"]["uid"] == "${datasource}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_panel_queries_the_datasource_variable_with_a_unit(name: str) -> None:
    """Every query panel and target uses ${datasource}; every panel sets a unit."""
    for panel in panels(dashboards()[name]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
        assert panel["targets"], panel["title"]
        for t in panel["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", panel["title"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_layout(name: str) -> None:
    """Unique panel ids; panels fit the 24-column grid and do not overlap."""
    ps = list(panels(dashboards()[name]))
    ids = [p["id"] for p in ps]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in ps:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        xs, ys = range(g["x"], g["x"] + g["w"]), range(g["y"], g["y"] + g["h"])
        mine = {(x, y) for x in xs for y in ys}
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine


def test_required_panels() -> None:
    """The panels issues 6 and 13 list are on the dashboards."""
    titles = {n: {p["title"] for p in panels(d)} for n, d in dashboards().items()}
    assert titles["agentrel-overview.json"] >= OVERVIEW_PANELS
    assert titles["agentrel-tools.json"] >= TOOLS_PANELS


def test_run_panels_are_sliceable_by_cohort() -> None:
    """Every overview query on run-level rules filters on $agent and $cohort."""
    for panel in panels(dashboards()["agentrel-overview.json"]):
        for t in panel.get("targets", []):
            if "agent_cohort" in t["expr"]:
                assert '$cohort"' in t["expr"] and '$agent"' in t["expr"], panel["title"]


def test_retry_depth_heatmap_has_exemplars() -> None:
    """The retry-depth heatmap is a heatmap over bucket increases with exemplars enabled."""
    heat = next(p for p in panels(dashboards()["agentrel-overview.json"]) if p["type"] == "heatmap")
    (t,) = heat["targets"]
    assert t["exemplar"] is True and t["format"] == "heatmap"
    assert "agentrel_run_retry_depth_bucket" in t["expr"]
