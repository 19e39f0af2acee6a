"""The host libraries whose own test suites run with agentrel switched on.

Each suite's tests come from the library's source distribution at the installed version;
``subsets/<name>.txt`` lists what of it runs. ``minimum`` is what the "on" run's span report
must show at least (``execute_tool``: spans of that name; ``execute_tool>1``: calls of that
name with more than one attempt), so that a green run whose hooks never fired fails.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str  # also the distribution name on the registry
    pytest_args: tuple[str, ...] = ()  # replace the host's own addopts (no xdist, no coverage)
    env: tuple[tuple[str, str], ...] = ()
    minimum: tuple[tuple[str, int], ...] = ()

    @property
    def subset(self) -> list[str]:
        lines = (HERE / "subsets" / f"{self.name}.txt").read_text().splitlines()
        return [s for s in (line.split("#", 1)[0].strip() for line in lines) if s]


SUITES = (
    Suite(
        "tenacity",
        ("-p", "no:asyncio"),  # tenacity's own test deps have no pytest-asyncio
        minimum=(("execute_tool", 50), ("execute_tool>1", 30), ("invoke_agent", 100)),
    ),
    Suite(
        "stamina",
        ("-p", "no:asyncio", "--import-mode=importlib"),
        minimum=(("execute_tool", 250), ("execute_tool>1", 100), ("invoke_agent", 200)),
    ),
    # backoff's sdist ships no tests: the runner reports it and runs nothing.
    Suite("backoff"),
    Suite(
        "langgraph",
        ("-k", "not sqlite"),
        env=(("NO_DOCKER", "true"),),
        minimum=(("execute_tool", 40), ("execute_tool>1", 15), ("invoke_agent", 500)),
    ),
    Suite(
        "langgraph-prebuilt",
        ("-k", "not sqlite", "-o", "asyncio_mode=auto"),
        env=(("NO_DOCKER", "true"),),
        minimum=(("execute_tool", 50), ("invoke_agent", 50)),
    ),
    Suite(
        "openai-agents",
        ("-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=session"),
        minimum=(("execute_tool", 50), ("invoke_agent", 100), ("chat", 100)),
    ),
    Suite(
        "openai",
        ("--tb=short",),
        minimum=(("chat", 20), ("chat>1", 5)),
    ),
)
