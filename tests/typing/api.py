"""Never run: read by mypy (``make typecheck``) to pin the public API's types."""

from __future__ import annotations

import agentrel


@agentrel.tool
def search(query: str, limit: int = 3) -> list[str]:
    return [query] * limit


@agentrel.tool(system="stripe", idempotent=False)
async def refund(order_id: str) -> bool:
    return True


@agentrel.llm(model="gpt-4o", provider="openai")
def ask(prompt: str) -> str:
    return prompt


@agentrel.agent("support", cohort="smb")
def handle(ticket: str) -> int:
    return len(search(ticket))


async def main() -> None:
    ok: bool = await refund("o-1")
    hits: list[str] = search("q")
    answer: str = ask("hi")
    n: int = handle("t")
    with agentrel.run("r", token_budget=100) as run:
        depth: int = run.retry_depth
        amp: float | None = run.token_amplification
        spent: float | None = run.cost_usd
        wasted: float | None = run.wasted_cost_usd
    outcome: str | None = run.outcome
    del ok, hits, answer, n, depth, amp, outcome, spent, wasted
