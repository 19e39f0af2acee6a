"""A fallback chain: primary model, secondary model, cached answer."""

import agentrel
from agentrel import testing


@agentrel.llm(model="gpt-4o", provider="openai")
def primary_model(question: str) -> str:
    raise TimeoutError("primary model timed out")


@agentrel.llm(model="claude-3-5-haiku", provider="anthropic")
def secondary_model(question: str) -> str:
    agentrel.record_tokens(input=900, output=120)
    return f"an answer to {question!r}"


def cached_answer(question: str) -> str:
    return "a canned answer"


answer = agentrel.fallback("answer", primary_model, secondary_model, cached_answer)

with testing.capture() as cap:  # in memory; in production: agentrel.configure(...)
    with agentrel.run("support", cohort="free") as run:
        print(answer("how do I get a refund?"))
    for attrs, point in cap.points("agentrel.fallbacks"):
        print(
            f"fallback {attrs['agentrel.fallback.from_tier']} -> "
            f"{attrs['agentrel.fallback.to_tier']} ({attrs['error.type']}): {point.value:g}"
        )
print(f"outcome={run.outcome} retry_depth={run.retry_depth} attempts={run.attempts}")
