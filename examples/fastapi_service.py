"""A FastAPI service whose agent runs are recorded and served on its own ``/metrics``.

Serve it with ``uvicorn fastapi_service:app`` (from this directory); running this file calls
``/ask`` twice in-process and prints the agentrel series of ``/metrics``.
"""

import itertools

from fastapi import FastAPI
from prometheus_client import make_asgi_app

import agentrel

# prometheus_port=0: agentrel's own endpoint on a free 127.0.0.1 port; the app serves the same
# registry (OpenMetrics with exemplars, OpenTelemetry's names) on its /metrics.
cfg = agentrel.configure(service_name="support-api", prometheus=True, cohorts=("smb", "free"))
app = FastAPI()
app.mount("/metrics", make_asgi_app(registry=cfg.prometheus_registry))
flaky = itertools.cycle([True, False, False])


@agentrel.tool(system="kb", owner="support-oncall")
async def search_kb(question: str) -> list[str]:
    if next(flaky):
        raise TimeoutError("knowledge base timed out")
    return ["kb-17"]


@app.get("/ask")
async def ask(question: str, plan: str = "free") -> dict[str, object]:
    async with agentrel.run("support", cohort=plan) as run:
        try:
            articles = await search_kb(question)
        except TimeoutError:  # the agent loop tries again
            articles = await search_kb(question)
        agentrel.record_tokens(input=800, output=60, model="gpt-4o-mini")
    return {"articles": articles, "retry_depth": run.retry_depth}


if __name__ == "__main__":
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        print(client.get("/ask", params={"question": "refund?", "plan": "smb"}).json())
        print(client.get("/ask", params={"question": "invoice?"}).json())
        metrics = client.get("/metrics/").text
    for line in metrics.splitlines():
        if line.startswith("agentrel_run_retry_depth_count"):
            print(line)
    cfg.shutdown()
