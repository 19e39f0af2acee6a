"""agentrel's ops kit generator, one module per output.

    _series.py    every metric, label and value name, derived from agentrel's catalogue
    knobs.py      what an operator changes: SLO objective, alert thresholds, runbook URL
    rules.py      recording rules (prometheus/agentrel.rules.yml) and their names
    alerts.py     alerts (prometheus/agentrel.alerts.yml)
    dashboard.py  the small Grafana DSL: layout, panels, targets, variables
    overview.py   dashboards/agentrel-overview.json
    tools.py      dashboards/agentrel-tools.json
    verdicts.py   verdicts after the run: their rules, alert and the Overview's row
    budgets.py    retry budgets: the retry share per tool, its rule, alert and the Tools row
    models.py     the served model per request model: its rule, alert and the Overview's row
    generate.py   the entry point: renders all of the above, writes or --check's them

PromQL lives here, in one place (the kubernetes-mixin way): recording rules named
``level:metric:operation`` compute every rate and ratio once; the alerts and the dashboards
query those rules. No module spells a series or label name: each comes from ``_series``,
which reads it from ``src/agentrel/_catalogue.py`` (tests/ops/test_ops_generator.py fails
on a literal one).
"""
