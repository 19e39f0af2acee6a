"""tenacity retries as attempts of one tool call: retry depth, backoff waits, outcome."""

import tenacity

import agentrel
from agentrel import testing
from agentrel.integrations import tenacity as agentrel_tenacity

agentrel_tenacity.instrument()
replies = iter([ConnectionError("503"), ConnectionError("503"), {"status": "shipped"}])


@tenacity.retry(
    stop=tenacity.stop_after_attempt(5),
    wait=tenacity.wait_exponential(multiplier=0.5),
    sleep=lambda seconds: None,  # keep the example fast: the computed wait is still recorded
)
@agentrel.tool(system="orders-db")
def lookup_order(order_id: str) -> dict[str, str]:
    reply = next(replies)
    if isinstance(reply, Exception):
        raise reply
    return reply


with testing.capture() as cap:  # in memory; in production: agentrel.configure(...)
    with agentrel.run("support") as run:
        print(lookup_order("ord_42"))
    calls = cap.histogram("agentrel.tool.attempts", {"gen_ai.tool.name": "lookup_order"})
    delays = cap.histogram("agentrel.retry.delay")
print(f"outcome={run.outcome} retry_depth={run.retry_depth} attempts={run.attempts}")
print(f"lookup_order: {calls.count} call, {calls.sum:g} attempts; waits {delays.sum:g} s")
