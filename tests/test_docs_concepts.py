"""docs/concepts.md's worked examples, run: each row of its table is a scenario here, and the
figures in the row (outcome, retry depth, attempts, amplification) are the ones agentrel
records for it. The page's invariants are checked on every one of them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import agentrel
from agentrel import testing

ROOT = Path(__file__).resolve().parent.parent
OUTCOMES = ("success", "recovered", "exhausted", "failed")


class GaveUp(Exception):
    """The scripted agent loop gives up: the exception that fails a run."""


def _raise_timeout() -> str:
    raise TimeoutError("scripted")


@agentrel.tool
def answer_ok() -> str:
    return "ok"


@agentrel.tool
def times_out() -> str:
    return _raise_timeout()


@agentrel.tool
def with_cached_answer() -> str:
    try:
        return times_out()
    except TimeoutError:
        return "cached"


@agentrel.tool
def passes_it_on() -> str:
    return times_out()


def one_clean_call() -> None:
    answer_ok()


def quickstart() -> None:
    flaky = [TimeoutError("search timed out")]

    @agentrel.tool
    def search(query: str) -> str:
        agentrel.record_tokens(input=1200, output=80, model="gpt-4o-mini")
        if flaky:
            raise flaky.pop()
        return f"3 articles about {query}"

    for _ in range(3):
        try:
            search("refunds")
            break
        except TimeoutError:
            continue


def fallback_two_tiers_fail() -> None:
    def primary() -> str:
        return _raise_timeout()

    def secondary() -> str:
        return _raise_timeout()

    def cache() -> str:
        return "cached"

    assert agentrel.fallback("chain", primary, secondary, cache)() == "cached"


def inner_failure_caught() -> None:
    assert with_cached_answer() == "cached"


def two_timeouts_then_give_up() -> None:
    for _ in range(2):
        try:
            times_out()
        except TimeoutError:
            pass
    raise GaveUp


def one_timeout_no_retry() -> None:
    try:
        times_out()
    except TimeoutError:
        pass
    raise GaveUp


def inner_failure_leaves_outer() -> None:
    passes_it_on()


def first_output_rejected() -> None:
    @agentrel.llm(model="m1")
    def ask() -> str:
        agentrel.record_tokens(input=100, output=50)
        return "answer"

    ask()
    agentrel.reject("invalid_json")
    ask()


#: In the order of the table's rows.
SCENARIOS: list[Callable[[], None]] = [
    one_clean_call,
    quickstart,
    fallback_two_tiers_fail,
    inner_failure_caught,
    two_timeouts_then_give_up,
    one_timeout_no_retry,
    inner_failure_leaves_outer,
    first_output_rejected,
]


def _table_rows() -> list[list[str]]:
    text = (ROOT / "docs" / "concepts.md").read_text(encoding="utf-8")
    section = text[text.index("### Worked examples") :]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    body = lines[2:]  # header and separator
    end = next((i for i, line in enumerate(body) if not line.strip()), len(body))
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in body[:end]]


def test_the_table_has_one_row_per_scenario() -> None:
    """Every worked example has its scenario and every scenario its row."""
    assert len(_table_rows()) == len(SCENARIOS)


@pytest.mark.parametrize(
    ("row", "scenario"),
    list(zip(_table_rows(), SCENARIOS, strict=False)),
    ids=[s.__name__ for s in SCENARIOS],
)
def test_worked_example(row: list[str], scenario: Callable[[], None]) -> None:
    """The row's outcome, retry depth, attempts and amplification are what agentrel records
    for the scenario, and the invariants of docs/concepts.md hold on its metrics."""
    with testing.capture() as cap:
        try:
            with agentrel.run("worked") as run:
                scenario()
        except (GaveUp, TimeoutError):
            pass
        amplification = "—" if run.token_amplification is None else f"{run.token_amplification}"
        assert [row[1], row[2], row[3], row[4].split(" ")[0]] == [
            f"`{run.outcome}`",
            str(run.retry_depth),
            str(run.attempts),
            amplification,
        ]

        depth = {
            o: cap.histogram("agentrel.run.retry_depth", {"agentrel.outcome": o}) for o in OUTCOMES
        }
        assert sum(h.count for h in depth.values()) == 1  # runs are counted once
        failures = "agentrel.tool.failures"
        absorbed = cap.counter(failures, {"agentrel.absorbed": "true"})
        surfaced = cap.counter(failures, {"agentrel.absorbed": "false"})
        assert absorbed == depth["recovered"].sum
        assert surfaced == depth["exhausted"].sum + depth["failed"].sum
        assert absorbed + surfaced == run.retry_depth
        assert cap.histogram("agentrel.run.attempts").sum == run.attempts
        calls = cap.histogram("agentrel.tool.attempts")
        assert calls.sum == run.attempts
        assert calls.sum >= calls.count  # a call has at least one attempt
        assert run.attempts - run.retry_depth >= 0
        tokens = cap.counter("agentrel.tokens")
        assert tokens == run.tokens == run.useful_tokens + run.wasted_tokens
        if run.token_amplification is not None:
            assert run.token_amplification >= 1
        if run.outcome == "success":
            assert run.retry_depth == 0
        elif run.outcome in ("recovered", "exhausted"):
            assert run.retry_depth >= 1
