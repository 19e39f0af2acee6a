"""End to end: a real Prometheus scrapes the real `agentrel demo`, evaluates the shipped rules,
and sends an alert through a real Alertmanager to a local webhook.

Every PromQL expression of the dashboards and the rule files is run through Prometheus's HTTP
API and must return data. Alert expressions are thresholds, so they are run with `> bool`: the
result must be non-empty, which proves each operand exists and the label matching joins.
"""

from __future__ import annotations

import http.server
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from agentrel import _catalogue as cat

from .conftest import (
    ALERTS_FILE,
    DEPLOY_DIR,
    RULES_FILE,
    Processes,
    alerting_rules,
    dashboard_exprs,
    dashboards,
    free_port,
    http_get_json,
    label_values_expr,
    load_yaml,
    recording_rules,
    require,
    require_binary,
    substitute_grafana_vars,
    wait_for,
)

pytestmark = pytest.mark.servers

DEMO_SECONDS = 150  # upper bound; the demo is stopped by PID when the test ends
DEMO_RATE = 25  # runs per second
DATA_TIMEOUT = 60
ALERT_TIMEOUT = 45
FIRING_ALERT = "AgentUnsafeRetries"  # the demo's issue_refund is idempotent=False
#: the demo's later verdicts say a quarter of its recovered runs were wrong (degraded)
VERDICT_ALERT = "AgentPassedRunsFoundWrong"
AGENTS = {"support", "refunds"}
#: the demo's provider moves gpt-4o to a new snapshot at run 900 (36 s in at DEMO_RATE)
MODEL_ALERT = "AgentServedModelChanged"
BUDGET_ALERT = "AgentToolRetryBudgetExceeded"
#: its shipped lookback and "new for" window, and the ones the test uses so it can fire within
#: seconds of the change (a day of history is not to be had)
MODEL_WINDOWS = ("[1d] offset 30m", "[10m] offset 20s")


def alert_probe(expr: str) -> str:
    """An alert expression with its comparisons turned into `bool` ones."""
    return re.sub(r"\s>\s", " > bool ", expr)


def e2e_expr(rule: dict[str, Any]) -> str:
    """An alert's expression with the windows this test runs it with (MODEL_WINDOWS)."""
    if rule["alert"] != MODEL_ALERT:
        return str(rule["expr"])
    assert MODEL_WINDOWS[0] in rule["expr"]
    return str(rule["expr"]).replace(*MODEL_WINDOWS)


def all_queries() -> list[tuple[str, str]]:
    out = [(f"record {r['record']}", r["expr"]) for r in recording_rules()]
    out += [
        (f"alert {r['alert']} ({r['labels']['severity']})", alert_probe(e2e_expr(r)))
        for r in alerting_rules()
    ]
    for d in dashboards().values():
        out += [(w, substitute_grafana_vars(e)) for w, e in dashboard_exprs(d)]
    return out


class Webhook:
    """A local Alertmanager webhook receiver that keeps what it is sent."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        received = self.payloads

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def alerts(self) -> list[dict[str, Any]]:
        return [a for p in list(self.payloads) for a in p["alerts"]]


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    hook.thread.start()
    try:
        yield hook
    finally:
        hook.server.shutdown()
        hook.server.server_close()
        hook.thread.join(timeout=5)


class Stack:
    def __init__(self, prometheus: str, alertmanager: str) -> None:
        self.prometheus = prometheus
        self.alertmanager = alertmanager

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = http_get_json(f"{self.prometheus}/api/v1/query", {"query": expr})
        assert body["status"] == "success", body
        return list(body["data"]["result"])


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    """The module's processes (one stack for every test here), stopped by PID at the end."""
    procs = Processes(tmp_path_factory.mktemp("e2e-logs"))
    try:
        yield procs
    finally:
        procs.stop_all()


