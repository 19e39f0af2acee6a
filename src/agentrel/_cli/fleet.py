"""The simulated support fleet behind ``agentrel demo``.

Built only from agentrel's public API and the real retry libraries, the way an application
would use them:

* ``search_kb``: times out, or returns ``{"error": ...}`` (flagged by ``failure_when``); the
  agent loop hands the error to the model, which calls the tool again.
* ``lookup_order``: answers 429 or times out; retried by tenacity (``@retry`` under
  ``@agentrel.tool``: the retries are attempts of the tool's call), with exponential backoff
  that is recorded but not slept.
* ``issue_refund``: irreversible, declared ``idempotent=False``; a gateway timeout makes the
  agent loop call it again: an unsafe retry.
* ``answer``: a fallback chain ``primary_model`` → ``secondary_model`` → ``cached_answer``;
  a validator rejects some model outputs (``agentrel.reject``) and the agent re-prompts.
* from run ``MODEL_SWAP_AT`` on, the provider serves ``PRIMARY_MODEL`` from a new snapshot
  (``gen_ai.response.model``) whose answers are rejected more often;
* some runs that passed are judged later (``verdicts.py``): recovered ones are wrong more
  often than clean ones;
* every model turn is an ``@agentrel.llm`` call that records its token usage and runs the tool
  call it chose, so a turn whose tool call fails is thrown away with its tokens.

Cohorts differ: ``enterprise`` requests carry long contexts and many tool calls, so they are
the first to degrade. Nothing here sleeps or reads the clock: each run draws from its own
``random.Random`` seeded with (seed, run index), so the same seed gives the same numbers at any
speed. The figures the demo prints are read back from the metrics (see ``readout.py``), never
counted here.

Spend: the answer models are priced with ``PRICES`` (their list prices, given explicitly so the
dollar figures do not depend on the installed price table); the planner is an in-house
fine-tune with no public price, so its tokens are counted as unpriced. Cold starts: the first
call of each tool after a (simulated) replica start waits ``COLD_START_SECONDS`` for its
connection pool, index or client to warm up: the only sleep, it changes latencies, never counts.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import agentrel
from agentrel.instrumentation import current_call

from .verdicts import Judges

COHORTS = ("enterprise", "smb", "free")
COHORT_WEIGHTS = (0.25, 0.45, 0.30)
#: the share of requests that ask for a refund (handled by the ``refunds`` agent)
REFUND_SHARE = 0.3

#: The tool calls each agent plans per cohort: every step is one model turn and one tool
#: call, then the answer. A run with no failure makes exactly these calls.
PLANS: dict[tuple[str, str], tuple[str, ...]] = {
    ("support", "enterprise"): ("search_kb", "search_kb", "lookup_order", "search_kb"),
    ("support", "smb"): ("search_kb", "lookup_order"),
    ("support", "free"): ("search_kb",),
    ("refunds", "enterprise"): ("lookup_order", "issue_refund"),
    ("refunds", "smb"): ("lookup_order", "issue_refund"),
    ("refunds", "free"): ("lookup_order", "issue_refund"),
}
#: Prompt size per cohort (tokens): long enterprise contexts time out first.
CONTEXT_TOKENS = {"enterprise": 6000, "smb": 2500, "free": 1200}
#: How much harder a cohort's requests are on the upstreams (scales failure probabilities).
LOAD = {"enterprise": 1.3, "smb": 1.0, "free": 0.8}
#: Tokens: a model turn reads part of the conversation; an answer reads it all, with the
#: retrieved articles, and writes a long reply.
TURN_INPUT = 0.5  # × the cohort's context
ANSWER_INPUT = 2.0  # × the cohort's context
ANSWER_OUTPUT = 600

#: The agent loop's limits.
MAX_TOOL_CALLS = 6  # model turns for one planned tool call before the run gives up
MAX_ANSWERS = 12  # answers the validator may reject before the run gives up
LOOKUP_ATTEMPTS = 12  # tenacity's stop_after_attempt for lookup_order
TIMEOUT_SHARE = 0.85  # of the primary model's failures, timeouts (billed) rather than 429s

# Models (simulated; the names only label the metrics).
PLANNER_MODEL = "support-planner-ft"  # in-house fine-tune: no list price (unpriced tokens)
PRIMARY_MODEL = "gpt-4o"
SECONDARY_MODEL = "claude-3-5-haiku"
#: call names of the answer chain's tiers, as they appear in ``gen_ai_tool_name``
TIER_CALLS = {
    "primary_model": f"chat {PRIMARY_MODEL}",
    "secondary_model": f"chat {SECONDARY_MODEL}",
    "cached_answer": "cached_answer",
}
TIERS = tuple(TIER_CALLS)

#: The snapshots the provider serves for ``PRIMARY_MODEL`` (``gen_ai.response.model``): from
#: run ``MODEL_SWAP_AT`` on, the provider moves the name to a new snapshot, whose answers the
#: validator rejects ``SWAPPED_REJECT`` more often (the model changed under the agent).
PRIMARY_SERVED = ("gpt-4o-2024-08-06", "gpt-4o-2024-11-20")
MODEL_SWAP_AT = 900
SWAPPED_REJECT = 0.15

#: $/Mtok (input, output, cached input): the answer models' list prices, for ``configure``.
PRICES = {PRIMARY_MODEL: (2.5, 10, 1.25), SECONDARY_MODEL: (0.8, 4, 0.08)}

#: Seconds the first call of each tool waits after a replica start (pools, indexes, clients).
COLD_START_SECONDS = {
    "search_kb": 0.12,
    "lookup_order": 0.08,
    "issue_refund": 0.06,
    "agent_turn": 0.1,
    "primary_model": 0.12,
    "secondary_model": 0.08,
    "cached_answer": 0.04,
}
#: the demo restarts its simulated replica every this many runs (a deploy: see ``restart``).
RESTART_EVERY = 600
_warm: set[str] = set()


def _cold_start(name: str) -> None:
    """The first call of ``name`` since the last (simulated) start warms up: it waits."""
    if name not in _warm:
        _warm.add(name)
        time.sleep(COLD_START_SECONDS[name])


def restart() -> None:
    """A simulated replica restart: every tool is cold again (``agentrel demo`` also makes
    agentrel forget its first calls, as a new process would)."""
    _warm.clear()


@dataclass(frozen=True)
class Scenario:
    """Failure probabilities of one scenario (per attempt, before the cohort's load)."""

    name: str
    search_timeout: float
    search_error: float
    lookup_rate_limited: float
    lookup_timeout: float
    refund_timeout: float
    primary_fail: float
    secondary_fail: float
    cache_miss: float
    reject: float
    description: str


SCENARIOS: dict[str, Scenario] = {
    "healthy": Scenario(
        "healthy",
        search_timeout=0.01,
        search_error=0.005,
        lookup_rate_limited=0.01,
        lookup_timeout=0.005,
        refund_timeout=0.005,
        primary_fail=0.01,
        secondary_fail=0.02,
        cache_miss=0.3,
        reject=0.01,
        description="upstreams behave; the occasional blip is absorbed",
    ),
    "degraded": Scenario(
        "degraded",
        search_timeout=0.3,
        search_error=0.1,
        lookup_rate_limited=0.68,
        lookup_timeout=0.08,
        refund_timeout=0.4,
        primary_fail=0.72,
        secondary_fail=0.1,
        cache_miss=0.03,
        reject=0.62,
        description="the primary model and the tools are struggling; retries hide it",
    ),
    "outage": Scenario(
        "outage",
        search_timeout=0.45,
        search_error=0.15,
        lookup_rate_limited=0.55,
        lookup_timeout=0.2,
        refund_timeout=0.5,
        primary_fail=0.9,
        secondary_fail=0.6,
        cache_miss=0.5,
        reject=0.35,
        description="the primary model is down and the tools mostly fail",
    ),
}


class RateLimitError(Exception):
    """An upstream answered 429 Too Many Requests."""


class ToolResultError(Exception):
    """A tool kept returning an error result."""


class AnswerRejected(Exception):
    """The validator rejected every answer the models gave."""


# --- the run in progress -------------------------------------------------------------------
@dataclass
class _Sim:
    rng: random.Random
    scenario: Scenario
    cohort: str
    context: int
    served: str = PRIMARY_SERVED[0]

    def fails(self, p: float) -> bool:
        """One draw: does this attempt fail? Long, heavy requests fail more."""
        return self.rng.random() < min(p * LOAD[self.cohort], 0.97)

    def tokens(self, n: int) -> int:
        return max(1, int(n * self.rng.uniform(0.85, 1.15)))


_SIM: ContextVar[_Sim] = ContextVar("agentrel.demo.sim")


def _sim() -> _Sim:
    return _SIM.get()


@dataclass(frozen=True)
class Answer:
    text: str
    tier: str


# --- tools -----------------------------------------------------------------------------------
def _error_result(result: object) -> bool:
    return isinstance(result, dict) and "error" in result


@agentrel.tool(system="knowledge-base", owner="support-platform", failure_when=_error_result)
def search_kb(query: str) -> dict[str, Any]:
    """Search the help-centre articles."""
    _cold_start("search_kb")
    sim = _sim()
    if sim.fails(sim.scenario.search_timeout):
        raise TimeoutError("knowledge base did not answer within 5 s")
    if sim.fails(sim.scenario.search_error):
        return {"error": "index_unavailable"}
    return {"articles": [f"kb-{sim.rng.randrange(1000)}"], "query": query}


def _simulated_sleep(seconds: float) -> None:
    """tenacity's sleep: the wait it computed is recorded by agentrel, not slept."""


def _retrying(fn: Callable[..., Any]) -> Callable[..., Any]:
    import tenacity

    decorated: Callable[..., Any] = tenacity.retry(
        retry=tenacity.retry_if_exception_type((RateLimitError, TimeoutError)),
        stop=tenacity.stop_after_attempt(LOOKUP_ATTEMPTS),
        wait=tenacity.wait_exponential(multiplier=0.5, max=4),
        sleep=_simulated_sleep,
        reraise=True,
    )(fn)
    return decorated


@agentrel.tool(system="orders-db", owner="commerce-oncall")
@_retrying
def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order, its items and its payment."""
    _cold_start("lookup_order")
    sim = _sim()
    if sim.fails(sim.scenario.lookup_rate_limited):
        raise RateLimitError("429 Too Many Requests")
    if sim.fails(sim.scenario.lookup_timeout):
        raise TimeoutError("orders-db read timed out")
    return {"order_id": order_id, "amount_cents": 100 * sim.rng.randrange(5, 300)}


@agentrel.tool(system="stripe", idempotent=False, reversible=False, owner="payments-oncall")
def issue_refund(order_id: str, amount_cents: int) -> dict[str, Any]:
    """Refund an order through the payment provider."""
    _cold_start("issue_refund")
    sim = _sim()
    if sim.fails(sim.scenario.refund_timeout):
        # The worst kind: the refund may have gone through; the agent will try again.
        raise TimeoutError("payment gateway timed out")
    return {"refund_id": f"re_{sim.rng.randrange(10**8):08d}", "amount_cents": amount_cents}


# --- model calls -------------------------------------------------------------------------------
def _run_tool(tool: str, order_id: str) -> Any:
    if tool == "search_kb":
        return search_kb("how do I change my plan")
    if tool == "lookup_order":
        return lookup_order(order_id)
    return issue_refund(order_id, 4200)


@agentrel.llm(model=PLANNER_MODEL, provider="openai")
def agent_turn(tool: str, context: int, order_id: str) -> Any:
    """A model turn of the agent loop: read the conversation, call the next tool.

    The tool runs inside the turn, so when it raises, the turn's tokens are wasted with it.
    """
    _cold_start("agent_turn")
    sim = _sim()
    agentrel.record_tokens(input=sim.tokens(int(context * TURN_INPUT)), output=sim.tokens(80))
    return _run_tool(tool, order_id)


@agentrel.llm(model=PRIMARY_MODEL, provider="openai")
def primary_model(prompt: int) -> Answer:
    """The primary model writes the answer (times out on long contexts, answers 429)."""
    _cold_start("primary_model")
    sim = _sim()
    call = current_call()
    if call is not None:  # the snapshot the provider says answered
        call.set_response_model(sim.served)
    if sim.fails(sim.scenario.primary_fail):
        if sim.rng.random() >= TIMEOUT_SHARE:
            raise RateLimitError("429 from the primary model")
        # A timeout after the prompt was processed and part of the answer streamed: billed.
        agentrel.record_tokens(input=sim.tokens(prompt), output=sim.tokens(ANSWER_OUTPUT // 2))
        raise TimeoutError("primary model timed out after 30 s")
    agentrel.record_tokens(input=sim.tokens(prompt), output=sim.tokens(ANSWER_OUTPUT))
    return Answer("answer", "primary_model")


@agentrel.llm(model=SECONDARY_MODEL, provider="anthropic")
def secondary_model(prompt: int) -> Answer:
    """The secondary model, from another provider."""
    _cold_start("secondary_model")
    sim = _sim()
    if sim.fails(sim.scenario.secondary_fail):
        agentrel.record_tokens(input=sim.tokens(prompt), output=sim.tokens(ANSWER_OUTPUT // 4))
        raise TimeoutError("secondary model timed out")
    agentrel.record_tokens(input=sim.tokens(prompt), output=sim.tokens(ANSWER_OUTPUT))
    return Answer("answer", "secondary_model")


@agentrel.tool(system="redis", owner="support-platform")
def cached_answer(prompt: int) -> Answer:
    """A canned answer for the request's topic, from the answer cache."""
    _cold_start("cached_answer")
    sim = _sim()
    if sim.rng.random() < sim.scenario.cache_miss:
        raise LookupError("no cached answer for this topic")
    return Answer("canned answer", "cached_answer")


@functools.cache
def answer_chain() -> Callable[[int], Answer]:
    """The fallback chain ``answer``: primary model, secondary model, cached answer."""
    chain: Callable[[int], Answer] = agentrel.fallback(
        "answer", primary_model, secondary_model, cached_answer
    )
    return chain


def _valid(answer: Answer) -> bool:
    """The output validator: some model answers cite nothing or break the JSON schema."""
    if answer.tier == "cached_answer":
        return True
    sim = _sim()
    extra = (
        SWAPPED_REJECT if answer.tier == "primary_model" and sim.served != PRIMARY_SERVED[0] else 0
    )
    return not sim.fails(sim.scenario.reject + extra)


# --- the agent loop ----------------------------------------------------------------------------
def _tool_step(tool: str, sim: _Sim, order_id: str) -> Any:
    """One planned tool call; on an error the model reads it and calls the tool again."""
    last: Exception | None = None
    for _ in range(MAX_TOOL_CALLS):
        try:
            result = agent_turn(tool, sim.context, order_id)
        except (TimeoutError, RateLimitError) as exc:
            last = exc
            continue
        if _error_result(result):
            last = ToolResultError(str(result["error"]))
            continue
        return result
    assert last is not None
    raise last


def _answer(sim: _Sim) -> Answer:
    chain = answer_chain()
    for _ in range(MAX_ANSWERS):
        answer = chain(int(sim.context * ANSWER_INPUT))
        if _valid(answer):
            return answer
        agentrel.reject("failed_validation")
    raise AnswerRejected("the validator rejected every answer")


@dataclass(frozen=True)
class Request:
    index: int
    agent: str
    cohort: str
    order_id: str


def designed_attempts(agent: str, cohort: str) -> int:
    """Attempts a run of this agent and cohort makes when nothing fails: one model turn and
    one tool call per planned step, then the primary model's answer."""
    return 2 * len(PLANS[(agent, cohort)]) + ANSWER_ATTEMPTS


#: attempts of an answer served first time by the primary model (the model's call: a
#: fallback chain's tier attempt around a decorated call is not counted again)
ANSWER_ATTEMPTS = 1


class Fleet:
    """The fleet: ``run(i)`` handles request ``i`` of the seeded stream."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.scenario = scenario
        self.seed = seed
        self.judges = Judges(scenario.name, seed)
        instrument_retries()

    def request(self, index: int, rng: random.Random) -> Request:
        cohort = rng.choices(COHORTS, COHORT_WEIGHTS)[0]
        agent = "refunds" if rng.random() < REFUND_SHARE else "support"
        return Request(index, agent, cohort, f"ord_{rng.randrange(10**6):06d}")

    def run(self, index: int) -> None:
        """Handle request ``index``; a run that fails is recorded by agentrel and ends here."""
        rng = random.Random(f"agentrel-demo:{self.seed}:{index}")
        req = self.request(index, rng)
        served = PRIMARY_SERVED[index >= MODEL_SWAP_AT]
        sim = _Sim(rng, self.scenario, req.cohort, CONTEXT_TOKENS[req.cohort], served)
        token = _SIM.set(sim)
        try:
            with agentrel.run(req.agent, cohort=req.cohort) as run:
                for tool in PLANS[(req.agent, req.cohort)]:
                    _tool_step(tool, sim, req.order_id)
                _answer(sim)
        except Exception:  # the failure is what the demo shows: agentrel recorded it
            pass
        finally:
            _SIM.reset(token)
        self.judges.after(index, run)


@functools.cache
def instrument_retries() -> None:
    """Make tenacity's retries attempts of one logical call (agentrel's tenacity integration)."""
    from agentrel.integrations import tenacity as agentrel_tenacity

    agentrel_tenacity.instrument()
