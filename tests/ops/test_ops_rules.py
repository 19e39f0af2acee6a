"""Static checks of the shipped rules: alert metadata, severity policy, runbook, unit tests."""

from __future__ import annotations

import re

import pytest

from .conftest import (
    OPERATIONS,
    RULE_TESTS_DIR,
    RUNBOOK,
    alerting_rules,
    load_yaml,
    recording_rules,
)

REQUIRED_ALERTS = {
    "AgentRetryDepthHigh",
    "AgentSelfHealingRateHigh",
    "AgentTokenAmplificationHigh",
    "AgentWastedSpendShareHigh",
    "AgentToolHiddenFailuresHigh",
    "AgentFallbackLastTierServing",
    "AgentUnsafeRetries",
    "AgentRunsErrorBudgetBurn",
    "AgentPassedRunsFoundWrong",
    "AgentServedModelChanged",
    "AgentToolRetryBudgetExceeded",
}
#: Alerts that compare with an earlier window cannot hold at 1m: the minute their tests'
#: condition turns true instead (see the header of the alert's test file).
ONSET = {"AgentServedModelChanged": 101}
ALERT_IDS = [f"{r['alert']}-{r['labels']['severity']}" for r in alerting_rules()]


def severity_policy() -> set[str]:
    """Severities named in the policy table of docs/operations.md (rows like | `critical` |)."""
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text.split("## Severity policy", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\|\s*`(\w+)`\s*\|", section, re.MULTILINE))


#: Where every alert's runbook_url points (tools/ops/knobs.py RUNBOOK_URL).
RUNBOOK_URL = "https://github.com/agentrel/agentrel/blob/main/docs/runbook.md"


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped (but `-`
    and `_`), spaces as `-`."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def runbook_anchors(text: str | None = None) -> set[str]:
    """GitHub-style anchors of the runbook's headings (outside code blocks)."""
    text = RUNBOOK.read_text(encoding="utf-8") if text is None else text
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return {github_anchor(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.MULTILINE)}


def rule_tests() -> list[dict]:
    return [t for f in sorted(RULE_TESTS_DIR.glob("*.yml")) for t in load_yaml(f)["tests"]]


def test_all_required_alerts_exist() -> None:
    """Every alert the runbook and docs/operations.md describe is shipped."""
    assert {r["alert"] for r in alerting_rules()} >= REQUIRED_ALERTS


def test_the_policy_names_severities() -> None:
    """docs/operations.md has a severity policy table."""
    assert severity_policy() >= {"critical", "warning"}


@pytest.mark.parametrize("rule", alerting_rules(), ids=ALERT_IDS)
def test_alert_metadata(rule: dict) -> None:
    """`for:`, a policy severity, summary, a description with $labels and $value, and a
    runbook_url into docs/runbook.md whose anchor exists."""
    assert re.fullmatch(r"\d+[smh]", rule["for"]) and rule["for"] != "0s"
    assert rule["labels"]["severity"] in severity_policy()
    ann = rule["annotations"]
    assert ann["summary"].strip()
    assert "$labels." in ann["description"] and "$value" in ann["description"]
    url, _, anchor = ann["runbook_url"].partition("#")
    assert url == RUNBOOK_URL
    assert anchor in runbook_anchors(), f"no heading for #{anchor} in docs/runbook.md"
    assert re.fullmatch(r"Agent[A-Z][A-Za-z]+", rule["alert"])


def test_every_alert_links_its_own_runbook_section() -> None:
    """Each alert's runbook_url is the project's runbook at the anchor of the heading named
    after the alert, and that heading exists in docs/runbook.md."""
    anchors = runbook_anchors()
    for rule in alerting_rules():
        anchor = github_anchor(rule["alert"])
        assert rule["annotations"]["runbook_url"] == f"{RUNBOOK_URL}#{anchor}"
        assert anchor in anchors, f"docs/runbook.md has no heading '## {rule['alert']}'"
    assert {github_anchor(r["alert"]) for r in alerting_rules()} == anchors - {"agentrel-runbook"}


def test_the_anchor_check_can_fail() -> None:
    """A heading that is missing, or only inside a code block, gives no anchor."""
    text = "# agentrel runbook\n\n## AgentRetryDepthHigh\n\n```\n## AgentUnsafeRetries\n```\n"
    assert runbook_anchors(text) == {"agentrel-runbook", "agentretrydepthhigh"}
    assert github_anchor("Token amplification (×)") == "token-amplification-"


@pytest.mark.parametrize("rule", alerting_rules(), ids=ALERT_IDS)
def test_every_alert_has_boundary_and_healthy_unit_tests(rule: dict) -> None:
    """promtool tests: silent one minute before `for:` ends, firing at it with this severity,
    and a healthy case that never fires."""
    name, severity = rule["alert"], rule["labels"]["severity"]
    for_minutes = int(rule["for"][:-1]) * {"s": 1 / 60, "m": 1, "h": 60}[rule["for"][-1]]
    fire_times, healthy = [], False
    for test in rule_tests():
        cases = [c for c in test.get("alert_rule_test", []) if c["alertname"] == name]
        firing = [
            c
            for c in cases
            if any(a["exp_labels"].get("severity") == severity for a in c["exp_alerts"])
        ]
        for c in firing:
            fire = int(c["eval_time"].rstrip("m"))
            quiet = [x for x in cases if not x["exp_alerts"]]
            if any(int(x["eval_time"].rstrip("m")) == fire - 1 for x in quiet):
                fire_times.append(fire)
        if cases and not firing and all(not c["exp_alerts"] for c in cases):
            healthy = True
    # the condition turns true at 1m (first full rate; ONSET for the others): fires at it + for
    onset = ONSET.get(name, 1)
    assert onset + for_minutes in fire_times, f"{name}/{severity}: no test at the for: boundary"
    assert healthy, f"{name}: no healthy-input test"


def test_every_recording_rule_has_an_expr_test() -> None:
    """Each recording rule is the subject of a promql_expr_test with expected samples."""
    tested = set()
    for test in rule_tests():
        for case in test.get("promql_expr_test", []):
            if case["exp_samples"]:
                tested |= set(re.findall(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", case["expr"]))
    missing = {r["record"] for r in recording_rules()} - tested
    assert not missing
