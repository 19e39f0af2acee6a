"""The version matrix: which versions each cell installs, on which Python, and what it runs.

A cell is resolved from ``pyproject.toml`` itself (its runtime dependencies and extras), so a
bound raised there moves the cell with it: ``lowest-direct`` takes every direct requirement at
the lowest version its specifier allows (what the dependencies' own requirements then need at
their newest), ``highest`` takes the newest the registry serves. ``constraints`` narrow one cell
(the newest release of a package's older major); ``without`` drops extras that would otherwise
force a dependency past its lower bound (the OpenAI Agents SDK needs ``openai>=3``, pydantic-ai
needs a newer ``genai-prices``), so that bound is tested in a cell of its own.
"""

from __future__ import annotations

import dataclasses

#: the test files every cell runs: every integration, the LLM SDK contract, the core
#: semantics and both exporters. A file whose framework is not installed skips.
TESTS = (
    "tests/test_tenacity.py",
    "tests/test_stamina.py",
    "tests/test_backoff.py",
    "tests/test_retry_contract.py",
    "tests/test_openai.py",
    "tests/test_anthropic.py",
    "tests/test_llm_contract.py",
    "tests/test_pydantic_ai.py",
    "tests/test_langgraph.py",
    "tests/test_openai_agents.py",
    "tests/test_cost.py",
    "tests/test_semantics.py",
    "tests/test_decorators.py",
    "tests/test_never_break.py",
    "tests/test_instrumentation.py",
    "tests/test_instrumentors.py",
    "tests/test_prometheus.py",
    "tests/test_otlp.py",
    "tests/test_unconfigured.py",
)

#: what the table shows for each cell (distribution names as pip spells them).
SHOWN = (
    "opentelemetry-api",
    "opentelemetry-sdk",
    "prometheus-client",
    "wrapt",
    "tenacity",
    "stamina",
    "backoff",
    "openai",
    "httpx",
    "httpx2",
    "anthropic",
    "pydantic-ai-slim",
    "langgraph",
    "langchain-core",
    "openai-agents",
    "genai-prices",
)

#: extras that are not integrations: the development tools, and an alias of the others.
NOT_INTEGRATIONS = frozenset({"dev", "all"})


@dataclasses.dataclass(frozen=True)
class Cell:
    name: str
    python: str  # "3.11": the interpreter's minor version
    resolution: str  # "lowest-direct" | "highest"
    summary: str
    without: tuple[str, ...] = ()  # extras left out of this cell
    constraints: tuple[str, ...] = ()  # extra requirement specifiers, as pip constraints
    #: on a Python where an extra does not install, drop it (and say so) instead of failing
    drop_uninstallable: bool = False


CELLS = (
    Cell(
        "lowest",
        "3.11",
        "lowest-direct",
        "every runtime dependency and extra at its lower bound, all extras together",
    ),
    Cell(
        "lowest-httpx",
        "3.11",
        "lowest-direct",
        "the lower bounds the Agents SDK and pydantic-ai lift in `lowest` (openai, genai-prices):"
        " the OpenAI and Anthropic SDKs on httpx",
        without=("openai-agents", "pydantic-ai"),
    ),
    Cell("newest", "3.11", "highest", "the newest release of everything"),
    Cell(
        "openai-httpx",
        "3.11",
        "highest",
        "the newest OpenAI and Anthropic SDKs that still send through httpx (openai 2.x,"
        " anthropic 0.x); the Agents SDK needs openai 3",
        without=("openai-agents",),
        constraints=("openai<3", "anthropic<1"),
    ),
    Cell(
        "py3.10",
        "3.10",
        "highest",
        "the newest of every extra that installs on Python 3.10",
        drop_uninstallable=True,
    ),
    Cell(
        "py3.12",
        "3.12",
        "highest",
        "the newest of every extra that installs on Python 3.12",
        drop_uninstallable=True,
    ),
    Cell(
        "py3.13",
        "3.13",
        "highest",
        "the newest of every extra that installs on Python 3.13",
        drop_uninstallable=True,
    ),
)

BY_NAME = {cell.name: cell for cell in CELLS}
