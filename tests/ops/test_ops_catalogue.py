"""Every metric and label name the dashboards and rules use exists in the metric catalogue."""

from __future__ import annotations

import re

import pytest

from agentrel import _catalogue as cat

from .conftest import alerting_rules, dashboard_exprs, dashboards, recording_rules

# Labels Prometheus or PromQL add on top of the catalogue's attributes.
EXTRA_LABELS = {"le", "quantile", "job", "instance"}
# Labels our own rules add (alerts' long_window, recording rules' quantile).
RULE_LABELS = {"long_window"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan",
}  # fmt: skip
RECORDING_NAME = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")


def _strip(expr: str) -> str:
    """expr without string literals, label matchers, grouping clauses and range selectors."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\boffset\s+\d+[smhdwy]+", " ", expr)
    return re.sub(r"\[[^\]]*\]", "", expr)


def metric_names(expr: str) -> set[str]:
    """Identifiers in expr that name series (not functions, keywords or numbers)."""
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", _strip(expr)):
        name = m.group(0)
        after = _strip(expr)[m.end() :].lstrip()
        if after.startswith("(") or name.lower() in PROMQL_WORDS:
            continue
        names.add(name)
    return names


def label_names(expr: str) -> set[str]:
    expr_no_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    labels = set()
    for matchers in re.findall(r"\{([^}]*)\}", expr_no_strings):
        labels |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    for group in re.findall(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr_no_strings
    ):
        labels |= {g.strip() for g in group.split(",") if g.strip()}
    return labels


def all_exprs() -> list[tuple[str, str]]:
    out = [(f"record {r['record']}", r["expr"]) for r in recording_rules()]
    out += [(f"alert {r['alert']}", r["expr"]) for r in alerting_rules()]
    for d in dashboards().values():
        out += dashboard_exprs(d)
    return out


def _raw_name_ok(name: str) -> bool:
    by_name = {m.prometheus_name: m for m in cat.METRICS}
    if name in by_name:
        return by_name[name].kind == "counter"
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and base in by_name and by_name[base].kind == "histogram":
            return True
    return False


def test_the_name_parser_finds_metrics_and_not_functions() -> None:
    """The helper itself: metrics found, functions, keywords, labels and strings not."""
    expr = (
        'histogram_quantile(0.95, sum by (gen_ai_agent_name, le) (rate(foo_bucket{a="x:y"}[5m])))'
        " / on (job) group_left bar:baz:rate5m > bool 3"
    )
    assert metric_names(expr) == {"foo_bucket", "bar:baz:rate5m"}
    assert label_names(expr) == {"gen_ai_agent_name", "le", "a", "job"}


@pytest.mark.parametrize(("where", "expr"), all_exprs(), ids=[w for w, _ in all_exprs()])
def test_every_name_is_in_the_catalogue(where: str, expr: str) -> None:
    """Raw series names are catalogue metrics (histograms only with _bucket/_sum/_count,
    counters as *_total); every other name is a recording rule we ship."""
    recorded = {r["record"] for r in recording_rules()}
    names = metric_names(expr)
    assert names, f"{where}: no metric found in {expr!r}"
    for name in names:
        if ":" in name:
            assert name in recorded, f"{where}: {name} is not a recording rule we ship"
        else:
            assert _raw_name_ok(name), f"{where}: {name} is not in agentrel._catalogue"


@pytest.mark.parametrize(("where", "expr"), all_exprs(), ids=[w for w, _ in all_exprs()])
def test_every_label_is_in_the_catalogue(where: str, expr: str) -> None:
    """Label names in matchers and grouping clauses are catalogue attributes (translated)."""
    known = {label for m in cat.METRICS for label in m.prometheus_labels}
    known |= EXTRA_LABELS | RULE_LABELS
    unknown = label_names(expr) - known
    assert not unknown, f"{where}: unknown labels {unknown}"


def test_recording_rule_names_follow_level_metric_operation() -> None:
    """kubernetes-mixin naming: level:metric:operation, each part non-empty."""
    bad = [r["record"] for r in recording_rules() if not RECORDING_NAME.match(r["record"])]
    assert not bad


def test_dashboards_query_recording_rules_where_they_exist() -> None:
    """A dashboard panel reads raw series only for exemplars (rules drop them); variables
    read raw series so they work before the first rule evaluation."""
    for d in dashboards().values():
        for panel in d["panels"]:
            for t in panel.get("targets", []):
                raw = {n for n in metric_names(t["expr"]) if ":" not in n}
                if raw:
                    assert t.get("exemplar") is True, (d["uid"], panel["title"], raw)


def test_every_recording_rule_is_used() -> None:
    """No dead rules: each is read by a dashboard, an alert or another rule."""
    used: set[str] = set()
    for _, expr in all_exprs():
        used |= metric_names(expr)
    unused = {r["record"] for r in recording_rules()} - used
    assert not unused


#: Catalogue metrics no rule or dashboard reads: the GenAI semconv token usage, kept for GenAI
#: tooling that reads the conventions; agentrel's panels read agentrel.tokens instead (the
#: served-model rule reads gen_ai.client.operation.duration's count).
NOT_ON_DASHBOARDS = {cat.CLIENT_TOKEN_USAGE.name}


def test_every_catalogue_metric_is_read_by_a_rule_or_a_dashboard() -> None:
    """A new catalogue metric reaches the ops kit (or is listed above, with a reason)."""
    used: set[str] = set()
    for _, expr in all_exprs():
        used |= metric_names(expr)
    unread = set()
    for m in cat.METRICS:
        names = {m.prometheus_name} | {m.prometheus_name + s for s in HISTOGRAM_SUFFIXES}
        if not names & used:
            unread.add(m.name)
    assert unread == NOT_ON_DASHBOARDS