@pytest.fixture(scope="module")
def stack(
    processes: Processes, tmp_path_factory: pytest.TempPathFactory, webhook: Webhook
) -> Stack:
    """agentrel demo (degraded) + Prometheus + Alertmanager, all on 127.0.0.1, free ports."""
    tmp_path = tmp_path_factory.mktemp("e2e")
    prometheus = require_binary("prometheus")
    alertmanager = require_binary("prometheus-alertmanager", "alertmanager")
    try:
        import agentrel.__main__  # noqa: F401
    except ImportError:  # pragma: no cover - only when agentrel is not installed
        require(False, "agentrel demo (python -m agentrel)")

    demo_port, prom_port, am_port = free_port(), free_port(), free_port()
    processes.start(
        "demo",
        [sys.executable, "-m", "agentrel", "demo", "--scenario", "degraded",
         "--duration", str(DEMO_SECONDS), "--rate", str(DEMO_RATE), "--seed", "7",
         "--port", str(demo_port), "--host", "127.0.0.1", "--plain"],
    )  # fmt: skip

    am_config = {
        "route": {
            "receiver": "webhook",
            "group_by": ["alertname"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [{"name": "webhook", "webhook_configs": [{"url": webhook.url}]}],
    }
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(am_config))
    processes.start(
        "alertmanager",
        [alertmanager, f"--config.file={tmp_path / 'alertmanager.yml'}",
         f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{am_port}",
         "--cluster.listen-address="],
    )  # fmt: skip

    # The shipped recording rules as they are; the shipped alerts with every `for:` cut to 1s
    # (expressions untouched) so one can fire within the test.
    alerts = yaml.safe_load(ALERTS_FILE.read_text())
    for group in alerts["groups"]:
        for rule in group["rules"]:
            rule["for"] = "1s"
            rule["expr"] = e2e_expr(rule)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(alerts))
    # The shipped config's external labels, as they reach Alertmanager with every alert.
    shipped = load_yaml(DEPLOY_DIR / "prometheus" / "prometheus.yml")
    prom_config = {
        "global": {
            "scrape_interval": "1s",
            "evaluation_interval": "1s",
            "external_labels": shipped["global"]["external_labels"],
        },
        "rule_files": [str(RULES_FILE), str(tmp_path / "alerts.yml")],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
        },
        "scrape_configs": [
            {
                "job_name": "agentrel-demo",
                "static_configs": [{"targets": [f"127.0.0.1:{demo_port}"]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
    processes.start(
        "prometheus",
        [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'prom-data'}",
         f"--web.listen-address=127.0.0.1:{prom_port}", "--enable-feature=exemplar-storage"],
    )  # fmt: skip

    s = Stack(f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}")

    def target_up() -> bool:
        for name, proc in processes.started:
            if proc.poll() is not None:
                pytest.fail(f"{name} exited early ({proc.returncode}):\n{processes.log(name)}")
        body = http_get_json(f"{s.prometheus}/api/v1/targets")
        return any(t["health"] == "up" for t in body["data"]["activeTargets"])

    wait_for(target_up, timeout=30, what="Prometheus to scrape the demo")
    wait_for(
        lambda: http_get_json(f"{s.alertmanager}/api/v2/status"),
        timeout=30,
        what="Alertmanager to start",
    )
    return s


def test_demo_prometheus_alertmanager_end_to_end(stack: Stack, webhook: Webhook) -> None:
    """Every dashboard and rule expression returns data; exemplars are stored for the
    retry-depth histogram; an alert reaches the webhook with its labels and annotations."""
    pending = dict(all_queries())
    assert len(pending) > 40

    def all_have_data() -> bool:
        for where, expr in list(pending.items()):
            if stack.query(expr):
                del pending[where]
        return not pending

    deadline = time.monotonic() + DATA_TIMEOUT
    while not all_have_data() and time.monotonic() < deadline:
        time.sleep(1)
    assert not pending, "no data for:\n" + "\n".join(f"  {w}: {e}" for w, e in pending.items())

    # "Runs by outcome" shows the degraded scenario apart: clean, recovered and exhausted
    # runs (`failed` ones are rare there), and nothing outside the outcome vocabulary.
    query = "sum by (agentrel_outcome) (agent_cohort_outcome:agentrel_runs:rate5m)"
    seen = {r["metric"]["agentrel_outcome"] for r in stack.query(query)}
    assert {"success", "recovered", "exhausted"} <= seen <= set(cat.OUTCOMES), seen

    # Exemplars of the retry-depth histogram, each pointing at a trace.
    def exemplars() -> list[dict[str, Any]]:
        now = time.time()
        body = http_get_json(
            f"{stack.prometheus}/api/v1/query_exemplars",
            {"query": "agentrel_run_retry_depth_bucket", "start": str(now - 600), "end": str(now)},
        )
        return [e for series in body["data"] for e in series["exemplars"]]

    found = wait_for(exemplars, timeout=DATA_TIMEOUT, what="retry-depth exemplars")
    assert all(re.fullmatch(r"[0-9a-f]{32}", e["labels"]["trace_id"]) for e in found)

    # One alert, all the way to the on-call webhook.
    def fired(name: str = FIRING_ALERT) -> list[dict[str, Any]]:
        return [
            a
            for a in webhook.alerts()
            if a["labels"]["alertname"] == name and a["status"] == "firing"
        ]

    alerts = wait_for(fired, timeout=ALERT_TIMEOUT, what=f"{FIRING_ALERT} at the webhook")
    alert = alerts[0]
    assert alert["labels"]["severity"] == "warning"
    assert alert["labels"]["gen_ai_tool_name"] == "issue_refund"
    assert alert["labels"]["cluster"] == "agentrel-demo"  # the external label Prometheus adds
    assert alert["annotations"]["runbook_url"].endswith("docs/runbook.md#agentunsaferetries")
    assert "issue_refund" in alert["annotations"]["description"]
    assert "{{" not in alert["annotations"]["description"]

    # Runs that passed, later found wrong: the verdict alert, delivered, for both demo agents.
    def verdict_alerts() -> list[dict[str, Any]]:
        found = fired(VERDICT_ALERT)
        return found if {a["labels"]["gen_ai_agent_name"] for a in found} >= AGENTS else []

    found = wait_for(verdict_alerts, timeout=ALERT_TIMEOUT, what=f"{VERDICT_ALERT} at the webhook")
    for a in found:
        assert a["labels"]["severity"] == "warning"
        assert a["annotations"]["runbook_url"].endswith("docs/runbook.md#agentpassedrunsfoundwrong")
        assert "{{" not in a["annotations"]["description"]
    # the dashboard's question: recovered runs are found wrong more often than clean ones
    shares = {
        (r["metric"]["gen_ai_agent_name"], r["metric"]["agentrel_outcome"]): float(r["value"][1])
        for r in stack.query("agent_outcome:agentrel_verdicts_wrong:ratio_rate1h")
    }
    for agent in AGENTS:
        assert shares[(agent, "recovered")] > 0.1, shares

    # The model changed under the agent: the new snapshot behind gpt-4o, delivered.
    model_alerts = wait_for(
        lambda: fired(MODEL_ALERT), timeout=ALERT_TIMEOUT, what=f"{MODEL_ALERT} at the webhook"
    )
    assert {
        (a["labels"]["gen_ai_request_model"], a["labels"]["gen_ai_response_model"])
        for a in model_alerts
    } == {("gpt-4o", "gpt-4o-2024-11-20")}
    assert model_alerts[0]["annotations"]["runbook_url"].endswith("#agentservedmodelchanged")

    # Retry budget: tenacity retries lookup_order far past 20% of its attempts (degraded).
    budget = wait_for(
        lambda: [
            a for a in fired(BUDGET_ALERT) if a["labels"]["gen_ai_tool_name"] == "lookup_order"
        ],
        timeout=ALERT_TIMEOUT,
        what=f"{BUDGET_ALERT} for lookup_order at the webhook",
    )
    assert budget[0]["annotations"]["runbook_url"].endswith("#agenttoolretrybudgetexceeded")


#: The demo's tools (src/agentrel/_cli/fleet.py): its @agentrel.tool functions. Its LLM calls
#: (``chat <model>``) and its fallback chain (``answer``) are not tools.
DEMO_TOOLS = {"search_kb", "lookup_order", "issue_refund", "cached_answer"}


def test_tool_variable_lists_exactly_the_demos_tools(stack: Stack) -> None:
    """Each dashboard's `tool` variable, run as Grafana runs it, returns the demo's tools and
    nothing else, while the same label on agentrel_tool_attempts also names LLM calls and
    the fallback chain."""
    from agentrel._cli import fleet
    from agentrel._registry import registered_tools

    assert {t.name for t in registered_tools()} >= DEMO_TOOLS  # the demo's own inventory
    tool = cat.prometheus_label(cat.TOOL)
    attempts = f"{cat.TOOL_ATTEMPTS.prometheus_name}_count"
    others = {*fleet.TIER_CALLS.values(), "answer"} - DEMO_TOOLS

    def every_call_seen() -> set[str] | None:
        seen = {r["metric"][tool] for r in stack.query(f"count by ({tool}) ({attempts})")}
        return seen if seen >= DEMO_TOOLS | others else None

    seen = wait_for(every_call_seen, timeout=DATA_TIMEOUT, what="every call of the demo")
    assert seen - DEMO_TOOLS  # LLM calls and the chain share the label
    for name, dashboard in dashboards().items():
        (query,) = [
            v["query"]["query"] for v in dashboard["templating"]["list"] if v["name"] == "tool"
        ]
        values = {r["metric"][tool] for r in stack.query(label_values_expr(query))}
        assert values == DEMO_TOOLS, name
