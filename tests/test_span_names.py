"""Span attribute and event names have one home, the catalogue, beside the metric names:
no module writes one as a string literal, docs/metrics.md lists each (generated), and every
attribute and event a scripted run puts on its spans is a catalogue name."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import agentrel
from agentrel import _catalogue as cat
from agentrel import testing

PKG = Path(agentrel.__file__).parent
ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"^(agentrel|gen_ai|exception)\.[a-z_.]+$")
#: Dotted strings that are not span names: contextvar and logger names, an entry-point group,
#: a module prefix.
NOT_SPAN_NAMES = {
    "agentrel.run",
    "agentrel.call",
    "agentrel.run_scopes",
    "agentrel.llm_flight",
    "agentrel.llm_adapters",
    "agentrel.integrations",
    "agentrel.integrations.langgraph",
    "agentrel.pydantic_ai.tool",
    "agentrel.pydantic_ai.run",
    "agentrel.tenacity.pending",
    "agentrel.tenacity.in_iter",
    "agentrel.openai_agents.run",
    "agentrel.openai_agents.tool",
    "agentrel.openai_agents.llm",
    "agentrel.demo.sim",
    "agentrel.run.retry_depth",  # testing.py's docstring example (a metric name)
    "agentrel.tool.failures",  # likewise
    "agentrel.outcome",  # likewise (a label)
    "agentrel.absorbed",  # likewise
}
SPAN_NAMES = {s.name for s in (*cat.SPAN_ATTRIBUTES, *cat.SPAN_EVENTS)}


def _literals(path: Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.match(node.value)
    }


def test_no_module_spells_a_span_name_outside_the_catalogue() -> None:
    """Outside ``_catalogue.py``, no dotted ``agentrel.*``/``gen_ai.*``/``exception.*``
    string literal appears but the listed non-span names."""
    found: dict[str, str] = {}
    for path in sorted(PKG.rglob("*.py")):
        if path.name == "_catalogue.py":
            continue
        for lit in _literals(path) - NOT_SPAN_NAMES:
            found[lit] = str(path.relative_to(PKG))
    assert found == {}


def test_catalogue_span_names_are_unique_and_documented() -> None:
    """Each span attribute and event is listed once, and docs/metrics.md's generated "Spans"
    section names every one (tests/test_docs.py checks the section is up to date)."""
    names = [s.name for s in (*cat.SPAN_ATTRIBUTES, *cat.SPAN_EVENTS)]
    assert len(names) == len(set(names))
    doc = (ROOT / "docs" / "metrics.md").read_text()
    section = doc[doc.index("<!-- BEGIN GENERATED SPANS") :]
    assert [n for n in names if f"`{n}`" not in section] == []


def test_every_attribute_and_event_a_run_writes_is_in_the_catalogue(
    cap: testing.Capture,
) -> None:
    """A scripted run (a retried tool, a non-idempotent retry, a rejection, a fallback chain)
    writes only catalogue names on its spans and their events."""
    failed = {"n": 0}

    @agentrel.tool(system="kb", owner="kb-oncall")
    def lookup(q: str) -> str:
        """Look a thing up."""
        return q

    @agentrel.tool(idempotent=False)
    def refund(order: str) -> str:
        failed["n"] += 1
        if failed["n"] == 1:
            raise TimeoutError
        return order

    def primary() -> str:
        raise ValueError

    answer = agentrel.fallback("answer", ("primary", primary), ("cache", lambda: "cached"))

    with agentrel.run("span-names", cohort="smb", token_budget=100):
        lookup("x")
        agentrel.reject("invalid_json")
        for _ in range(2):
            try:
                refund("o1")
            except TimeoutError:
                pass
        agentrel.record_tokens(input=3, output=2, model="m")
        assert answer() == "cached"

    spans = cap.spans()
    keys = {k for s in spans for k in s.attributes}
    events = {e.name for s in spans for e in s.events}
    event_keys = {k for s in spans for e in s.events for k in e.attributes}
    assert {"agentrel.attempt", "agentrel.reject", "agentrel.unsafe_retry"} <= events
    assert {"invoke_agent span-names", "execute_tool lookup", "fallback answer"} <= {
        s.name for s in spans
    }
    assert (keys | events | event_keys) - SPAN_NAMES == set()
