"""The shipped Alertmanager config in a real Alertmanager: alerts from two clusters, posted
through the v2 API, inhibited and grouped per cluster."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import (
    DEPLOY_DIR,
    Processes,
    free_port,
    http_get_json,
    load_yaml,
    require_binary,
    wait_for,
)

pytestmark = pytest.mark.servers

CONFIG = DEPLOY_DIR / "alertmanager" / "alertmanager.yml"
PROMETHEUS_CONFIG = DEPLOY_DIR / "prometheus" / "prometheus.yml"
BURN = "AgentRunsErrorBudgetBurn"
#: (name, labels): the fast-burn page in cluster a, the slow-burn ticket in a and in b,
#: all for the same agent
ALERTS = {
    "page-a": {"severity": "critical", "long_window": "1h", "cluster": "a"},
    "ticket-a": {"severity": "warning", "long_window": "1d", "cluster": "a"},
    "ticket-b": {"severity": "warning", "long_window": "1d", "cluster": "b"},
}


def start_alertmanager(processes: Processes, tmp_path: Path, config: Path) -> str:
    binary = require_binary("prometheus-alertmanager", "alertmanager")
    port = free_port()
    processes.start(
        "alertmanager",
        [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'am-data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> Any:
        proc = processes.started[-1][1]
        if proc.poll() is not None:
            pytest.fail(
                f"alertmanager exited ({proc.returncode}):\n{processes.log('alertmanager')}"
            )
        return http_get_json(f"{url}/api/v2/status")

    wait_for(up, timeout=30, what="Alertmanager to start")
    return url


def post_alerts(url: str) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    body = [
        {
            "labels": {"alertname": BURN, "gen_ai_agent_name": "support", **labels},
            "annotations": {"summary": name},
            "startsAt": now.isoformat(),
            "endsAt": (now + dt.timedelta(hours=1)).isoformat(),
        }
        for name, labels in ALERTS.items()
    ]
    req = urllib.request.Request(
        f"{url}/api/v2/alerts",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


def states(url: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (state, names of the alerts inhibiting it), from GET /api/v2/alerts."""
    alerts = http_get_json(f"{url}/api/v2/alerts")
    by_fp = {a["fingerprint"]: a["annotations"]["summary"] for a in alerts}
    return {
        a["annotations"]["summary"]: (
            a["status"]["state"],
            sorted(by_fp[fp] for fp in a["status"]["inhibitedBy"]),
        )
        for a in alerts
    }


def settled(url: str, expected: dict[str, tuple[str, list[str]]]) -> dict[str, Any] | None:
    """The states once every alert is in and ``expected``'s suppressions took effect."""
    got = states(url)
    if set(got) != set(ALERTS):
        return None
    suppressed = {n for n, (s, _) in expected.items() if s == "suppressed"}
    return got if all(got[n][0] == "suppressed" for n in suppressed) else None


def test_prometheus_sends_a_cluster_label() -> None:
    """The shipped Prometheus config sets the `cluster` external label the routing uses."""
    assert load_yaml(PROMETHEUS_CONFIG)["global"]["external_labels"]["cluster"]
    route = load_yaml(CONFIG)["route"]
    assert route["group_by"][0] == "cluster"
    assert all("cluster" in rule["equal"] for rule in load_yaml(CONFIG)["inhibit_rules"])


def test_a_page_inhibits_the_ticket_of_its_own_cluster_only(
    processes: Processes, tmp_path: Path
) -> None:
    """Page in cluster a, ticket in a and in b: a's ticket is suppressed by a's page, b's
    ticket stays active; the page goes to `page`, the tickets to `ticket`, one group per
    cluster."""
    url = start_alertmanager(processes, tmp_path, CONFIG)
    post_alerts(url)
    expected = {
        "page-a": ("active", []),
        "ticket-a": ("suppressed", ["page-a"]),
        "ticket-b": ("active", []),
    }
    got = wait_for(lambda: settled(url, expected), timeout=20, what="the inhibition")
    assert got == expected

    # routed by severity, grouped per cluster: (receiver, cluster) -> alerts
    groups = http_get_json(f"{url}/api/v2/alerts/groups")
    key = {"alertname": BURN, "gen_ai_agent_name": "support"}
    assert all(g["labels"] == {**key, "cluster": g["labels"]["cluster"]} for g in groups)
    assert {
        (g["receiver"]["name"], g["labels"]["cluster"]): sorted(
            a["annotations"]["summary"] for a in g["alerts"]
        )
        for g in groups
    } == {("page", "a"): ["page-a"], ("ticket", "a"): ["ticket-a"], ("ticket", "b"): ["ticket-b"]}
    assert len(groups) == 3


def test_without_cluster_in_equal_a_page_silences_every_cluster(
    processes: Processes, tmp_path: Path
) -> None:
    """The same alerts against the config with `cluster` dropped from `equal`: b's ticket is
    suppressed by a's page. The test above can fail; `cluster` is what keeps them apart."""
    config = load_yaml(CONFIG)
    for rule in config["inhibit_rules"]:
        rule["equal"] = [label for label in rule["equal"] if label != "cluster"]
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    url = start_alertmanager(processes, tmp_path, path)
    post_alerts(url)
    expected = {
        "page-a": ("active", []),
        "ticket-a": ("suppressed", ["page-a"]),
        "ticket-b": ("suppressed", ["page-a"]),
    }
    got = wait_for(lambda: settled(url, expected), timeout=20, what="the inhibition")
    assert got == expected
