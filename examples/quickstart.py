import agentrel
from agentrel import testing

flaky = [TimeoutError("search timed out")]  # the first call fails


@agentrel.tool(system="kb", owner="support-oncall")
def search(query: str) -> str:
    agentrel.record_tokens(input=1200, output=80, model="gpt-4o-mini")  # its model work
    if flaky:
        raise flaky.pop()
    return f"3 articles about {query}"


with testing.capture() as metrics:  # in memory; a service calls agentrel.configure() instead
    with agentrel.run("support") as run:  # one agent run
        for _ in range(3):  # the agent loop: after a failure, it tries again
            try:
                answer = search("refunds")
                break
            except TimeoutError:
                continue
    absorbed = metrics.counter("agentrel.tool.failures", {"agentrel.absorbed": "true"})
    wasted = metrics.counter("agentrel.tokens", {"agentrel.token.disposition": "wasted"})

print(answer)
print(f"outcome={run.outcome} retry_depth={run.retry_depth} attempts={run.attempts}")
print(f"amplification={run.token_amplification}")
print(f"absorbed failures={absorbed:g} wasted tokens={wasted:g}")
