import agentrel

agentrel.configure(prometheus_port=9464)  # /metrics on 127.0.0.1:9464 while it runs

flaky = [TimeoutError("search timed out")]  # the first call fails


@agentrel.tool(system="kb", owner="support-oncall")
def search(query: str) -> str:
    agentrel.record_tokens(input=1200, output=80, model="gpt-4o-mini")  # its model work
    if flaky:
        raise flaky.pop()
    return f"3 articles about {query}"


with agentrel.run("support") as run:  # one agent run
    for _ in range(3):  # the agent loop: after a failure, it tries again
        try:
            answer = search("refunds")
            break
        except TimeoutError:
            continue

print(answer)
print(f"outcome={run.outcome} retry_depth={run.retry_depth} attempts={run.attempts}")
print(f"amplification={run.token_amplification}")
