"""agentrel in 20 lines: a flaky tool, an agent run, /metrics for Prometheus."""

import os

import agentrel

cfg = agentrel.configure(prometheus_port=int(os.environ.get("PORT", "9464")))
failures = [TimeoutError("search timed out")]  # the first call fails


@agentrel.tool(system="kb", owner="support-oncall")
def search(query: str) -> str:
    if failures:
        raise failures.pop()
    agentrel.record_tokens(input=1200, output=80, model="gpt-4o-mini")
    return f"articles about {query}"


with agentrel.run("support", cohort="smb") as run:
    try:
        search("refunds")
    except TimeoutError:  # the agent loop hands the error to the model, which calls again
        search("refunds")
print(f"outcome={run.outcome} retry_depth={run.retry_depth} attempts={run.attempts}")
print(f"Prometheus scrapes {cfg.prometheus_url}")
