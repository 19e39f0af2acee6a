"""A FastAPI service whose agent runs are recorded and served on its own ``/metrics``.

Serve it with ``uvicorn fastapi_service:app`` (from this directory); running this file calls
``/ask`` twice in-process and prints the agentrel series of ``/metrics``.

Several workers on one host: give each its own port from a range and scrape them all
(see "Several workers" in docs/operations.md)::

    METRICS_PORT=9464 METRICS_PORT_RANGE=4 \\
        gunicorn -w 3 -k uvicorn.workers.UvicornWorker fastapi_service:app

``/ask?failures=N`` makes the knowledge base time out N times in that run (the agent tries at
most 3 times: 0 is a clean run, 1-2 recovered, 3 or more exhausted, answered with 503), so
a load test knows every figure in advance.
"""

import os

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app

import agentrel

MAX_ATTEMPTS = 3
# prometheus=True: the app serves agentrel's registry (OpenMetrics with exemplars,
# OpenTelemetry's names) on its own /metrics. With METRICS_PORT, agentrel also serves it on
# 127.0.0.1: each worker process binds the first free port of METRICS_PORT .. +RANGE-1.
port = os.environ.get("METRICS_PORT")
cfg = agentrel.configure(
    service_name="support-api",
    prometheus=True,
    prometheus_port=int(port) if port else None,
    prometheus_port_range=int(os.environ.get("METRICS_PORT_RANGE", "1")),
    cohorts=("smb", "free"),
)
app = FastAPI()
app.mount("/metrics", make_asgi_app(registry=cfg.prometheus_registry))


@agentrel.tool(system="kb", owner="support-oncall")
async def search_kb(question: str, fail: bool) -> list[str]:
    if fail:
        raise TimeoutError("knowledge base timed out")
    return ["kb-17"]


@app.get("/ask")
async def ask(question: str, plan: str = "free", failures: int = 0) -> object:
    worker = {"pid": os.getpid(), "metrics_port": cfg.prometheus_port}
    try:
        async with agentrel.run("support", cohort=plan) as run:
            agentrel.record_tokens(input=800, output=60, model="gpt-4o-mini")
            for attempt in range(MAX_ATTEMPTS):
                try:  # the agent loop tries again when the tool fails
                    articles = await search_kb(question, fail=attempt < failures)
                    break
                except TimeoutError:
                    if attempt == MAX_ATTEMPTS - 1:
                        raise
    except TimeoutError:
        body = {"error": "knowledge base unavailable", "retry_depth": run.retry_depth}
        return JSONResponse({**body, **worker}, status_code=503)
    return {"articles": articles, "retry_depth": run.retry_depth, **worker}


if __name__ == "__main__":
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        for params in ({"question": "refund?", "plan": "smb", "failures": 1}, {"question": "x"}):
            answer = client.get("/ask", params=params).json()
            print({k: answer[k] for k in ("articles", "retry_depth")})
        metrics = client.get("/metrics/").text
    for line in metrics.splitlines():
        if line.startswith("agentrel_run_retry_depth_count"):
            print(line)
    cfg.shutdown()
